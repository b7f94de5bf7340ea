"""The tables of every command: per-condition results with standard errors and paired differences.

    seal adapt / eval / cpt   summarise + report_markdown   accuracy per condition, paired change vs a reference row
    seal eval --domain arc    summarise_arc + arc_report    success rate per condition
    seal train                train_report                  reward per round, paired change vs round 0
    seal continual            continual_report              the forgetting matrix per condition

A finished run writes them into RUN_DIR/report.md; `seal report --markdown` remakes them from any run so far.

A row's figure is the mean over inputs of each input's mean over its trials, ± the standard
error over inputs (seal.stats). The paired change of a row against the reference row is the
mean over the inputs both rows cover of (row - reference), ± its standard error: it leaves
out how hard each input is, which dominates a row's own spread.
"""

from __future__ import annotations

import math
import re

from seal.stats import mean_and_stderr, paired_difference


def default_reference(conditions: list[str]) -> str | None:
    """The row others are compared with: the base generator's self-edits, else the passage alone.

    >>> default_reference(["passage", "data", "model"]), default_reference(["passage", "data"]), default_reference(["data"])
    ('model', 'passage', None)
    """
    return next((c for c in ("model", "passage") if c in conditions), None)


def summarise(config, passages: list, baselines: dict[str, dict], trials: list[dict]) -> dict:
    """Per-condition and per-passage accuracies (trials averaged within a passage first), rows in the order
    of `config.conditions` (the records come smallest trial first), the base model first."""
    rows = {"baseline": {p.id: [baselines[p.id]["accuracy"]] for p in passages if p.id in baselines}}
    seconds: dict[str, list[float]] = {}
    for t in trials:
        rows.setdefault(t["condition"], {}).setdefault(t["passage_id"], []).append(t["accuracy"])
        seconds.setdefault(t["condition"], []).append(t["timings"]["train_s"] + t["timings"]["eval_s"])
    order = ["baseline", *(getattr(config, "conditions", None) or [])]  # the run's order, not the records'
    rows = dict(sorted(rows.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    conditions = {}
    for name, per_passage in rows.items():
        means = [sum(v) / len(v) for v in per_passage.values()]
        mean, stderr = mean_and_stderr(means) if means else (float("nan"), float("nan"))
        conditions[name] = {"accuracy": mean, "stderr": stderr, "passages": len(means),
                            "trials": sum(len(v) for v in per_passage.values()),
                            "seconds_per_trial": (sum(seconds[name]) / len(seconds[name])) if name in seconds else None}
    per_passage = [{"index": i, "title": p.title, "questions": len(p.questions),
                    **{name: (sum(v[p.id]) / len(v[p.id]) if p.id in v else None) for name, v in rows.items()}}
                   for i, p in enumerate(passages)]
    reference = config.reference or default_reference(list(rows))
    means = {name: {p: sum(v) / len(v) for p, v in per.items()} for name, per in rows.items()}

    def paired(name: str, ref: str) -> dict | None:
        if ref not in rows or name == ref:
            return None
        change = paired_difference(means[name], means[ref])
        return None if change is None else {"mean": change[0], "stderr": change[1], "passages": change[2]}

    also = [r for r in config.compare_with if r != reference and r in rows]
    for name in rows:
        conditions[name]["paired"] = paired(name, reference)
        if also:
            conditions[name]["paired_with"] = {ref: paired(name, ref) for ref in also}
    data = getattr(getattr(config, "data", None), "source", None)
    return {"grader": config.inner.grader, "reference": reference, "compare_with": also, "conditions": conditions,
            "per_passage": per_passage, **({"data_source": data} if isinstance(data, str) else {})}


def label(condition: str, data: str | None = None) -> str:
    """A condition's name as a table row or bar: a ReST-EM round's generator by its run and round, a data file
    by its name, the bare `data` row by the run's data file when `data` (config.data.source) names one (the
    full names stay in summary.json and the config).

    >>> label("generator:/w/runs/20261129-024646-train-rest-em-squad-24/round-2/generator")
    'generator: 20261129-024646-train-rest-em-squad-24 round 2'
    >>> label("generator:/w/runs/20261130-211958-train-rest-em-squad-24-rewrite")  # the generator it started from
    'generator: 20261130-211958-train-rest-em-squad-24-rewrite before round 0'
    >>> label("data:../shared/data/squad/eval200_qwen7b_base_self_edits.json"), label("model:self-qa")
    ('data: eval200_qwen7b_base_self_edits.json', 'model:self-qa')
    >>> label("data", "../shared/data/squad/eval200_gpt41_self_edits.json"), label("data"), label("model", "x.json")
    ('data: eval200_gpt41_self_edits.json', 'data', 'model')
    """
    if condition == "data" and data:
        condition = f"data:{data}"
    kind, sep, where = condition.partition(":")
    parts = where.replace("\\", "/").rstrip("/").split("/")
    if kind == "generator" and sep and len(parts) >= 3 and parts[-2].startswith("round-"):
        return f"generator: {parts[-3]} round {parts[-2].removeprefix('round-')}"
    if kind == "generator" and sep and re.fullmatch(r"\d{8}-\d{6}-train-.+", parts[-1]):
        return f"generator: {parts[-1]} before round 0"
    if kind == "data" and sep and len(parts) > 1:
        return f"data: {parts[-1]}"
    return condition


def change_text(paired: dict | None, is_reference: bool) -> str:
    """A paired change in points, '± s.e.'; 'reference' for the reference row itself."""
    if paired:
        return f"{100 * paired['mean']:+.1f} ± {100 * paired['stderr']:.1f}"
    return "reference" if is_reference else "-"


def report_markdown(summary: dict, title: str) -> str:
    names = list(summary["conditions"])
    data = summary.get("data_source")
    reference = summary.get("reference")
    also = summary.get("compare_with") or []
    lines = [f"# {title}", "", f"Grader: `{summary['grader']}`. Accuracy: mean over passages of each passage's "
             "no-context accuracy, averaged over its trials (self-edits x seeds) first (± standard error over passages). "
             f"Paired change: the row minus `{reference}` over the passages both cover (± standard error over passages).",
             "", f"| condition | accuracy | ± s.e. | change vs {label(reference or '-', data)} (paired) | "
             + "".join(f"vs {label(r, data)} (paired) | " for r in also) + "passages | trials | s / trial |",
             "|---|---|---|---|" + "---|" * len(also) + "---|---|---|"]
    for name, c in summary["conditions"].items():
        spt = f"{c['seconds_per_trial']:.1f}" if c["seconds_per_trial"] is not None else "-"
        changes = [change_text(c.get("paired"), name == reference)]
        changes += [change_text((c.get("paired_with") or {}).get(r), name == r) for r in also]
        lines.append(f"| {label(name, data)} | {100 * c['accuracy']:.1f} % | {100 * c['stderr']:.1f} | {' | '.join(changes)} | "
                     f"{c['passages']} | {c['trials']} | {spt} |")
    lines += ["", "| # | passage | questions | " + " | ".join(label(n, data) for n in names) + " |", "|---|---|---|" + "---|" * len(names)]
    for row in summary["per_passage"]:
        cells = [f"{100 * row[n]:.0f} %" if row.get(n) is not None else "-" for n in names]
        lines.append(f"| {row['index']} | {row['title'][:40]} | {row['questions']} | " + " | ".join(cells) + " |")
    if summary.get("timings"):
        lines += ["", "Stage times: " + ", ".join(f"{k} {v:.1f}" for k, v in summary["timings"].items())]
    return "\n".join(lines) + "\n"


def summarise_arc(trials: list[dict], conditions: list[str], task_ids: list[str], reference: str | None = None) -> dict:
    """Success rate per condition: mean over tasks of the share of a task's trials that solved it,
    and its paired change against the reference row (default: icl, else the first condition).
    Tasks solved: tasks at least one of the condition's trials solved, with the binomial standard
    error of that share (sqrt(p(1-p)/n) over the n tasks).

    >>> rows = [{"condition": "c", "task_id": t, "solved": s, "status": "ok", "timings": {"train_s": 1, "eval_s": 1}}
    ...         for t, s in [("a", True), ("a", False), ("b", False), ("b", False)]]
    >>> c = summarise_arc(rows, ["c"], ["a", "b"])["conditions"]["c"]
    >>> (c["success_rate"], c["tasks_solved"], round(c["tasks_solved_stderr"], 3))
    (0.25, 1, 0.354)
    """
    out, task_rates = {}, {}
    for c in conditions:
        per_task = {}
        for t in trials:
            if t["condition"] == c:
                per_task.setdefault(t["task_id"], []).append(float(t["solved"]))
        task_rates[c] = {tid: sum(v) / len(v) for tid, v in per_task.items() if tid in task_ids}
        rates = list(task_rates[c].values())
        mean, stderr = mean_and_stderr(rates) if rates else (float("nan"), float("nan"))
        seconds = [t["timings"]["train_s"] + t["timings"]["eval_s"] for t in trials if t["condition"] == c]
        statuses = {}
        for t in trials:
            if t["condition"] == c:
                statuses[t["status"]] = statuses.get(t["status"], 0) + 1
        solved = sum(rate > 0 for rate in rates)
        share = solved / len(rates) if rates else float("nan")
        solved_stderr = math.sqrt(share * (1 - share) / len(rates)) if rates else float("nan")
        out[c] = {"success_rate": mean, "stderr": stderr, "tasks": len(rates), "trials": len(seconds),
                  "tasks_solved": solved, "tasks_solved_stderr": solved_stderr,
                  "seconds_per_trial": sum(seconds) / len(seconds) if seconds else None, "statuses": statuses}
    reference = reference or ("icl" if "icl" in conditions else conditions[0])
    for c in conditions:
        change = paired_difference(task_rates[c], task_rates.get(reference, {})) if c != reference else None
        out[c]["paired"] = None if change is None else {"mean": change[0], "stderr": change[1], "tasks": change[2]}
    return {"domain": "arc", "reference": reference, "conditions": out}


def arc_report(summary: dict, title: str) -> str:
    reference = summary.get("reference")
    lines = [f"# {title}", "", "Success rate: share of (task, recipe) trials whose two voted attempts solve every "
             "test input, averaged per task (± standard error over tasks). Paired change: the row minus "
             f"`{reference}` over the tasks both cover.", "",
             f"| condition | success | ± s.e. | change vs {reference} (paired) | tasks solved | tasks | trials | s / trial | "
             "statuses |", "|---|---|---|---|---|---|---|---|---|"]
    for name, c in summary["conditions"].items():
        spt = f"{c['seconds_per_trial']:.0f}" if c["seconds_per_trial"] is not None else "-"
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(c["statuses"].items()))
        p = c.get("paired")
        change = f"{100 * p['mean']:+.1f} ± {100 * p['stderr']:.1f}" if p else ("reference" if name == reference else "-")
        lines.append(f"| {label(name)} | {100 * c['success_rate']:.1f} % | {100 * c['stderr']:.1f} | {change} | "
                     f"{tasks_solved(c)} | {c['tasks']} | "
                     f"{c['trials']} | {spt} | {statuses} |")
    return "\n".join(lines) + "\n"


def tasks_solved(c: dict) -> str:
    """'3 of 8 (37.5 % ± 17.1)' from an ARC summary row (older summaries lack the count: '-')."""
    if "tasks_solved" not in c or not c["tasks"]:
        return "-"
    return (f"{c['tasks_solved']} of {c['tasks']} ({100 * c['tasks_solved'] / c['tasks']:.1f} % ± "
            f"{100 * c['tasks_solved_stderr']:.1f})")


def paired_change(history: list[dict], r: int) -> tuple[float, float, int] | None:
    """Round r's mean reward minus round 0's over the inputs both rounds drew (mean, s.e., inputs); None under 2.

    When rounds draw the same inputs (a fixed training set), this paired difference leaves out
    how hard each input is, which dominates the spread of a round's own mean.

    >>> history = [{"input_rewards": {"a": 0.1, "b": 0.5}}, {"input_rewards": {"a": 0.3, "b": 0.6, "c": 1.0}}]
    >>> [round(x, 3) for x in paired_change(history, 1)]
    [0.15, 0.05, 2]
    """
    return paired_difference(history[r].get("input_rewards") or {}, history[0].get("input_rewards") or {})


def train_report(history: list[dict], title: str) -> str:
    lines = [f"# {title}", "", "Reward: the inner loop's score (no-context accuracy; for ARC, solved or not), "
             "averaged over seeds, then over an input's self-edits, then over inputs (± standard error over inputs).", "",
             "Change vs round 0: the paired difference of mean rewards over the inputs both rounds drew.", "",
             "| round | inputs | self-edits | baseline | mean reward | ± s.e. | change vs round 0 (paired) | kept | SFT loss | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r, h in enumerate(history):
        sft = h["sft"]
        loss = f"{sft['epoch_losses'][0]:.3f} → {sft['epoch_losses'][-1]:.3f}" if sft else "-"
        minutes = sum(h["timings"].values()) / 60
        inputs = h.get("inputs", h.get("passages"))  # runs written before the Domain protocol said "passages"
        change = paired_change(history, r) if r else None
        change = f"{100 * change[0]:+.1f} ± {100 * change[1]:.1f} ({change[2]} inputs)" if change else "-"
        lines.append(f"| {h['round']} | {inputs} | {h['self_edits']} | {100 * h['mean_baseline']:.1f} % | "
                     f"{100 * h['mean_reward']:.1f} % | {100 * h['reward_stderr']:.1f} | {change} | {h['kept']} | {loss} | "
                     f"{minutes:.1f} |")
    lines += ["", f"Final generator: `{history[-1]['generator_out']}`"]
    reused = [f"round {h['round']} from `{h['reused_from']}`" for h in history if h.get("reused_from")]
    if reused:
        lines += ["", "Draw, self-edits and trials copied from another run (train.reuse_from; their minutes are "
                      "this run's E-step and SFT only): " + ", ".join(reused) + "."]
    return "\n".join(lines) + "\n"


def summarise_continual(results: dict[str, list[dict]]) -> dict:
    """Per condition: the mean accuracy matrix over sequences (row t: after step t; column j: passage j) with
    standard errors, the base model's accuracy per position, backward transfer and forward effect.

    Backward transfer of a sequence: the mean over its passages but the last of (final accuracy on the passage
    - accuracy right after it was learned); forward effect: the mean over its passages but the first of
    (accuracy just before it was learned - the base model's). Both ± standard error over sequences.

    >>> out = summarise_continual({"model": [{"base": [0.0, 0.1], "rows": [[0.5, 0.2], [0.3, 0.6]]}]})["conditions"]["model"]
    >>> [round(x, 2) for x in (out["backward_transfer"], out["forward_effect"], out["final_accuracy"])]
    [-0.2, 0.1, 0.45]
    """
    out = {}
    for condition, sequences in results.items():
        n_steps = len(sequences[0]["rows"])
        matrix = [[mean_and_stderr([s["rows"][t][j] for s in sequences]) for j in range(len(sequences[0]["rows"][t]))]
                  for t in range(n_steps)]
        bwt = [sum(s["rows"][-1][j] - s["rows"][j][j] for j in range(n_steps - 1)) / (n_steps - 1)
               for s in sequences] if n_steps > 1 else []
        fwd = [sum(s["rows"][j - 1][j] - s["base"][j] for j in range(1, n_steps)) / (n_steps - 1)
               for s in sequences] if n_steps > 1 else []
        final = [sum(s["rows"][-1][:n_steps]) / n_steps for s in sequences]
        learned = [sum(s["rows"][j][j] for j in range(n_steps)) / n_steps for s in sequences]
        out[condition] = {
            "sequences": len(sequences), "steps": n_steps,
            "matrix": [[m for m, _ in row] for row in matrix], "matrix_stderr": [[e for _, e in row] for row in matrix],
            "base": [mean_and_stderr([s["base"][j] for s in sequences])[0] for j in range(n_steps)],
            "backward_transfer": mean_and_stderr(bwt)[0] if bwt else None,
            "backward_transfer_stderr": mean_and_stderr(bwt)[1] if bwt else None,
            "forward_effect": mean_and_stderr(fwd)[0] if fwd else None,
            "forward_effect_stderr": mean_and_stderr(fwd)[1] if fwd else None,
            "final_accuracy": mean_and_stderr(final)[0], "final_accuracy_stderr": mean_and_stderr(final)[1],
            "just_learned_accuracy": mean_and_stderr(learned)[0],
            "just_learned_accuracy_stderr": mean_and_stderr(learned)[1]}
    return {"setting": "continual", "conditions": out}


def continual_report(summary: dict, title: str) -> str:
    lines = [f"# {title}", "", "No-context accuracy (%) on each passage of a sequence (columns) after each step "
             "(rows), mean over sequences (± standard error in the JSON summary). Passages are learned one per step, "
             "each self-edit's adapter merged into the weights; the column right of the diagonal is the next passage "
             "before it is learned.", ""]
    for condition, c in summary["conditions"].items():
        n = c["steps"]
        lines += [f"## {condition} ({c['sequences']} sequence(s) of {n})", "",
                  "| after step | " + " | ".join(f"p{j}" for j in range(n)) + " |", "|---|" + "---|" * n,
                  "| base | " + " | ".join(f"{100 * b:.0f}" for b in c["base"]) + " |"]
        for t, row in enumerate(c["matrix"]):
            lines.append(f"| {t} | " + " | ".join(f"{100 * row[j]:.0f}" if j < len(row) else "" for j in range(n)) + " |")
        fmt = lambda key: ("-" if c[key] is None else f"{100 * c[key]:+.1f} ± {100 * c[key + '_stderr']:.1f}")  # noqa: E731
        lines += ["", f"Accuracy on a passage right after it is learned (the diagonal): "
                  f"{100 * c['just_learned_accuracy']:.1f} % ± {100 * c['just_learned_accuracy_stderr']:.1f}; "
                  f"final accuracy over the sequence: {100 * c['final_accuracy']:.1f} % ± "
                  f"{100 * c['final_accuracy_stderr']:.1f}; backward transfer {fmt('backward_transfer')} points; "
                  f"forward effect {fmt('forward_effect')} points.", ""]
    return "\n".join(lines)

"""Each ReST-EM round against the bar its E-step used, and the rounds of several runs against each other.

    seal report --markdown runs/<time>-train-rest-em-squad-24 runs/<time>-train-rest-em-squad-24-beats

Per round of a `seal train` run, from its own records (nothing is trained again):

- bar: each input's baseline trials (train.baseline: the passage twice or the passage alone) averaged
  over seeds, or, when the round ran none, the input's no-adaptation score;
- self-edits - bar: each input's mean self-edit reward minus its bar, paired over inputs;
- best of k: each input's best self-edit reward, what the E-step chooses from. It is the maximum of k
  noisy rewards, so it flatters (`seal/reporting/retest.py` measures by how much);
- winners: self-edits whose reward is above their input's bar, and in how many inputs;
- kept, and the mean copied share of the round's self-edits (round.json).

Several `seal train` runs (an ablation beside the run it changes, e.g. with train.reuse_from): per round,
each run's self-edits, bar, and margin of the one over the other, minus the first run's, paired over
the inputs both drew. As in the paper, a round's trials adapt the generator that sampled the round,
so two runs whose generators differ also differ in their bar (the same baseline trial on another
model): the margin is the figure the verdict of seal.reporting.claim judges (above or below by more
than two standard errors). A round one run copied from the other, or both from a third
(train.reuse_from), is the same records, and is named as such.
"""

from __future__ import annotations

import re
from pathlib import Path

from seal.reporting.claim import verdict
from seal.reporting.html import esc, markdown_table, signed, table
from seal.reporting.read import RunView
from seal.stats import TIE, mean_and_stderr, paired_difference

BAR_EXPLAIN = ("Bar: the round's baseline trials per input (train.baseline), else its no-adaptation score. "
               "Paired: per input, then the mean over inputs ± its standard error, in points. Best of k: each "
               "input's best self-edit reward (the maximum of k noisy rewards). Winners: self-edits above their "
               "input's bar. A round in progress counts the inputs whose self-edits have all run.")
HEADER = ["round", "inputs", "bar", "bar: mean", "self-edits: mean", "self-edits - bar (paired)", "best of k",
          "best - bar (paired)", "winners", "kept", "copied"]
ACROSS = ["round", "run", "inputs", "self-edits: change", "bar: change", "self-edits - bar: first run → this run",
          "self-edits - bar: change", "verdict"]
ACROSS_EXPLAIN = ("Paired over the inputs both runs drew, in points ± standard error. A round's trials adapt the "
                  "model that sampled it (the round's generator), so when two runs' generators differ their bar "
                  "moves too; the margin of the self-edits over the bar is what the verdict judges (above or below "
                  "by more than two standard errors).")


def round_dirs(view: RunView) -> list:
    found = [p for p in view.path.glob("round-*") if p.is_dir() and re.fullmatch(r"round-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def round_rewards(view: RunView, round_dir) -> dict[str, dict[int, float]]:
    """Each self-edit's reward (its trials' accuracy averaged over seeds), by input and self-edit index."""
    relative = round_dir.relative_to(view.path)
    by_edit: dict[tuple[str, int], list[float]] = {}
    for t in view.records(f"{relative}/trials.jsonl"):
        if t["condition"] == "model":
            iid = t.get("passage_id", t.get("task_id"))
            by_edit.setdefault((iid, t["self_edit_index"]), []).append(t["accuracy"])
    out: dict[str, dict[int, float]] = {}
    for (iid, e), values in by_edit.items():
        out.setdefault(iid, {})[e] = sum(values) / len(values)
    return out


def bars(view: RunView, round_dir: Path) -> tuple[str, dict[str, float]]:
    """The bar's name and each input's bar: its baseline trials' mean accuracy, else its no-adaptation score."""
    by_input: dict[str, list[float]] = {}
    names = []
    for t in view.records(f"{round_dir.name}/trials.jsonl"):
        if t["condition"] != "model":
            by_input.setdefault(t.get("passage_id", t.get("task_id")), []).append(t["accuracy"])
            names.append(t["condition"])
    if by_input:
        return " + ".join(dict.fromkeys(names)), {i: sum(v) / len(v) for i, v in by_input.items()}
    if not (round_dir / "baselines.jsonl").is_file():
        return "-", {}
    return "no adaptation", {b["passage_id"]: b["accuracy"] for b in view.records(f"{round_dir.name}/baselines.jsonl")}


def round_figures(view: RunView, round_dir: Path) -> dict | None:
    """One round's figures on the inputs with a bar and all their self-edits rewarded (None: no such input)."""
    rewards = round_rewards(view, round_dir)
    name, bar = bars(view, round_dir)
    k = max((len(per) for per in rewards.values()), default=0)
    inputs = sorted(i for i, per in rewards.items() if len(per) == k and i in bar)  # a round in progress: done inputs
    if not inputs:
        return None
    means = {i: sum(rewards[i].values()) / k for i in inputs}
    best = {i: max(rewards[i].values()) for i in inputs}
    winners = {i: sum(v > bar[i] + TIE for v in rewards[i].values()) for i in inputs}
    summary = view.json(f"{round_dir.name}/round.json") or {}
    return {"round": int(round_dir.name.split("-")[1]), "finished": bool(summary), "inputs": len(inputs), "k": k,
            "bar_name": summary.get("baseline") or name, "bar": mean_and_stderr([bar[i] for i in inputs]),
            "mean": mean_and_stderr(list(means.values())), "margin": paired_difference(means, bar),
            "best": mean_and_stderr(list(best.values())), "best_margin": paired_difference(best, bar),
            "winners": sum(winners.values()), "winning_inputs": sum(w > 0 for w in winners.values()),
            "kept": summary.get("kept"), "copied": summary.get("copied_share"), "means": means,
            "bars": {i: bar[i] for i in inputs},
            "origin": Path(summary.get("reused_from") or round_dir).resolve()}


def run_rounds(view: RunView) -> list[dict]:
    return [f for f in (round_figures(view, d) for d in round_dirs(view)) if f is not None]


def _row(f: dict) -> list[str]:
    return [f"{f['round']}" + ("" if f["finished"] else " (in progress)"), str(f["inputs"]), f["bar_name"],
            f"{100 * f['bar'][0]:.1f} %", f"{100 * f['mean'][0]:.1f} % ± {100 * f['mean'][1]:.1f}",
            signed(f["margin"]), f"{100 * f['best'][0]:.1f} %", signed(f["best_margin"]),
            f"{f['winners']} in {f['winning_inputs']} inputs", "-" if f["kept"] is None else str(f["kept"]),
            "-" if f["copied"] is None else f"{f['copied']:.2f}"]


def bar_markdown(view: RunView) -> str:
    figures = run_rounds(view)
    if not figures:
        return ""
    lines = ["", "## Each round against its bar", "", BAR_EXPLAIN, "", *markdown_table(HEADER, [_row(f) for f in figures])]
    return "\n".join(lines) + "\n"


def bar_html(view: RunView) -> str:
    figures = run_rounds(view)
    if not figures:
        return ""
    return (f'<h2>Each round against its bar</h2><p class="muted">{esc(BAR_EXPLAIN)}</p>'
            + table(HEADER, ([esc(c) for c in _row(f)] for f in figures), numeric=set(range(3, 11))))


def across_rows(views: list[RunView]) -> list[list[str]]:
    """Per round and run after the first: how its self-edits, its bar and their margin moved from the first run's."""
    first = {f["round"]: f for f in run_rounds(views[0])}
    rows = []
    for view in views[1:]:
        for f in run_rounds(view):
            mine = first.get(f["round"])
            if mine is None:
                continue
            if f["origin"] == mine["origin"]:  # one run copied the round from the other, or both from a third
                rows.append([str(f["round"]), view.name, str(f["inputs"]), "same records (copied)", "-", "-", "-", "-"])
                continue
            shared = set(f["means"]) & set(mine["means"])  # a round in progress: the inputs it has finished
            margin = {i: f["means"][i] - f["bars"][i] for i in shared}
            first_margin = {i: mine["means"][i] - mine["bars"][i] for i in shared}
            change = paired_difference(margin, first_margin)
            both = " → ".join(signed(mean_and_stderr(list(m.values()))) for m in (first_margin, margin)) \
                if len(shared) > 1 else "-"
            rows.append([str(f["round"]), view.name, str(len(shared)),
                         signed(paired_difference(f["means"], mine["means"])),
                         signed(paired_difference(f["bars"], mine["bars"])), both, signed(change), verdict(change)])
    return rows


def across_markdown(views: list[RunView]) -> str:
    rows = across_rows(views) if len(views) > 1 else []
    if not rows:
        return ""
    return "\n".join(["", f"# Rounds against {views[0].name}", "", ACROSS_EXPLAIN, "", *markdown_table(ACROSS, rows)]) + "\n"


def across_html(views: list[RunView]) -> str:
    rows = across_rows(views) if len(views) > 1 else []
    if not rows:
        return ""
    return (f"<h2>Rounds against {esc(views[0].name)}</h2><p class=\"muted\">{esc(ACROSS_EXPLAIN)}</p>"
            + table(ACROSS, ([esc(c) for c in r] for r in rows), numeric={2, 3, 4, 5, 6}))

"""The page sections of knowledge runs: `seal adapt` / `eval` / `demo` / `cpt`, `learn` and `generate`.

Tables are recomputed from the run's records (seal.report.summarise), so a run that is still
going or was killed shows every trial finished so far; each passage folds out to its
self-edits, with their trials' accuracies, and its questions, with gold and given answers.
"""

from __future__ import annotations

from types import SimpleNamespace

from seal.plots import plot_conditions
from seal.report import label, summarise
from seal.reporting.claim import claim_matrix_html
from seal.reporting.html import esc, fold, markdown_table, pct, plot, pm, pre, table
from seal.reporting.read import RunView, complete_inputs
from seal.reporting.retest import retest_html


def knowledge_records(view: RunView, complete: bool = False) -> tuple[list[dict], list[dict]]:
    """(baselines, trials); a CPT run's records become one trial per (condition, seed, passage).
    `complete`: on the passages every row has finished only (read.complete_inputs)."""
    baselines, trials = _records(view)
    if complete:
        keep = complete_inputs(trials, "passage_id")
        baselines, trials = [b for b in baselines if b["passage_id"] in keep], [t for t in trials if t["passage_id"] in keep]
    return baselines, trials


def _records(view: RunView) -> tuple[list[dict], list[dict]]:
    baselines = view.records("baselines.jsonl")
    if view.command == "cpt":
        trials = [{"condition": r["condition"], "seed": r["seed"], "self_edit_index": 0, "self_edit": None,
                   "timings": r.get("timings", {}), **p} for r in view.records("cpt.jsonl") for p in r["passages"]]
        titles = {b["passage_id"]: (b["title"], b["passage_index"]) for b in baselines}
        for t in trials:
            t["title"], t["passage_index"] = titles.get(t["passage_id"], (t["passage_id"], 0))
        return baselines, trials
    return baselines, view.records("trials.jsonl")


def passages_of(baselines: list[dict], trials: list[dict]) -> list[SimpleNamespace]:
    """The passages the records name, in their run order: id, title and the questions asked."""
    seen: dict[str, SimpleNamespace] = {}
    for r in [*baselines, *trials]:
        if r["passage_id"] not in seen:
            seen[r["passage_id"]] = SimpleNamespace(id=r["passage_id"], title=r.get("title", r["passage_id"]),
                                                    index=r.get("passage_index", 0), questions=r.get("answers", []))
    return sorted(seen.values(), key=lambda p: p.index)


def summary_of(view: RunView, complete: bool = False) -> dict | None:
    """The run's table so far; `complete`: on the passages every row has finished only (read.complete_inputs)."""
    baselines, trials = knowledge_records(view, complete)
    if not baselines and not trials:
        return None
    for t in trials:
        t.setdefault("timings", {}).setdefault("train_s", 0.0)
        t["timings"].setdefault("eval_s", 0.0)
    config = SimpleNamespace(reference=view.config.get("reference"), compare_with=view.config.get("compare_with") or [],
                             conditions=view.config.get("conditions") or [],
                             data=SimpleNamespace(source=view.config.get("data", {}).get("source")),
                             inner=SimpleNamespace(grader=view.config.get("inner", {}).get("grader", "?")))
    return summarise(config, passages_of(baselines, trials), {b["passage_id"]: b for b in baselines}, trials)


def conditions_table(summary: dict) -> str:
    reference, also = summary["reference"], summary.get("compare_with") or []
    data = summary.get("data_source")

    def change(p, is_reference):
        return pm(p["mean"], p["stderr"]) if p else ("reference" if is_reference else "-")

    rows = []
    for name, c in summary["conditions"].items():
        spt = f"{c['seconds_per_trial']:.1f}" if c["seconds_per_trial"] is not None else "-"
        rows.append([esc(label(name, data)), pct(c["accuracy"]), f"{100 * c['stderr']:.1f}" if c["stderr"] == c["stderr"] else "-",
                     change(c.get("paired"), name == reference),
                     *[change((c.get("paired_with") or {}).get(r), name == r) for r in also],
                     str(c["passages"]), str(c["trials"]), spt])
    header = ["condition", "accuracy", "± s.e.", f"change vs {esc(label(reference or '-', data))} (paired, points)",
              *[f"vs {esc(label(r, data))} (paired)" for r in also], "passages", "trials", "s / trial"]
    return table(header, rows, numeric=set(range(1, len(header))))


SOURCES_NOTE = ("Means over each row's distinct self-edits. Empty: self-edits that give no training piece "
                "(no line, or no question-answer pair for self-QA); their trials are scored 0 and count in the "
                "accuracy. Sequences: the training sequences a trial builds from the passage and the self-edit. "
                "Copied: the share of a self-edit's word 5-grams found in its passage (1.00: a copy).")
SOURCES_HEADER = ["condition", "self-edits", "empty", "words", "sequences", "copied"]


def sources_rows(view: RunView, trials: list[dict]) -> list[list[str]]:
    """Per condition that trains on self-edits: how many, how many are empty, how long, how many training
    sequences each yields, and how much of its passage each repeats (the copied 5-gram share; `-` where the
    run's passages cannot be read from here). Cells are text."""
    from seal.domains.knowledge.quality import copied_share

    by_condition: dict[str, dict[tuple, dict]] = {c: {} for c in view.config.get("conditions") or []}  # run order
    for t in trials:
        if t.get("self_edit") is not None:
            by_condition.setdefault(t["condition"], {})[(t["passage_id"], t["self_edit_index"])] = t
    contexts = _passage_texts(view)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    rows = []
    for name, edits in by_condition.items():
        if not edits:
            continue
        words = [len(t["self_edit"].split()) for t in edits.values()]
        sequences = [t["n_sequences"] for t in edits.values() if t.get("n_sequences") is not None]
        shares = [c for t in edits.values() if t["passage_id"] in contexts
                  for c in [copied_share(t["self_edit"], contexts[t["passage_id"]])] if c is not None]
        empty = sum(t.get("status") == "empty_self_edit" for t in edits.values())
        rows.append([label(name, view.config.get("data", {}).get("source")), str(len(edits)), str(empty),
                     f"{mean(words):.0f}", f"{mean(sequences):.1f}" if sequences else "-",
                     f"{mean(shares):.2f}" if shares else "-"])
    return rows


def sources_table(view: RunView, trials: list[dict]) -> str:
    rows = sources_rows(view, trials)
    if not rows:
        return ""
    return (f"<h2>Self-edits by source</h2><p class=\"muted\">{SOURCES_NOTE}</p>" +
            table(SOURCES_HEADER, ([esc(r[0]), *r[1:]] for r in rows), numeric=set(range(1, len(SOURCES_HEADER)))))


def sources_markdown(view: RunView, complete: bool = False) -> str:
    """`sources_table` as markdown; `complete`: on the passages every row has finished only."""
    rows = sources_rows(view, knowledge_records(view, complete)[1])
    return "" if not rows else "\n".join(["", "## Self-edits by source", "", SOURCES_NOTE, "",
                                          *markdown_table(SOURCES_HEADER, rows), ""])


def _passage_texts(view: RunView) -> dict[str, str]:
    """Passage id -> text, read the way the run read its data (empty if that is not possible from here)."""
    from seal.config import RunConfig
    from seal.config_load import from_dict
    from seal.domains.knowledge.trials import passages_for
    from seal.errors import SealError

    try:
        return {p.id: p.context for p in passages_for(from_dict(RunConfig, view.config))}
    except (SealError, OSError, KeyError, TypeError, ValueError):
        return {}


def answers_table(answers: list[dict]) -> str:
    return table(["question", "gold", "answer", ""], (
        [esc(a["question"]), esc(a["gold"]), esc(a["answer"]),
         '<span class="right">✓</span>' if a["score"] >= 1 else
         (f'<span class="wrong">{a["score"]:.2f}</span>' if a["score"] > 0 else '<span class="wrong">✗</span>')]
        for a in answers))


def adapt_sections(view: RunView) -> str:
    summary = summary_of(view)
    if summary is None:
        return "<p class=\"muted\">No trial has finished yet.</p>"
    out = [f"<h2>Results</h2><p class=\"muted\">Grader <code>{esc(summary['grader'])}</code>. Accuracy: mean over "
           "passages of each passage's no-context accuracy, its trials (self-edits × seeds) averaged first, ± standard "
           "error over passages. Paired change: the row minus the reference row over the passages both cover.</p>",
           conditions_table(summary),
           plot(lambda f: plot_conditions(summary, f, f"{view.config['data']['source']} | {view.config['model']['name']}"),
                "accuracy per condition")]
    out.append(claim_matrix_html(summary_of(view, complete=True)))
    out.append(sources_table(view, knowledge_records(view)[1]))
    out.append(retest_html(view))
    names = list(summary["conditions"])
    out += ["<h2>Per passage</h2>", table(["#", "passage", "questions", *(esc(label(n, summary.get("data_source"))) for n in names)], (
        [str(r["index"]), esc(r["title"]), str(r["questions"]),
         *[pct(r.get(n), 0) for n in names]] for r in summary["per_passage"]), numeric={0, 2, *range(3, 3 + len(names))})]
    out.append(passage_details(view))
    finished = view.json("summary.json")
    timings = finished.get("timings") if isinstance(finished, dict) else None
    if timings:
        out += ["<h2>Stage times</h2>", table(["stage", "seconds"], ([esc(k), f"{v:.1f}"] for k, v in timings.items()),
                                              numeric={1})]
    return "".join(out)


def passage_details(view: RunView) -> str:
    baselines, trials = knowledge_records(view)
    base = {b["passage_id"]: b for b in baselines}
    out = ["<h2>Self-edits and answers</h2>"]
    first = True  # the first passage and its last trial open: one worked example on the page
    for p in passages_of(baselines, trials):
        parts = []
        if p.id in base:
            parts.append(fold(f"un-adapted model: {pct(base[p.id]['accuracy'], 0)}", answers_table(base[p.id]["answers"])))
        mine = sorted((t for t in trials if t["passage_id"] == p.id),
                      key=lambda t: (t["condition"], t["self_edit_index"], t["seed"]))
        example = next((t for t in mine if t.get("self_edit")), None)
        for t in mine:
            which = f" · self-edit {t['self_edit_index']}" if t.get("self_edit") else ""
            head = (f"{esc(t['condition'])}{which} · seed {t['seed']}: "
                    f"<b>{pct(t['accuracy'], 0)}</b>" + (f" ({esc(t['status'])})" if t.get("status", "ok") != "ok" else ""))
            body = (pre(t["self_edit"]) if t.get("self_edit") else "") + answers_table(t.get("answers", []))
            parts.append(fold(head, body, opened=first and t is example))
        out.append(fold(f"{p.index}. {esc(p.title)}", "".join(parts), opened=first))
        first = False
    return "".join(out)


def learn_sections(view: RunView) -> str:
    summary = view.json("summary.json")
    out = []
    if isinstance(summary, dict):
        rows = [["passages", str(summary["passages"])], ["mode", esc(summary.get("mode", "all"))],
                ["training sequences", str(summary["sequences"])], ["optimiser steps", str(summary["train"]["steps"])],
                ["loss, first → last epoch", f"{summary['train']['epoch_losses'][0]:.3f} → "
                                             f"{summary['train']['epoch_losses'][-1]:.3f}"]]
        if "before" in summary:
            rows += [["no-context accuracy before", pct(summary["before"])], ["after", pct(summary["after"])]]
        out += ["<h2>Results</h2>", table(["", ""], rows)]
    steps = view.records("steps.jsonl")
    if steps:
        out += ["<h2>Steps</h2>", table(["step", "passage", "sequences", "loss first → last"], (
            [str(r["step"]), esc(r["title"]), str(r["sequences"]),
             f"{r['epoch_losses'][0]:.3f} → {r['epoch_losses'][-1]:.3f}"] for r in steps), numeric={0, 2})]
    return "".join(out) + self_edits_section(view)


def self_edits_section(view: RunView, relative: str = "self_edits.jsonl") -> str:
    records = view.records(relative)
    if not records:
        return ""
    return "<h2>Self-edits</h2>" + "".join(
        fold(f"{r.get('passage_index', '')}. {esc(r.get('title', r['passage_id']))} ({len(r['self_edits'])})",
             "".join(pre(e) for e in r["self_edits"])) for r in records)


def generate_sections(view: RunView) -> str:
    return self_edits_section(view) or "<p class=\"muted\">No self-edit has been written yet.</p>"

"""A ReST-EM round's E-step done again with other trial seeds: how much of what it kept was signal.

    R=runs/<time>-train-rest-em-squad-24/round-0
    seal eval --data $R/passages.json --condition $R/self_edits.jsonl --condition passage-twice \\
        --reference passage-twice --seeds 1 --grader contains
    seal report --markdown runs/<time>-eval

An evaluation row whose self-edits are a `seal train` round's self_edits.jsonl trains each of the round's
self-edits again on the round's passages: the same trials as the E-step's, but for the trial seeds (with
seed 0 it reproduces the round's rewards). The round directory beside that file holds the rewards the
E-step chose by (trials.jsonl) and its choice (kept.jsonl), so the run's tables gain a re-test:

- the correlation of each self-edit's reward in the round with its reward here, over all self-edits and
  within passages (each reward minus its passage's mean: what a best-of-k choice among one passage's
  self-edits rests on);
- the kept self-edits, and each passage's top-scoring ones, against the passage's other self-edits, in
  the round and here. A choice made on noise loses its advantage at other seeds (the winner's curse);
- the kept self-edits against the baseline row (the round's train.baseline condition) here.

Inner-loop settings that differ between the round and this run are named above the table. Departure
from the paper: the paper does not re-test its E-step.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from seal.config import INNER_SCHEDULING
from seal.domains.knowledge.self_edits import is_sampled
from seal.domains.knowledge.trials import PASSAGE_ONLY
from seal.errors import SealError
from seal.reporting.html import esc, markdown_table, signed, table
from seal.reporting.read import RunView
from seal.runs import load_run_config
from seal.stats import mean_and_stderr

SCHEDULING_OR_SEEDS = INNER_SCHEDULING | {"seeds"}
"""Inner-loop settings a re-test may change: the trial seeds, and how trials are scheduled."""


def round_rows(view: RunView) -> list[tuple[str, Path]]:
    """(condition, round directory) for each row of an evaluation that trains a `seal train` round's self-edits."""
    out = []
    for condition in view.config.get("conditions") or []:
        if condition in PASSAGE_ONLY or condition == "data" or condition.startswith("data:") or is_sampled(condition):
            continue  # what is left names an earlier run's self-edits (seal.domains.knowledge.trials.plan_trials)
        path = Path(condition)
        path = path if path.name == "self_edits.jsonl" else path / "self_edits.jsonl"
        if (path.parent / "round.json").is_file() and (path.parent / "trials.jsonl").is_file():
            out.append((condition, path.parent))
    return out


def _rewards(records: list[dict], condition: str | None = None) -> dict[tuple[str, int], float]:
    """Mean reward per (passage id, self-edit index) over seeds, of trials that trained (status ok)."""
    by: dict[tuple[str, int], list[float]] = {}
    for t in records:
        if (condition is None or t.get("condition") == condition) and t.get("status", "ok") == "ok":
            by.setdefault((t["passage_id"], t["self_edit_index"]), []).append(t["accuracy"])
    return {k: sum(v) / len(v) for k, v in by.items()}


def correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's r; nan when either side has no spread.

    >>> import math
    >>> correlation([0, 1, 2], [0, 2, 4]), correlation([0, 1, 2], [2, 1, 0]), math.isnan(correlation([1, 1], [0, 1]))
    (1.0, -1.0, True)
    """
    try:
        return statistics.correlation(xs, ys)
    except statistics.StatisticsError:
        return float("nan")


def _advantages(chosen: dict[str, set[int]], rewards: dict[tuple[str, int], float]) -> dict[str, float]:
    """Per passage: the chosen self-edits' mean reward minus the passage's other self-edits' mean."""
    out = {}
    for pid, indices in chosen.items():
        mine = [r for (p, i), r in rewards.items() if p == pid and i in indices]
        rest = [r for (p, i), r in rewards.items() if p == pid and i not in indices]
        if mine and rest:
            out[pid] = sum(mine) / len(mine) - sum(rest) / len(rest)
    return out


def _pm(values: list[float]) -> str:
    if not values:
        return "-"
    return signed(mean_and_stderr(values))


def settings_differ(view: RunView, round_dir: Path) -> list[str]:
    """The inner-loop settings (other than seeds and scheduling) and model in which this run and the round's differ."""
    try:
        mine, theirs = (load_run_config(path).to_dict() for path in (view.path, round_dir.parent))
    except SealError:  # a moved or unreadable train run: nothing to compare with
        return ["the round's run config could not be read"]
    out = [f"model.{k}" for k in ("name", "dtype") if mine["model"][k] != theirs["model"][k]]
    out += [f"inner.{k}" for k, v in theirs["inner"].items() if k not in SCHEDULING_OR_SEEDS and mine["inner"].get(k) != v]
    return out


def retest_figures(view: RunView, condition: str, round_dir: Path) -> dict | None:
    """The re-test's figures, on the passages whose every self-edit it has re-tested (None under 3 self-edits)."""
    trials = view.records("trials.jsonl")
    here = _rewards(trials, condition)
    view_round = RunView(round_dir.parent)
    there = _rewards([t for t in view_round.records(f"{round_dir.name}/trials.jsonl")
                      if t["condition"] not in PASSAGE_ONLY])  # the round's self-edits, not its baseline trials
    missing = {p for p, i in there if (p, i) not in here}  # passages the re-test has not finished (yet)
    shared = sorted(k for k in set(here) & set(there) if k[0] not in missing)
    if len(shared) < 3:
        return None
    there, here = {k: there[k] for k in shared}, {k: here[k] for k in shared}
    passages = sorted({p for p, _ in shared})

    def centred(rewards: dict[tuple[str, int], float]) -> list[float]:
        """Each self-edit's reward minus its passage's mean."""
        mean = {p: statistics.fmean(r for (q, _), r in rewards.items() if q == p) for p in passages}
        return [rewards[k] - mean[k[0]] for k in shared]

    kept: dict[str, set[int]] = {}
    for k in view_round.records(f"{round_dir.name}/kept.jsonl"):
        kept.setdefault(k["item_id"], set()).add(k["self_edit_index"])
    top: dict[str, set[int]] = {}
    for pid in passages:
        scores = {i: r for (p, i), r in there.items() if p == pid}
        best = max(scores.values())
        if any(r < best for r in scores.values()):
            top[pid] = {i for i, r in scores.items() if r == best}
    choices = []
    for name, chosen in (("kept by the E-step", kept), ("each passage's top reward (ties together)", top)):
        a_there, a_here = _advantages(chosen, there), _advantages(chosen, here)
        both = sorted(set(a_there) & set(a_here))
        choices.append({"chosen": name, "passages": len(both), "in_round": [a_there[p] for p in both],
                        "here": [a_here[p] for p in both]})
    baseline = (view_round.config.get("train") or {}).get("baseline")
    if baseline == "no-adaptation":  # the base model's answers: no trial seed
        row, base_here = "baseline", {(b["passage_id"], -1): b["accuracy"] for b in view.records("baselines.jsonl")}
    else:
        row = {"passage-only": "passage", "passage-twice": "passage-twice"}.get(baseline, "")
        base_here = _rewards([{**t, "self_edit_index": -1} for t in trials if t["condition"] == row])
    above = [here[(p, i)] - base_here[(p, -1)] for p, ids in kept.items() for i in ids
             if (p, i) in here and (p, -1) in base_here]
    return {"round": f"{round_dir.parent.name} {round_dir.name}", "differ": settings_differ(view, round_dir),
            "self_edits": len(shared), "passages": len(passages),
            "r": correlation([there[k] for k in shared], [here[k] for k in shared]),
            "r_within": correlation(centred(there), centred(here)),
            "choices": choices, "baseline": baseline, "baseline_row": row, "kept_vs_baseline": above}


def _texts(f: dict) -> tuple[str, list[str], list[list[str]], str]:
    """(heading, paragraphs, table rows, closing line) of a re-test, shared by markdown and the page."""
    lines = [f"Not the same trials: {', '.join(f['differ'])} differ from the round's run."] if f["differ"] else []
    lines.append(f"Each self-edit's reward in the round against its reward here: r = {f['r']:.2f} over "
                 f"{f['self_edits']} self-edits in {f['passages']} passages; within passages (each reward minus its "
                 f"passage's mean, what a best-of-k choice rests on) r = {f['r_within']:.2f}.")
    rows = [[c["chosen"], str(c["passages"]), _pm(c["in_round"]), _pm(c["here"])] for c in f["choices"]]
    above = f["kept_vs_baseline"]
    closing = (f"The {len(above)} kept self-edits against the `{f['baseline_row']}` row here (the round kept only "
               f"those that beat its {f['baseline']} trial): {_pm(above)} points; {sum(a > 0 for a in above)} still "
               f"above it, {sum(a == 0 for a in above)} level.") if above else ""
    return f"Re-test of {f['round']}: its E-step with other trial seeds", lines, rows, closing


HEADER = ["chosen in the round", "passages", "advantage over the passage's other self-edits in the round (points, "
          "paired)", "the same, here"]


def retest_markdown(view: RunView, condition: str, round_dir: Path) -> str:
    f = retest_figures(view, condition, round_dir)
    if f is None:
        return f"## Re-test of {round_dir.parent.name} {round_dir.name}\n\nFewer than 3 self-edits re-tested so far.\n"
    heading, paragraphs, rows, closing = _texts(f)
    out = [f"## {heading}", ""]
    for text in paragraphs:
        out += [text, ""]
    out += markdown_table(HEADER, rows)
    return "\n".join(out + (["", closing] if closing else [])) + "\n"


def retest_html(view: RunView) -> str:
    out = []
    for condition, round_dir in round_rows(view):
        f = retest_figures(view, condition, round_dir)
        if f is None:
            continue
        heading, paragraphs, rows, closing = _texts(f)
        out += [f"<h2>{esc(heading)}</h2>", *(f"<p>{esc(t)}</p>" for t in paragraphs),
                table(HEADER, ([esc(c) for c in r] for r in rows), numeric={1, 2, 3}),
                f"<p>{esc(closing)}</p>" if closing else ""]
    return "".join(out)


def retest_sections(view: RunView) -> str:
    """Every re-test section of an evaluation, as markdown ('' when no row trains a ReST-EM round's self-edits)."""
    return "".join("\n" + retest_markdown(view, c, d) for c, d in round_rows(view))

"""The page sections of a `seal train` run: rewards per round, what was kept, how the self-edits changed.

A finished round is read from its round.json; the round in progress from its trials so far.
Per round: the round against the bar its E-step used (seal.reporting.rounds), the mean reward of kept
and not-kept self-edits, a strip plot of every self-edit's reward (kept ones marked), self-edit quality
(grounding, coverage, length: seal.domains.knowledge.quality), stage times, and per input its
self-edits with rewards. `seal report --markdown` takes the self-edits' form per round (`form_markdown`:
sampled and kept, their length and copied share).
"""

from __future__ import annotations

import statistics

from seal.plots import plot_rewards
from seal.report import paired_change
from seal.reporting.html import esc, fold, markdown_table, pct, plot, pm, pre, table
from seal.reporting.read import RunView
from seal.reporting.recipes import profile_html
from seal.reporting.rounds import bar_html, bars, round_dirs, round_rewards
from seal.stats import mean_and_stderr


def round_qualities(view: RunView) -> list[dict]:
    """Per round of a knowledge run: self-edit quality beside the round's mean reward."""
    from seal.domains.knowledge.quality import self_edit_quality
    from seal.domains.knowledge.sources import load_passages

    rows = []
    for round_dir in round_dirs(view):
        relative = round_dir.relative_to(view.path)
        if not (round_dir / "passages.json").is_file() or not (round_dir / "self_edits.jsonl").is_file():
            continue
        passages = {p.id: p for p in load_passages(str(round_dir / "passages.json"))}
        summary = view.json(f"{relative}/round.json") or {}
        rows.append({"round": round_dir.name, **self_edit_quality(view.records(f"{relative}/self_edits.jsonl"), passages),
                     "reward": summary.get("mean_reward")})
    return rows


FORM_EXPLAIN = ("Every self-edit the round sampled, and the pairs its E-step kept. Words: the median length; "
               "sequences: training sequences a self-edit yields; copied: share of its word 5-grams found in its "
               "passage (train.max_copy); coverage: share of the passage's gold answers it restates.")


def form_markdown(view: RunView) -> str:
    """Per round of a knowledge run, what the self-edits look like: the sampled ones and the kept ones."""
    figure = lambda value, spec: "-" if value is None else format(value, spec)  # noqa: E731
    rows = []
    for q in round_qualities(view):
        finished = (view.path / q["round"] / "round.json").is_file()
        kept = view.records(f"{q['round']}/kept.jsonl") if finished else []
        shares = [k["copied"] for k in kept if k.get("copied") is not None]
        words = statistics.median(len(k["self_edit"].split()) for k in kept) if kept else None
        rows.append([q["round"].split("-")[1], str(q["self_edits"]), figure(q["words"], ".0f"),
                     *(figure(q[c], ".2f") for c in ("sequences", "copied", "coverage")),
                     str(len(kept)) if finished else "- (in progress)", figure(words, ".0f"),
                     figure(sum(shares) / len(shares) if shares else None, ".2f")])
    if not rows:
        return ""
    header = ["round", "self-edits", "words", "sequences", "copied", "coverage", "kept", "kept: words", "kept: copied"]
    return "\n".join(["", "## What the self-edits look like", "", FORM_EXPLAIN, "", *markdown_table(header, rows)]) + "\n"


def history_of(view: RunView) -> list[dict]:
    return [h for h in (view.json(f"{d.name}/round.json") for d in round_dirs(view)) if isinstance(h, dict)]


def _strip_plot(rounds: list[tuple[int, dict, set]]):
    def draw(f):
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        fig, ax = plt.subplots(figsize=(1.8 + 1.4 * len(rounds), 3.4))
        for r, rewards, kept in rounds:
            points = [(iid, e, v) for iid, per in rewards.items() for e, v in per.items()]
            for i, (iid, e, v) in enumerate(points):
                jitter = ((i * 0.618) % 1 - 0.5) * 0.5
                ax.plot(r + jitter, 100 * v, "o", ms=4, alpha=0.75,
                        color="#1a7f37" if (iid, e) in kept else "#9aa3b5")
        ax.set_xticks([r for r, _, _ in rounds])
        ax.set_xlabel("ReST-EM round (green: kept)")
        ax.set_ylabel("self-edit reward, %")
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        fig.savefig(f, dpi=110)
        plt.close(fig)
        return f
    return draw


def train_sections(view: RunView) -> str:
    history = history_of(view)
    out = ["<h2>Rounds</h2>"]
    rows = []
    for r, h in enumerate(history):
        change = paired_change(history, r) if r else None
        sft = h.get("sft")
        rows.append([str(h["round"]), str(h.get("inputs", h.get("passages"))), str(h["self_edits"]),
                     esc(h.get("baseline", "no-adaptation")), pct(h["mean_baseline"]),
                     pm(h["mean_reward"], h["reward_stderr"]), pm(change[0], change[1]) if change else "-",
                     str(h["kept"]), f"{sft['epoch_losses'][0]:.3f} → {sft['epoch_losses'][-1]:.3f}" if sft else "-",
                     f"{sum(h['timings'].values()) / 60:.1f}"])
    if not rows:
        out.append('<p class="muted">No round has finished yet.</p>')
    else:
        out += [table(["round", "inputs", "self-edits", "baseline", "mean baseline", "mean reward ± s.e.",
                       "change vs round 0 (paired)", "kept", "SFT loss", "minutes"], rows, numeric={0, 1, 2, 4, 5, 6, 7, 9}),
                plot(lambda f: plot_rewards(history, f), "mean reward per round")]
    out.append(bar_html(view))
    strips, split_rows, quality = [], [], {q["round"]: q for q in (round_qualities(view) if view.domain == "knowledge" else [])}
    for round_dir in round_dirs(view):
        r = int(round_dir.name.split("-")[1])
        rel = round_dir.name
        rewards = round_rewards(view, round_dir)
        kept = {(k["item_id"], k["self_edit_index"]) for k in view.records(f"{rel}/kept.jsonl")}
        strips.append((r, rewards, kept))
        kept_values = [v for iid, per in rewards.items() for e, v in per.items() if (iid, e) in kept]
        other = [v for iid, per in rewards.items() for e, v in per.items() if (iid, e) not in kept]
        done = (round_dir / "round.json").is_file()
        q = quality.get(rel, {})
        every = kept_values + other
        split_rows.append([str(r) + ("" if done else " (in progress: all so far, none selected yet)"), str(len(every)),
                           pm(*mean_and_stderr(kept_values)) if kept_values else "-",
                           (pm(*mean_and_stderr(other)) if len(other) > 1 else (pct(other[0]) if other else "-"))
                           if done else (pm(*mean_and_stderr(every)) if len(every) > 1 else "-") + " (all)",
                           "-" if q.get("grounding") is None else f"{q['grounding']:.2f}",
                           "-" if q.get("coverage") is None else f"{q['coverage']:.2f}",
                           "-" if q.get("sequences") is None else f"{q['sequences']:.1f}",
                           "-" if q.get("copied") is None else f"{q['copied']:.2f}"])
    if strips:
        out += ["<h2>Kept and not kept</h2><p class=\"muted\">Each self-edit's reward (its trials averaged over "
                "seeds). Grounding: share of its names and numbers found in the passage; coverage: share of the "
                "passage's gold answers it restates; sequences: training sequences it yields; copied: share of "
                "its word 5-grams found in the passage (train.max_copy).</p>",
                table(["round", "self-edits rewarded", "kept: mean reward", "not kept: mean reward", "grounding",
                       "coverage", "sequences", "copied"], split_rows, numeric={1, 2, 3, 4, 5, 6, 7}),
                plot(_strip_plot(strips), "every self-edit's reward per round")]
    if history:
        out += ["<h2>Stage times</h2>", table(["round", *map(esc, history[0]["timings"])], (
            [str(h["round"]), *[f"{v:.0f} s" for v in h["timings"].values()]] for h in history),
            numeric=set(range(1, 1 + len(history[0]["timings"]))))]
    if view.domain == "arc":
        out.append(profile_html(view))
    out.append(self_edit_folds(view))
    return "".join(out)


def self_edit_folds(view: RunView) -> str:
    out = ["<h2>Self-edits by round</h2>"]
    for round_dir in round_dirs(view):
        rel = round_dir.name
        rewards = round_rewards(view, round_dir)
        kept = {(k["item_id"], k["self_edit_index"]) for k in view.records(f"{rel}/kept.jsonl")}
        _, baselines = bars(view, round_dir)
        parts = []
        for record in view.records(f"{rel}/self_edits.jsonl"):
            iid = record.get("passage_id", record.get("task_id"))
            per = rewards.get(iid, {})
            bar = baselines.get(iid)
            head = f"{esc(record.get('title', iid))}" + (f" · bar {pct(bar, 0)}" if bar is not None else "")
            edits = "".join(
                f"<div class=\"{'kept' if (iid, e) in kept else ''}\"><b>{e}</b>: reward "
                f"{pct(per[e], 0) if e in per else 'not yet run'}{' · kept' if (iid, e) in kept else ''}{pre(text)}</div>"
                for e, text in enumerate(record["self_edits"]))
            parts.append(fold(head, edits))
        out.append(fold(f"round {rel.split('-')[1]} ({len(parts)} inputs)", "".join(parts)))
    return "".join(out)

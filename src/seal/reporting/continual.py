"""The page sections of `seal continual`: the matrix and heat-map of every finished sequence
(seal.report.summarise_continual, recomputed from steps.jsonl, so a sequence cut off mid-way shows
its steps so far apart), and per step the self-edit and the answers.
"""

from __future__ import annotations

from seal.plots import plot_forgetting
from seal.report import summarise_continual
from seal.reporting.html import esc, fold, pct, plot, pm, pre, table
from seal.reporting.knowledge import answers_table
from seal.reporting.read import RunView


def continual_results(view: RunView) -> tuple[dict, dict]:
    """({condition: finished sequences}, {(condition, s): steps so far} for sequences cut off)."""
    length = view.config.get("continual", {}).get("sequence_length", 8)
    finished: dict[str, list[dict]] = {}
    partial: dict[tuple[str, int], list[dict]] = {}
    for condition in view.config.get("conditions", []):
        for s in range(view.config.get("continual", {}).get("sequences", 1)):
            rel = f"{condition}/sequence-{s}"
            base = [b["accuracy"] for b in view.records(f"{rel}/baselines.jsonl")]
            steps = sorted(view.records(f"{rel}/steps.jsonl"), key=lambda r: r["step"])
            if len(steps) == length and len(base) == length:
                finished.setdefault(condition, []).append({"base": base, "rows": [r["accuracies"] for r in steps],
                                                           "steps": steps, "sequence": s})
            elif steps:
                partial[(condition, s)] = steps
    return finished, partial


def continual_sections(view: RunView) -> str:
    finished, partial = continual_results(view)
    out = []
    if finished:
        summary = summarise_continual(finished)
        rows = [[esc(c), str(v["sequences"]), pm(v["just_learned_accuracy"], v["just_learned_accuracy_stderr"]),
                 pm(v["final_accuracy"], v["final_accuracy_stderr"]),
                 pm(v["backward_transfer"], v["backward_transfer_stderr"]),
                 pm(v["forward_effect"], v["forward_effect_stderr"])] for c, v in summary["conditions"].items()]
        out += ["<h2>Forgetting</h2><p class=\"muted\">Finished sequences only; ± standard error over sequences. "
                "Backward transfer: final accuracy on a passage minus its accuracy right after it was learned.</p>",
                table(["condition", "sequences", "right after learning (diagonal)", "final accuracy",
                       "backward transfer (points)", "forward effect (points)"], rows, numeric={1, 2, 3, 4, 5}),
                plot(lambda f: plot_forgetting(summary, f), "accuracy matrix per condition")]
        for condition, c in summary["conditions"].items():
            n = c["steps"]
            matrix = [["base", *[pct(b, 0) for b in c["base"]]]] + [
                [str(t), *[pct(row[j], 0) if j < len(row) else "" for j in range(n)]] for t, row in enumerate(c["matrix"])]
            out += [f"<h3>{esc(condition)}: accuracy on passage j (columns) after step t (rows)</h3>",
                    table(["after step", *[f"p{j}" for j in range(n)]], matrix, numeric=set(range(1, n + 1)))]
    for (condition, s), steps in partial.items():
        out += [f"<h3>{esc(condition)} sequence {s}: cut off after {len(steps)} steps</h3>",
                table(["after step", "accuracies so far"], ([str(r["step"]), ", ".join(pct(a, 0) for a in r["accuracies"])]
                                                            for r in steps))]
    if not out:
        out.append("<p class=\"muted\">No step has finished yet.</p>")
    out.append("<h2>Steps</h2>")
    for condition, sequences in finished.items():
        for seq in sequences:
            out.append(fold(f"{esc(condition)} sequence {seq['sequence']}", _steps(seq["steps"])))
    for (condition, s), steps in partial.items():
        out.append(fold(f"{esc(condition)} sequence {s} (cut off)", _steps(steps)))
    return "".join(out)


def _steps(steps: list[dict]) -> str:
    parts = []
    for r in steps:
        loss = r["train"]["epoch_losses"] if r.get("train") else None
        head = (f"step {r['step']}: accuracy on the new passage {pct(r['accuracies'][r['step']], 0)}"
                + (f", loss {loss[0]:.2f} → {loss[-1]:.2f}" if loss else ""))
        body = (pre(r["self_edit"]) if r.get("self_edit") else "<p class=\"muted\">no self-edit</p>")
        body += "".join(fold(f"passage {j}: {pct(a, 0)}", answers_table(r["answers"][j]))
                        for j, a in enumerate(r["accuracies"]) if isinstance(r["answers"][j], list)
                        and r["answers"][j] and isinstance(r["answers"][j][0], dict))
        parts.append(fold(head, body))
    return "".join(parts)

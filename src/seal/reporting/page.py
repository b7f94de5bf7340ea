"""`seal report RUN_DIR [RUN_DIR...]`: one self-contained HTML page for any command's runs.

    seal report runs/20261129-004448-demo-demo                  # -> runs/.../report.html
    seal report runs/A runs/B -o compare.html                    # two runs side by side

One run: its status (finished, running, or stopped before the end: the page shows what exists
so far), the resolved config, and the sections of its command (seal.reporting.knowledge,
.train, .continual, .arc). Several runs of one command: a comparison table first (each run a
column), then each run's sections. The page is written atomically; bad input (a directory
that is not a run, runs of different commands) is one error line and writes nothing.
"""

from __future__ import annotations

from seal.reporting.arc import arc_sections
from seal.reporting.continual import continual_results, continual_sections
from seal.reporting.html import esc, fold, page, pm, pre, table
from seal.reporting.knowledge import adapt_sections, generate_sections, learn_sections, summary_of
from seal.reporting.read import RunView, open_runs
from seal.reporting.rounds import across_html
from seal.reporting.train import history_of, train_sections

SECTIONS = {"adapt": adapt_sections, "cpt": adapt_sections, "train": train_sections, "continual": continual_sections,
            "learn": learn_sections, "generate": generate_sections, "arc": arc_sections}

STATUS = {"finished": "finished", "running": "still running: the page shows what exists so far",
          "stopped": "stopped before the end (killed or failed; <code>seal ... --resume RUN_DIR</code> goes on): "
                     "the page shows what exists so far"}


def run_block(view: RunView) -> str:
    body = SECTIONS[view.kind](view)
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in dict.fromkeys(view.notes))
    head = (f"<h1>{esc(view.name)}</h1><p class=\"muted\">seal {esc(view.command)}"
            f"{' --domain arc' if view.domain == 'arc' else ''} · model <code>{esc(view.config['model']['name'])}</code>"
            f" · {STATUS[view.status()]}</p>")
    return head + notes + fold("resolved config", pre(view.config_text)) + body


def comparison(views: list[RunView]) -> str:
    """One table, each run a column, of the figures the command's own table leads with."""
    names = [esc(v.name) for v in views]
    kind = views[0].kind
    rows: dict[str, list[str]] = {}

    def put(key: str, i: int, value: str) -> None:
        rows.setdefault(key, ["-"] * len(views))[i] = value

    for i, v in enumerate(views):
        if kind in ("adapt", "cpt"):
            summary = summary_of(v)
            for c, s in (summary or {"conditions": {}})["conditions"].items():
                put(esc(c), i, pm(s["accuracy"], s["stderr"]))
        elif kind == "train":
            for h in history_of(v):
                put(f"round {h['round']} mean reward", i, pm(h["mean_reward"], h["reward_stderr"]))
                put(f"round {h['round']} kept", i, str(h["kept"]))
        elif kind == "continual":
            from seal.report import summarise_continual

            finished, _ = continual_results(v)
            for c, s in (summarise_continual(finished)["conditions"] if finished else {}).items():
                put(f"{esc(c)}: diagonal", i, pm(s["just_learned_accuracy"], s["just_learned_accuracy_stderr"]))
                put(f"{esc(c)}: final", i, pm(s["final_accuracy"], s["final_accuracy_stderr"]))
                put(f"{esc(c)}: backward transfer", i, pm(s["backward_transfer"], s["backward_transfer_stderr"]))
        elif kind == "arc":
            from seal.report import summarise_arc

            trials = v.records("trials.jsonl")
            conditions = list(dict.fromkeys(t["condition"] for t in trials))
            tasks = list(dict.fromkeys(t["task_id"] for t in trials))
            for c, s in (summarise_arc(trials, conditions, tasks)["conditions"] if trials else {}).items():
                put(esc(c), i, pm(s["success_rate"], s["stderr"]))
        elif kind == "learn":
            summary = v.json("summary.json") or {}
            for key in ("before", "after"):
                if key in summary:
                    put(f"accuracy {key}", i, pm(summary[key], None))
    if not rows:
        return ""
    return "<h2>Side by side</h2>" + table(["", *names], ([k, *vals] for k, vals in rows.items()),
                                           numeric=set(range(1, len(views) + 1)))


def render(paths: list[str]) -> tuple[str, list[RunView]]:
    views = open_runs(paths)
    if len(views) == 1:
        return page(f"seal report: {views[0].name}", run_block(views[0])), views
    across = across_html(views) if views[0].kind == "train" else ""
    body = (f"<h1>{len(views)} runs of seal {esc(views[0].command)}</h1>" + comparison(views) + across
            + "".join(f"<section><hr>{run_block(v)}</section>" for v in views))
    return page(f"seal report: {len(views)} runs", body), views

"""The page sections of ARC evaluation runs: the success table (seal.report.summarise_arc) and per
task its grids (when the task file is reachable from the run's config), each trial's recipe,
status and voted attempts drawn as coloured cells.
"""

from __future__ import annotations

from seal.report import label, summarise_arc, tasks_solved
from seal.reporting.html import esc, fold, grid, pm, pre, table
from seal.reporting.read import RunView, complete_inputs
from seal.reporting.recipes import profile_html


def _tasks(view: RunView) -> dict:
    """The run's ARC tasks by id when its task file is reachable (else {}: only attempts are drawn)."""
    try:
        from seal.config import ArcConfig
        from seal.config_load import from_dict
        from seal.domains.arc.trials import load_tasks

        return {t.id: t for t in load_tasks(from_dict(ArcConfig, view.config.get("arc", {})))}
    except Exception:  # noqa: BLE001 - a missing or moved task file leaves the grids out, nothing else
        return {}


def arc_summary(view: RunView, complete: bool = False) -> tuple[dict, list[str], list[str]] | None:
    """(seal.report.summarise_arc's summary, its conditions in the run's order, task ids) of the trials so far;
    `complete`: on the tasks every row has finished only (read.complete_inputs)."""
    trials = view.records("trials.jsonl")
    if complete:
        keep = complete_inputs(trials, "task_id")
        trials = [t for t in trials if t["task_id"] in keep]
    if not trials:
        return None
    present = {t["condition"] for t in trials}
    conditions = [c for c in dict.fromkeys([*(view.config.get("conditions") or []), *(t["condition"] for t in trials)])
                  if c in present]  # the run's order, not the records'
    task_ids = list(dict.fromkeys(t["task_id"] for t in trials))
    return summarise_arc(trials, conditions, task_ids, view.config.get("reference")), conditions, task_ids


def arc_sections(view: RunView) -> str:
    from seal.domains.arc.grids import format_grid

    found = arc_summary(view)
    if found is None:
        return "<p class=\"muted\">No trial has finished yet.</p>"
    summary, conditions, task_ids = found
    trials = view.records("trials.jsonl")
    rows = [[esc(label(c)), pm(v["success_rate"], v["stderr"]),
             pm(v["paired"]["mean"], v["paired"]["stderr"]) if v["paired"] else
             ("reference" if c == summary["reference"] else "-"), esc(tasks_solved(v)), str(v["tasks"]), str(v["trials"]),
             esc(", ".join(f"{k} {n}" for k, n in sorted(v["statuses"].items())))]
            for c, v in summary["conditions"].items()]
    out = ["<h2>Results</h2>", table(["condition", "success ± s.e.", f"change vs {esc(summary['reference'])} (paired)",
                                      "tasks solved", "tasks", "trials", "statuses"], rows, numeric={1, 2, 3, 4, 5}),
           profile_html(view), "<h2>Tasks</h2>"]
    tasks = _tasks(view)
    for tid in task_ids:
        task = tasks.get(tid)
        body = ""
        if task is not None:
            body += "<div>" + "".join(grid(format_grid(e.input), f"train {i} in") + grid(format_grid(e.output), f"train {i} out")
                                      for i, e in enumerate(task.train)) + "</div>"
            body += "<div>" + "".join(grid(format_grid(e.input), f"test {i} in") + grid(
                format_grid(e.output) if e.output is not None else None, f"test {i} solution")
                for i, e in enumerate(task.test)) + "</div>"
        for t in (t for t in trials if t["task_id"] == tid):
            head = (f"{esc(label(t['condition']))} · recipe {t['self_edit_index']}: "
                    f"{'<span class=right>solved</span>' if t.get('solved') else '<span class=wrong>not solved</span>'}"
                    f" ({esc(t['status'])})")
            inner = pre(t["self_edit"]) if t.get("self_edit") else ""
            inner += "".join("<div>" + "".join(grid(g, f"test {i} attempt {a}") for a, g in enumerate(attempts)) + "</div>"
                             for i, attempts in enumerate(t.get("attempts") or []))
            body += fold(head, inner)
        per: dict[str, list[bool]] = {}
        for t in trials:
            if t["task_id"] == tid:
                per.setdefault(t["condition"], []).append(bool(t.get("solved")))
        solved = ", ".join(f"{label(c)} {sum(per[c])} of {len(per[c])}" for c in conditions if c in per)
        out.append(fold(f"task {esc(tid)} · solved: {esc(solved)}", body))
    return "".join(out)

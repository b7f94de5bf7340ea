"""`seal report --markdown RUN_DIR`: a run's tables as markdown on stdout, finished or not.

The same tables a finished run writes into RUN_DIR/report.md (seal.report), made from what the
run has written so far, for pasting into a README or an issue while a long run goes on.
"""

from __future__ import annotations

from seal.errors import SealError
from seal.report import arc_report, continual_report, report_markdown, summarise_continual, train_report
from seal.reporting.arc import arc_summary
from seal.reporting.claim import claim_markdown
from seal.reporting.continual import continual_results
from seal.reporting.knowledge import sources_markdown, summary_of
from seal.reporting.read import RunView
from seal.reporting.recipes import profile_section
from seal.reporting.retest import retest_sections
from seal.reporting.rounds import bar_markdown
from seal.reporting.train import form_markdown, history_of

STATE = {"finished": "", "running": "still running: the tables hold what exists so far",
         "stopped": "stopped before the end: the tables hold what exists so far"}


def run_markdown(view: RunView, complete: bool = False, claim: str | None = None) -> str:
    """`complete`: an evaluation's tables on the inputs every row has finished only (a stopped run's fair table);
    `claim`: an evaluation's row against every other row (seal.reporting.claim)."""
    if claim and view.kind not in ("adapt", "cpt"):
        raise SealError(f"--claim compares rows of an evaluation (seal eval/adapt/cpt); {view.path} is a seal "
                        f"{view.command} run")
    notes = [n for n in (STATE[view.status()], "on the inputs every row has finished" if complete else "") if n]
    title = view.name + (f" ({'; '.join(notes)})" if notes else "")
    if view.kind == "train":
        history = history_of(view)
        if not history:
            return f"# {title}\n\nNo ReST-EM round has finished yet.\n" + bar_markdown(view) + profile_section(view)
        return train_report(history, title) + bar_markdown(view) + \
            (form_markdown(view) if view.domain == "knowledge" else profile_section(view) if view.domain == "arc" else "")
    if view.kind == "arc":
        found = arc_summary(view, complete)
        return f"# {title}\n\nNo trial has finished yet.\n" if found is None else \
            arc_report(found[0], title) + profile_section(view)
    if view.kind in ("adapt", "cpt"):
        summary = summary_of(view, complete)
        if summary is None:
            return f"# {title}\n\nNo record yet.\n"
        return report_markdown(summary, title) + sources_markdown(view, complete) + retest_sections(view) + \
            ("\n" + claim_markdown(summary, claim) if claim else "")
    if view.kind == "continual":
        finished, _ = continual_results(view)
        return f"# {title}\n\nNo sequence has finished yet.\n" if not finished else \
            continual_report(summarise_continual(finished), title)
    raise SealError(f"seal {view.command} runs have no markdown tables; seal report {view.path} writes their page")

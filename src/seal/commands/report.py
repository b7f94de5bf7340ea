"""`seal report RUN_DIR [RUN_DIR...] [-o FILE]`: the HTML page of runs (seal.reporting.page).

One run: RUN_DIR/report.html by default; several: seal-report.html in the working directory.
`--markdown`: each run's tables as markdown on stdout instead (seal.reporting.markdown), nothing written;
with `--claim ROW`, an evaluation's ROW against every other row (seal.reporting.claim); several `seal train`
runs end with their rounds against the first run's (seal.reporting.rounds).
"""

from __future__ import annotations

from pathlib import Path

from seal.errors import SealError
from seal.reporting.page import render


def write_report(paths: list[str], out: str | None = None) -> Path:
    """Render first, then write: a failure while reading any run writes nothing."""
    from seal.runs import write_atomic

    text, views = render(paths)
    target = Path(out) if out else (views[0].path / "report.html" if len(views) == 1 else Path("seal-report.html"))
    if target.is_dir():
        raise SealError(f"{target} is a directory; give -o a file name")
    if not target.parent.is_dir():
        raise SealError(f"{target.parent} does not exist")
    write_atomic(target, text)
    return target


def markdown_report(paths: list[str], complete: bool = False, claim: str | None = None) -> str:
    """Every run's tables, read first: a run that cannot be read prints nothing."""
    from seal.reporting.markdown import run_markdown
    from seal.reporting.read import RunView
    from seal.reporting.rounds import across_markdown

    views = [RunView(p) for p in paths]
    across = across_markdown(views) if all(v.kind == "train" for v in views) else ""
    return "\n".join([run_markdown(v, complete, claim) for v in views]) + across  # all read before any is printed

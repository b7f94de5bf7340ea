"""`seal report RUN_DIR [RUN_DIR...] [-o FILE]`: the HTML page of runs (seal.reporting.page).

One run: RUN_DIR/report.html by default; several: seal-report.html in the working directory.
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

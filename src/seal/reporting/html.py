"""The pieces of a self-contained HTML page: tables, folds, inline plots, ARC grids, the page itself (and the
formatters `seal report --markdown` shares with it: signed changes, markdown tables).

Nothing is fetched when the page is opened: styles are inline, plots are PNG data URIs, and
the only script counts the images the browser decoded (`data-images` on <body>), which a test
reads back from headless Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import re
from typing import Callable, Iterable

ARC_COLOURS = ("#000000", "#0074d9", "#ff4136", "#2ecc40", "#ffdc00", "#aaaaaa", "#f012be", "#ff851b", "#7fdbff",
               "#870c25")
"""The ARC viewer's palette, colour c for cell value c."""

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #1d2330; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #dde; }
h3 { margin-top: 1.2em; } .muted { color: #667; } .note { background: #fff6d8; padding: .4em .7em; }
table { border-collapse: collapse; margin: .6em 0; } th, td { padding: .25em .6em; border-bottom: 1px solid #e4e6ee; }
th { text-align: left; background: #f3f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; background: #f6f7fa; padding: .5em .7em; margin: .3em 0; max-height: 24em; overflow: auto; }
details { margin: .3em 0; } details details { margin-left: 1.3em; } summary { cursor: pointer; } .right { color: #1a7f37; } .wrong { color: #b42318; }
.kept { background: #e7f6ea; } .grid { display: inline-grid; gap: 1px; background: #888; border: 1px solid #888;
  margin: 2px 8px 2px 0; vertical-align: top; } .grid span { width: 12px; height: 12px; display: block; }
.pair { display: inline-block; margin-right: 18px; } .runs { display: flex; gap: 2em; flex-wrap: wrap; }
img { max-width: 100%; }
"""

COUNT_IMAGES = """
window.addEventListener("load", function () {
  var n = 0; document.querySelectorAll("img").forEach(function (i) { if (i.naturalWidth > 0) n++; });
  document.body.setAttribute("data-images", String(n));
});
"""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def esc(value) -> str:
    """Text as HTML: escaped, control characters (which HTML forbids) shown as U+FFFD."""
    return html.escape(_CONTROL.sub("\ufffd", str(value)), quote=True)


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{100 * value:.{digits}f} %"


def pm(mean: float | None, stderr: float | None) -> str:
    """A figure in percent with its standard error; '-' when missing."""
    if mean is None or mean != mean:
        return "-"
    return f"{100 * mean:.1f} ± {100 * stderr:.1f}" if stderr is not None and stderr == stderr else f"{100 * mean:.1f}"


def signed(change: tuple | None) -> str:
    """A paired change (mean, standard error, ...) as signed points ± standard error; '-' when missing.

    >>> signed((0.0625, 0.025, 16)), signed(None)
    ('+6.2 ± 2.5', '-')
    """
    return f"{100 * change[0]:+.1f} ± {100 * change[1]:.1f}" if change else "-"


def markdown_table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    """`table`'s markdown counterpart, as lines (cells are text).

    >>> markdown_table(["a", "b"], [["1", "2"]])
    ['| a | b |', '|---|---|', '| 1 | 2 |']
    """
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def table(header: list[str], rows: Iterable[list[str]], numeric: set[int] = frozenset(), row_class=None) -> str:
    """Cells are HTML already (escape text with `esc`); columns in `numeric` are right-aligned."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_class(i)}"' if row_class and row_class(i) else ""
        body.append(f"<tr{cls}>" + "".join(f'<td class="num">{c}</td>' if j in numeric else f"<td>{c}</td>"
                                           for j, c in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def fold(summary: str, body: str, opened: bool = False) -> str:
    return f"<details{' open' if opened else ''}><summary>{summary}</summary>{body}</details>"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def plot(draw: Callable[[io.BytesIO], object], alt: str) -> str:
    """An inline PNG drawn by `draw(file)` (a seal.plots function); '' when matplotlib is missing."""
    buffer = io.BytesIO()
    if draw(buffer) is None or not buffer.getvalue():
        return ""
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<p><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></p>'


def grid(text: str | None, label: str = "") -> str:
    """An ARC grid (one line per row, one digit per cell) as coloured cells."""
    if not text:
        return f'<span class="pair muted">{esc(label)} (none)</span>'
    rows = [r for r in text.splitlines() if r]
    width = max(len(r) for r in rows)
    cells = "".join(f'<span style="background:{ARC_COLOURS[int(c)] if c.isdigit() else "#fff"}"></span>'
                    for r in rows for c in r.ljust(width))
    return (f'<span class="pair"><div class="muted">{esc(label)}</div>'
            f'<span class="grid" style="grid-template-columns: repeat({width}, 12px)">{cells}</span></span>')


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{STYLE}</style><script>{COUNT_IMAGES}</script></head><body>{body}</body></html>\n")

"""`seal report --markdown RUN_DIR --claim ROW`: one row of an evaluation against every other row.

    seal report --markdown --complete runs/<time>-eval-squad48-heldout --claim "round 2"

SEAL's claim for a table is a list of paired comparisons: the trained generator's self-edits against
the base generator's, the passage alone, the passage twice, GPT-4.1's. The run's own table gives
the paired change against one reference row (and `compare_with`'s); this gives ROW's change against
each other row, over the passages both cover, and says whether it clears two standard errors of
that change: "above" (change > 2 s.e.), "below" (change < -2 s.e.) or "within 2 s.e." (not decided
at this n), and for a change not decided how many passages would decide one of its size
(`passages_to_decide`). ROW is a condition as the run names it (`model`, `passage-twice`,
`generator:PATH`), its table label, or a piece of one label only ("round 2"). An evaluation's page shows every row against
every other the same way, on the passages every row has finished (`claim_matrix_html`).
"""

from __future__ import annotations

import math

from seal.errors import SealError
from seal.report import label
from seal.reporting.html import esc, signed, table
from seal.stats import paired_difference


def find_row(summary: dict, spec: str) -> str:
    """The condition `spec` names: exactly, by its label, or as a piece of exactly one row's label."""
    data = summary.get("data_source")
    names = list(summary["conditions"])
    for name in names:
        if spec in (name, label(name, data)):
            return name
    pieces = [n for n in names if spec in label(n, data)]
    if len(pieces) == 1:
        return pieces[0]
    rows = ", ".join(label(n, data) for n in names)
    if pieces:
        raise SealError(f"--claim {spec!r} matches {len(pieces)} rows ({', '.join(label(n, data) for n in pieces)}); "
                        f"give more of one")
    raise SealError(f"--claim {spec!r} names no row of this table; its rows: {rows}")


def verdict(change: tuple[float, float, int] | None) -> str:
    """'above' / 'below' when the paired change clears two standard errors, else 'within 2 s.e.'.

    >>> verdict((0.08, 0.03, 48)), verdict((-0.07, 0.03, 48)), verdict((0.05, 0.03, 48)), verdict(None)
    ('above', 'below', 'within 2 s.e.', '-')
    """
    if change is None:
        return "-"
    mean, stderr, _ = change
    if mean > 2 * stderr and mean > 0:
        return "above"
    if mean < -2 * stderr and mean < 0:
        return "below"
    return "within 2 s.e."


def passages_to_decide(change: tuple[float, float, int] | None) -> str:
    """For a change not decided: the passages at which a true change of this size, with this passage-to-passage
    spread, clears two standard errors 4 times in 5 (80 % power: n (2.84 s.e. / |change|)^2); '' once decided,
    '-' for no change at all. A planning figure: the observed change is itself uncertain.

    >>> passages_to_decide((0.025, 0.075, 4)), passages_to_decide((0.08, 0.03, 48)), passages_to_decide((0.0, 0.02, 9))
    ('291', '', '-')
    """
    if change is None or verdict(change) != "within 2 s.e.":
        return ""
    mean, stderr, n = change
    if mean == 0:
        return "-"
    return str(math.ceil(n * (2.84 * stderr / abs(mean)) ** 2 - 1e-9))


def _per_row(summary: dict) -> dict[str, dict[int, float]]:
    return {name: {p["index"]: p[name] for p in summary["per_passage"] if p.get(name) is not None}
            for name in summary["conditions"]}


def claim_matrix_html(summary: dict | None) -> str:
    """Every row against every other as one table for the page: cell (row, column) is the row minus the column,
    paired, in green where it is above by more than two standard errors, red where below ('' under 3 rows)."""
    names = list(summary["conditions"]) if summary else []
    if len(names) < 3:
        return ""
    data, per = summary.get("data_source"), _per_row(summary)
    style = {"above": "right", "below": "wrong", "within 2 s.e.": "muted", "-": "muted"}
    rows = []
    for k, row in enumerate(names, 1):
        cells = [f"<b>{k}</b>. {esc(label(row, data))}"]
        for other in names:
            change = None if other == row else paired_difference(per[row], per[other])
            text = "" if other == row else signed(change)
            cells.append(f'<span class="{style[verdict(change)]}" style="white-space: nowrap">{text}</span>')
        rows.append(cells)
    return (f'<h2>Every row against every other</h2><p class="muted">On the {len(summary["per_passage"])} passages '
            'every row has finished: row minus column, paired, in points ± standard error; green where the row is '
            'above by more than two standard errors, red where below, grey where this n does not decide '
            '(<code>seal report --markdown --complete RUN --claim ROW</code> lists one row\'s).</p>'
            + table(["row minus column", *map(str, range(1, len(names) + 1))], rows,
                    numeric=set(range(1, len(names) + 1))))


def claim_markdown(summary: dict, spec: str) -> str:
    """ROW's paired change against every other row, with each verdict, then the verdicts by kind."""
    row = find_row(summary, spec)
    data = summary.get("data_source")
    per = _per_row(summary)
    lines = [f"## {label(row, data)} against every other row", "",
             "Paired change: this row minus the other over the passages both cover (± standard error over "
             "passages); the verdict says whether it clears two standard errors.", "",
             "| against | its accuracy | this row's (same passages) | change (points, paired) | passages | verdict "
             "| passages to decide (80 % power) |",
             "|---|---|---|---|---|---|---|"]
    by_verdict: dict[str, list[str]] = {}
    for other in summary["conditions"]:
        if other == row:
            continue
        change = paired_difference(per[row], per[other])
        shared = sorted(set(per[row]) & set(per[other]))
        mean_of = lambda name: sum(per[name][i] for i in shared) / len(shared)  # noqa: E731
        cells = [f"{100 * mean_of(other):.1f} %", f"{100 * mean_of(row):.1f} %"] if shared else ["-", "-"]
        text = signed(change)
        found = verdict(change)
        by_verdict.setdefault(found, []).append(label(other, data))
        lines.append(f"| {label(other, data)} | {' | '.join(cells)} | {text} | {len(shared)} | {found} "
                     f"| {passages_to_decide(change)} |")
    lines.append("")
    for found, what in (("above", "Above by more than two standard errors"),
                        ("below", "Below by more than two standard errors"),
                        ("within 2 s.e.", "Not decided at this n")):
        if by_verdict.get(found):
            lines.append(f"- {what}: {', '.join(by_verdict[found])}.")
    return "\n".join(lines) + "\n"

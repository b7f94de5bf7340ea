"""Grounding, coverage and length of the self-edits sampled in each round of a `seal train` run.

    .venv/bin/python bench/self_edit_quality.py runs/<time>-train-rest-em-fictional

How faithful (grounding), how complete (coverage) and how long (training sequences) each
round's sampled self-edits are (seal.domains.knowledge.quality states the measures; grounding
is exact on fictional passages), beside the round's mean reward, with the ratio to round 0.
It reads the run's records only; nothing is recomputed. `seal report` shows the same table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seal.reporting.read import RunView
from seal.reporting.train import round_qualities


def main() -> None:
    rows = round_qualities(RunView(Path(sys.argv[1])))
    ref = rows[0]
    ratio = lambda a, b: a / b if a is not None and b else float("nan")  # noqa: E731
    print(f"{'round':>8} {'self-edits':>10} {'grounding':>9} {'ratio':>6} {'coverage':>8} {'ratio':>6} {'sequences':>9} {'reward':>7}")
    for r in rows:
        reward = f"{r['reward']:.3f}" if r["reward"] is not None else "-"
        print(f"{r['round']:>8} {r['self_edits']:>10} {r['grounding'] or 0:>9.2f} {ratio(r['grounding'], ref['grounding']):>6.2f} "
              f"{r['coverage'] or 0:>8.2f} {ratio(r['coverage'], ref['coverage']):>6.2f} {r['sequences'] or 0:>9.1f} {reward:>7}")


if __name__ == "__main__":
    main()

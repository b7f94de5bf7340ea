"""Grounding, coverage and length of the self-edits sampled in each round of a `seal train` run.

    .venv/bin/python bench/self_edit_quality.py runs/<time>-train-rest-em-fictional

For fictional passages (see bench/sampling_temperature.py for the measures): how faithful
(grounding), how complete (coverage) and how long (training sequences) each round's
sampled self-edits are, beside the round's mean reward, with the ratio to round 0. It reads
the run's records only; nothing is recomputed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from seal.domains.knowledge.sources import load_passages
from seal.domains.knowledge.prompts import split_self_edit

sys.path.insert(0, str(Path(__file__).parent))
from sampling_temperature import coverage, grounding  # noqa: E402


def main() -> None:
    run = Path(sys.argv[1])
    rows = []
    for round_dir in sorted(run.glob("round-*"), key=lambda p: int(p.name.split("-")[1])):
        if not (round_dir / "self_edits.jsonl").exists():
            continue
        passages = {p.id: p for p in load_passages(str(round_dir / "passages.json"))}
        g, c, n, lines = [], [], [], 0
        for line in (round_dir / "self_edits.jsonl").read_text().splitlines():
            record = json.loads(line)
            p = passages[record["passage_id"]]
            for edit in record["self_edits"]:
                value = grounding(edit, p.context)
                if value is not None:
                    g.append(value)
                c.append(coverage(edit, [q.answer for q in p.questions]))
                n.append(len(split_self_edit(edit)))
                lines += 1
        summary = json.loads((round_dir / "round.json").read_text()) if (round_dir / "round.json").exists() else {}
        rows.append({"round": round_dir.name, "self_edits": lines, "grounding": sum(g) / max(len(g), 1),
                     "coverage": sum(c) / len(c), "sequences": sum(n) / len(n),
                     "reward": summary.get("mean_reward")})
    ref = rows[0]
    print(f"{'round':>8} {'self-edits':>10} {'grounding':>9} {'ratio':>6} {'coverage':>8} {'ratio':>6} {'sequences':>9} {'reward':>7}")
    for r in rows:
        reward = f"{r['reward']:.3f}" if r["reward"] is not None else "-"
        print(f"{r['round']:>8} {r['self_edits']:>10} {r['grounding']:>9.2f} {r['grounding'] / ref['grounding']:>6.2f} "
              f"{r['coverage']:>8.2f} {r['coverage'] / max(ref['coverage'], 1e-9):>6.2f} {r['sequences']:>9.1f} {reward:>7}")


if __name__ == "__main__":
    main()

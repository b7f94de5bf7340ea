"""Does the generator SFT of a ReST-EM round collapse self-edits? Re-run one round's M-step with other settings.

    .venv/bin/python bench/sft_collapse.py runs/<time>-train-rest-em-fictional --round 0 --lr 3e-4 --epochs 2

Takes round r's kept (prompt, self-edit) pairs, fine-tunes the round's input generator on them
with the given SFT settings, samples k self-edits for round r+1's passages with round r+1's
sampling seed, and prints their grounding, coverage and length (bench/self_edit_quality.py's
measures) beside those of the self-edits the run itself sampled in round r+1 (the reference).
No inner loop runs, so it takes minutes, not an hour.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from seal.domains.knowledge.sources import load_passages
from seal.domains.knowledge.prompts import self_edit_prompt, split_self_edit
from seal.models import load_model
from seal.runs import load_run_config
from seal.domains.knowledge.self_edits import sample_self_edits
from seal.loops.sft import sft_generator

from seal.domains.knowledge.quality import coverage, grounding


def quality(passages, edits_by_passage) -> tuple[float, float, float]:
    g, c, n = [], [], []
    for p, edits in zip(passages, edits_by_passage):
        for e in edits:
            value = grounding(e, p.context)
            if value is not None:
                g.append(value)
            c.append(coverage(e, [q.answer for q in p.questions]))
            n.append(len(split_self_edit(e)))
    return sum(g) / max(len(g), 1), sum(c) / len(c), sum(n) / len(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--round", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    run, r = Path(args.run), args.round
    config = load_run_config(run)
    summary = json.loads((run / f"round-{r}" / "round.json").read_text())
    passages = {p.id: p for p in load_passages(str(run / f"round-{r}" / "passages.json"))}
    kept = [json.loads(line) for line in (run / f"round-{r}" / "kept.jsonl").read_text().splitlines()]
    key = "item_id" if "item_id" in kept[0] else "passage_id"
    pairs = [(self_edit_prompt(config.sampling.prompt, passages[k[key]]), k["self_edit"]) for k in kept]

    loaded = load_model(replace(config.model, name=summary["generator_in"]))
    stats = sft_generator(loaded, pairs, replace(config.train.sft, lr=args.lr, epochs=args.epochs), seed=r)
    next_passages = load_passages(str(run / f"round-{r + 1}" / "passages.json"))
    sampling = replace(config.sampling, seed=config.sampling.seed + 1_000 * (r + 1))
    ours = quality(next_passages, sample_self_edits(loaded, next_passages, sampling))
    records = {json.loads(l)["passage_id"]: json.loads(l)["self_edits"]
               for l in (run / f"round-{r + 1}" / "self_edits.jsonl").read_text().splitlines()}
    theirs = quality(next_passages, [records[p.id] for p in next_passages])
    run_sft = config.train.sft
    print(f"SFT on {len(pairs)} pairs, loss {stats['epoch_losses'][0]:.3f} -> {stats['epoch_losses'][-1]:.3f}")
    print(f"{'generator SFT':>28} {'grounding':>9} {'coverage':>8} {'sequences':>9}")
    print(f"{f'run: lr {run_sft.lr:g}, {run_sft.epochs} epochs':>28} {theirs[0]:>9.2f} {theirs[1]:>8.2f} {theirs[2]:>9.1f}")
    print(f"{f'this: lr {args.lr:g}, {args.epochs} epochs':>28} {ours[0]:>9.2f} {ours[1]:>8.2f} {ours[2]:>9.1f}")
    print(f"{'ratio this / run':>28} {ours[0] / theirs[0]:>9.2f} {ours[1] / max(theirs[1], 1e-9):>8.2f} {ours[2] / theirs[2]:>9.2f}")


if __name__ == "__main__":
    main()

"""Does the generator SFT of a ReST-EM round collapse self-edits? Re-run one round's M-step with other settings.

    .venv/bin/python bench/sft_collapse.py runs/<time>-train-rest-em-fictional --round 0 --lr 3e-4 --epochs 2
    .venv/bin/python bench/sft_collapse.py runs/<time>-train-rest-em-squad-24 --round 0 --batch-size 5
    .venv/bin/python bench/sft_collapse.py runs/<time>-train-rest-em-squad-24-rewrite --round 0 --mask-copied 5

Takes round r's kept (prompt, self-edit) pairs, fine-tunes the round's input generator on them
with the given SFT settings (each defaults to the run's own), samples k self-edits for round r+1's
passages with round r+1's sampling seed, and prints their grounding, coverage, training sequences,
copied 5-gram share and median length (seal.domains.knowledge.quality) beside those of the
self-edits the run itself sampled in round r+1 (the reference). No inner loop runs, so it takes
minutes, not an hour.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from seal.domains.knowledge.prompts import self_edit_prompt
from seal.domains.knowledge.quality import self_edit_quality
from seal.domains.knowledge.self_edits import sample_self_edits
from seal.domains.knowledge.sources import load_passages
from seal.loops.sft import sft_generator
from seal.models import load_model
from seal.runs import load_run_config


def describe(sft) -> str:
    masked = f", mask {sft.mask_copied}" if sft.mask_copied else ""
    return f"lr {sft.lr:g}, {sft.epochs} epochs, batch {sft.batch_size}{masked}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--round", type=int, default=0)
    parser.add_argument("--lr", type=float, help="default: the run's train.sft.lr")
    parser.add_argument("--epochs", type=int, help="default: the run's train.sft.epochs")
    parser.add_argument("--batch-size", type=int, help="pairs per optimiser step; default: the run's")
    parser.add_argument("--mask-copied", type=int, metavar="N",
                        help="no loss on runs of N+ words copied from the prompt (train.sft.mask_copied); default: the run's")
    args = parser.parse_args()
    run, r = Path(args.run), args.round
    config = load_run_config(run)
    summary = json.loads((run / f"round-{r}" / "round.json").read_text())
    passages = {p.id: p for p in load_passages(str(run / f"round-{r}" / "passages.json"))}
    kept = [json.loads(line) for line in (run / f"round-{r}" / "kept.jsonl").read_text().splitlines()]
    key = "item_id" if "item_id" in kept[0] else "passage_id"
    pairs = [(self_edit_prompt(config.sampling.prompt, passages[k[key]]), k["self_edit"]) for k in kept]

    run_sft = config.train.sft
    sft = replace(run_sft, **{k: v for k, v in (("lr", args.lr), ("epochs", args.epochs),
                                                  ("batch_size", args.batch_size),
                                                  ("mask_copied", args.mask_copied)) if v is not None})
    loaded = load_model(replace(config.model, name=summary["generator_in"]))
    stats = sft_generator(loaded, pairs, sft, seed=r)
    next_passages = load_passages(str(run / f"round-{r + 1}" / "passages.json"))
    by_id = {p.id: p for p in next_passages}
    sampling = replace(config.sampling, seed=config.sampling.seed + 1_000 * (r + 1))
    ours = self_edit_quality([{"passage_id": p.id, "prompt": config.sampling.prompt, "self_edits": e}
                              for p, e in zip(next_passages, sample_self_edits(loaded, next_passages, sampling))], by_id)
    theirs = self_edit_quality([json.loads(line) for line in
                                (run / f"round-{r + 1}" / "self_edits.jsonl").read_text().splitlines()], by_id)
    print(f"SFT on {len(pairs)} pairs ({stats['target_tokens']} target tokens): {stats['steps']} optimiser steps, "
          f"loss {stats['epoch_losses'][0]:.3f} -> {stats['epoch_losses'][-1]:.3f}")
    columns = ("grounding", "coverage", "sequences", "copied", "words")
    print(f"{'generator SFT':>40} " + " ".join(f"{c:>9}" for c in columns))
    for name, figures in ((f"run: {describe(run_sft)}", theirs), (f"this: {describe(sft)}", ours)):
        print(f"{name:>40} " + " ".join(f"{figures[c]:>9.2f}" for c in columns))
    print(f"{'ratio this / run':>40} " + " ".join(f"{ours[c] / max(theirs[c], 1e-9):>9.2f}" for c in columns))


if __name__ == "__main__":
    main()

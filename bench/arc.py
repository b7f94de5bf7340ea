"""ARC test-time training throughput: the single engine (one task at a time) against the batched engine.

    .venv/bin/python bench/arc.py                      # the 10 shared evaluation tasks, oracle recipe, 1 seed
    .venv/bin/python bench/arc.py --tasks 4 --max-examples 8 --model PATH --device cuda --dtype bfloat16

Both engines run in this one process on the same trials: every task of the shared evaluation
file (`--tasks N`: the N with the smallest grids) with the paper's oracle recipe (all
augmentation groups, output-only loss, lr 1e-4, 2 epochs), TTT data capped as in
configs/arc-smollm2-cpu.yaml, then the test inputs answered under the 7 geometric views and
voted. The single engine trains and decodes one task at a time; the batched engine trains up
to `--adapters-per-pass` tasks' adapters in shared passes and decodes every view of every task
of a group in one routed batch. It prints tasks per hour for each, the ratio batched/single,
the time in training and decoding, and how many tasks got the same voted attempts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seal.config import ArcConfig, InnerLoopConfig, ModelConfig
from seal.domains.arc.grids import load_kaggle
from seal.domains.arc.recipe import ORACLE
from seal.domains.arc.trials import ArcTrials
from seal.domains.base import Trial
from seal.engines import make_engine
from seal.loops.inner import run_trials
from seal.models import load_model

ARC = Path(__file__).resolve().parents[2] / "shared" / "data" / "arc"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--challenges", default=str(ARC / "arc-agi_evaluation_challenges_filtered_1B_eval_set.json"))
    ap.add_argument("--solutions", default=str(ARC / "arc-agi_evaluation_solutions_filtered_1B_eval_set.json"))
    ap.add_argument("--tasks", type=int, default=None, help="the N tasks with the smallest grids (default: all)")
    ap.add_argument("--max-examples", type=int, default=12)
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--adapters-per-pass", type=int, default=16)
    ap.add_argument("--pass-tokens", type=int, default=8192)
    ap.add_argument("--answer-batch-size", type=int, default=16)
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    if not Path(args.challenges).exists():
        raise SystemExit(f"no ARC tasks at {args.challenges} (pass --challenges)")

    tasks = load_kaggle(args.challenges, args.solutions)
    tasks.sort(key=lambda t: sum(len(g) * len(g[0]) for g in t.grids()))
    tasks = tasks[: args.tasks or len(tasks)]
    arc = ArcConfig(max_examples=args.max_examples, max_tokens=args.max_tokens, max_steps=100_000)
    inner = InnerLoopConfig(adapters_per_pass=args.adapters_per_pass, pass_tokens=args.pass_tokens,
                            answer_batch_size=args.answer_batch_size)
    trials = [Trial("oracle", t, i, 0, 0, ORACLE) for i, t in enumerate(tasks)]
    mc = ModelConfig(name=args.model, device=args.device, dtype=args.dtype) if args.model else \
        ModelConfig(device=args.device, dtype=args.dtype)
    print(f"{len(tasks)} tasks ({', '.join(t.id for t in tasks)}), oracle recipe, {torch.get_num_threads()} threads, "
          f"{args.dtype} {args.device}")
    figures: dict = {"tasks": [t.id for t in tasks], "threads": torch.get_num_threads()}
    records = {}
    for name in ("single", "batched"):
        loaded = load_model(mc)  # a fresh copy: each engine installs its own adapters
        engine = make_engine(loaded, inner, name)
        start = time.perf_counter()
        got = dict(run_trials(engine, ArcTrials(loaded.tokenizer, arc), trials, desc=f"{name} trials"))
        wall = time.perf_counter() - start
        records[name] = [got[i] for i in range(len(trials))]
        figures[name] = {"seconds": wall, "tasks_per_hour": 3600 * len(trials) / wall,
                         "train_s": sum(r["timings"]["train_s"] for r in records[name]),
                         "eval_s": sum(r["timings"]["eval_s"] for r in records[name]),
                         "steps": sum(r["train"]["steps"] for r in records[name] if r["train"]),
                         "solved": sum(r["solved"] for r in records[name])}
        del engine, loaded
    same = sum(a["attempts"] == b["attempts"] for a, b in zip(records["single"], records["batched"]))
    figures["same_attempts"] = same
    figures["batched/single"] = figures["batched"]["tasks_per_hour"] / figures["single"]["tasks_per_hour"]
    print()
    print("| engine | tasks | tasks/hour | wall s | train s | decode s | optimiser steps | solved |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("single", "batched"):
        f = figures[name]
        print(f"| {name} | {len(trials)} | {f['tasks_per_hour']:.1f} | {f['seconds']:.0f} | {f['train_s']:.0f} | "
              f"{f['eval_s']:.0f} | {f['steps']} | {f['solved']} |")
    print(f"batched/single: {figures['batched/single']:.2f}x in tasks/hour; same voted attempts on {same} of "
          f"{len(trials)} tasks")
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()

"""Steps of several rows on the batched engine: cut into micro-batches of alike length, or padded whole.

    .venv/bin/python bench/micro_batches.py                       # SmolLM2-135M, CPU, float32
    .venv/bin/python bench/micro_batches.py --model PATH --device cuda --dtype bfloat16 --adapters 16

A continued-pretraining adapter trains on batches of 8 rows (the authors' CPT setting). A batch then
mixes a passage (~200 tokens) with self-edit lines (25-60), and padded whole it is a pass of 8 rows
of the passage's length. The batched engine cuts such a step into micro-batches of alike length and
sums their gradients before the step's AdamW update (`seal.engines.schedule.micro_batches`). This
script trains the same CPT-shaped jobs (each with 3 passages and 21 lines, batch 8, one epoch) both
ways, alternated in one run. It prints the seconds, the speed ratio and the largest difference
between the two ways' epoch losses, which should be float rounding only.
"""

from __future__ import annotations

import argparse
import random

import seal.engines.multi_lora as multi_lora
from flops import timed
from seal.config import InnerLoopConfig, ModelConfig
from seal.engines.base import Job
from seal.engines.multi_lora import MultiLoRAEngine
from seal.models import load_model


def cpt_jobs(n: int, vocab: int, seed: int = 0) -> list[Job]:
    rng = random.Random(seed)
    low = min(1000, vocab // 2)  # past the special tokens
    jobs = []
    for j in range(n):
        rows = [[rng.randrange(low, vocab) for _ in range(rng.randint(180, 240))] for _ in range(3)]
        rows += [[rng.randrange(low, vocab) for _ in range(rng.randint(25, 60))] for _ in range(21)]
        jobs.append(Job(rows, seed=j))
    return jobs


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--adapters", type=int, default=4, help="CPT adapters trained at once")
    ap.add_argument("--repeats", type=int, default=1, help="timed rounds (each way once a round)")
    args = ap.parse_args()

    loaded = load_model(ModelConfig(device=args.device, dtype=args.dtype, **({"name": args.model} if args.model else {})))
    cfg = InnerLoopConfig(batch_size=8, epochs=1, lr=1e-3)
    jobs = cpt_jobs(args.adapters, min(40000, loaded.model.get_input_embeddings().weight.shape[0]))
    engine = MultiLoRAEngine(loaded, cfg, slots=args.adapters)
    engine.train(jobs[:1])  # warm-up
    cut = multi_lora.micro_batches
    ways = {"micro-batches (the engine's)": cut, "each step padded whole": lambda rows, *_: [list(rows)]}
    seconds = {w: [] for w in ways}
    losses = {}
    for _ in range(args.repeats):
        for way, rule in ways.items():
            multi_lora.micro_batches = rule
            try:
                stats, s = timed(args.device, lambda: engine.train(jobs))
            finally:
                multi_lora.micro_batches = cut
            seconds[way].append(s)
            losses[way] = [st.epoch_losses[0] for st in stats]
            tokens = sum(st.tokens for st in stats)
    reference = min(seconds["each step padded whole"])
    print(f"{args.model or 'SmolLM2-135M-Instruct'} {args.dtype} {args.device}; {args.adapters} CPT adapters x 3 steps "
          f"of 8 rows, {tokens} tokens")
    for way, ts in seconds.items():
        print(f"{way:30s}: {min(ts):7.1f} s  {tokens / min(ts):6.0f} tokens/s  speed vs padded whole {reference / min(ts):.2f}x")
    a, b = losses.values()
    print(f"largest epoch-loss difference between the ways: {max(abs(x - y) for x, y in zip(a, b)):.2e}")
    return {"seconds": seconds, "losses": losses}


if __name__ == "__main__":
    main()

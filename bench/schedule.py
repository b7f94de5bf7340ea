"""The batched engine's pass schedule on the paper's trials: how many rows its passes hold, for how many
adapters at once and how much padding, and (with --measure) what that is worth in training time here.

    .venv/bin/python bench/schedule.py                   # the replay alone: the tokenizer, no model, seconds
    .venv/bin/python bench/schedule.py --measure         # + pass times of the embedded model on this machine
    python bench/schedule.py --measure --shape qwen2.5-7b --device cuda --dtype bfloat16 \\
        --shapes 1x40,16x40,64x40,1x300,16x300

Replay: the jobs are the paper's trials (eval200's SQuAD passages with their GPT-4.1 self-edits; the
passage and each implication a training sequence, 10 epochs, batch 1, each job its own seeded order),
sorted and grouped `--jobs` at a time as `seal.loops.inner` groups a run's trials. Every pass is the
one `MultiLoRAEngine.train` would run: the engine's own schedule (`seal.engines.schedule`: job_plan,
micro_batches, next_pass), with no training. For each number of jobs a group trains
(`inner.adapters_per_pass`) and each `inner.max_padding` it prints the passes, the rows and padded
tokens a pass, and the share of padding.

--measure times training passes of the shapes in `--shapes` (rows x tokens, every row one job's) on the
batched engine, fits seconds = a + b x padded tokens + c x rows by least squares in relative error (c:
what each row's adapter costs whatever its length: its AdamW update, its gradient and the copies of its
factors in and out of their slot) and prints each shape's residual (a poor fit says pass time is not
this simple here: a GPU's small passes, for one). Each schedule's training time is then modelled as the
sum of its passes' fitted times, per trained row, and compared with one job at a time (jobs 1: one row
a pass, as a single-adapter loop trains), in the same run.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from flops import timed
from round import SHAPES, passages_with_self_edits, random_model
from seal.config import InnerLoopConfig, ModelConfig
from seal.domains.knowledge.prompts import training_sequences
from seal.engines.base import Job
from seal.engines.multi_lora import MultiLoRAEngine
from seal.engines.schedule import job_plan, micro_batches, next_pass, tokenize_sequences
from seal.models import load_model


def paper_jobs(tokenizer, passages: int, self_edits: int = 5, max_len: int = 512) -> list[Job]:
    jobs = []
    for p in passages_with_self_edits(passages):
        for edit in p.self_edits[:self_edits]:
            ids = tokenize_sequences(tokenizer, training_sequences(p, edit, "implications", True), max_len)
            jobs.append(Job(ids, seed=len(jobs)))
    return jobs


def replay(jobs: list[Job], pass_tokens: int, max_padding: float, epochs: int = 10) -> list[tuple[int, int, int]]:
    """(rows, padded tokens, real tokens) of every pass `MultiLoRAEngine.train` runs on these jobs."""
    plans = [job_plan(job, 1, epochs) for job in jobs]
    micro = [[micro_batches(rows, [len(s) for s in job.token_ids], pass_tokens, max_padding) for _, rows in plan]
             for job, plan in zip(jobs, plans)]
    step, part = [0] * len(jobs), [0] * len(jobs)
    passes = []
    while pending := [j for j in range(len(jobs)) if step[j] < len(plans[j])]:
        unit = {j: micro[j][step[j]][part[j]] for j in pending}
        width = {j: max(len(jobs[j].token_ids[i]) for i in unit[j]) for j in pending}
        group = next_pass(pending, width, {j: len(unit[j]) for j in pending},
                          {j: len(plans[j]) - step[j] for j in pending}, pass_tokens, max_padding)
        rows = sum(len(unit[j]) for j in group)
        passes.append((rows, rows * width[group[0]], sum(len(jobs[j].token_ids[i]) for j in group for i in unit[j])))
        for j in group:
            if part[j] == len(micro[j][step[j]]) - 1:
                step[j], part[j] = step[j] + 1, 0
            else:
                part[j] += 1
    return passes


def grouped(jobs: list[Job], n: int, epochs: int = 10) -> list[list[Job]]:
    """Groups of `n` jobs, as a run groups its trials: sorted by steps, then by tokens."""
    ordered = sorted(jobs, key=lambda job: (len(job.token_ids) * epochs, sum(map(len, job.token_ids))))
    return [ordered[i:i + n] for i in range(0, len(ordered), n)]


def measure(engine: MultiLoRAEngine, vocab: int, shapes: list[tuple[int, int]], device: str, reps: int) -> dict:
    """Seconds a training pass of each (rows, tokens) takes: `reps` passes after one unmeasured."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for rows, width in shapes:
        ids = torch.randint(0, vocab, (rows, width), generator=gen).tolist()
        engine.train([Job([ids[r]], seed=r, epochs=1) for r in range(rows)])  # warm-up (and allocator)
        _, seconds = timed(device, lambda: engine.train([Job([ids[r]], seed=r, epochs=reps) for r in range(rows)]))
        out[(rows, width)] = seconds / reps
    return out


def fit(times: dict) -> tuple[float, float, float]:
    """a, b, c of seconds = a + b x padded tokens + c x rows, least squares in relative error (each pass's
    residual as a share of its time, so that the small passes most schedules run count as much as the large)."""
    x = torch.tensor([[1.0, rows * width, rows] for rows, width in times], dtype=torch.float64)
    y = torch.tensor(list(times.values()), dtype=torch.float64)
    w = 1 / y
    return tuple(torch.linalg.lstsq(x * w.unsqueeze(1), (y * w).unsqueeze(1)).solution.squeeze(1).tolist())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, default=40, help="trials: these passages x 5 self-edits")
    ap.add_argument("--jobs", default="1,4,16,48,100,200", help="adapters a group trains at once")
    ap.add_argument("--max-padding", default="0.2,0.5,0.8", help="inner.max_padding values")
    ap.add_argument("--pass-tokens", type=int, default=4096)
    ap.add_argument("--measure", action="store_true", help="time passes here and model each schedule's time")
    ap.add_argument("--shapes", default="1x40,4x40,16x40,1x160,4x160,16x160", help="--measure: rows x tokens")
    ap.add_argument("--reps", type=int, default=3, help="--measure: passes timed per shape")
    ap.add_argument("--shape", choices=sorted(SHAPES), default=None, help="a random model of this shape "
                    "(default: the embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--tokenizer", default=None, help="a tokenizer directory (default: the embedded SmolLM2's)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    if args.shape:
        loaded = random_model(args.shape, args.device, args.dtype, args.tokenizer)
    else:
        loaded = load_model(ModelConfig(device=args.device, dtype=args.dtype))
    jobs = paper_jobs(loaded.tokenizer, args.passages)
    lengths = sorted(len(s) for job in jobs for s in job.token_ids)
    print(f"{len(jobs)} trials ({args.passages} passages x 5 self-edits), {sum(len(j.token_ids) for j in jobs)} "
          f"sequences of {lengths[0]}-{lengths[-1]} tokens (median {lengths[len(lengths) // 2]}), 10 epochs, "
          f"batch 1; passes of at most {args.pass_tokens} padded tokens")
    cost = None
    figures: dict = {"trials": len(jobs), "pass_tokens": args.pass_tokens, "schedules": []}
    if args.measure:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
        cfg = InnerLoopConfig(adapters_per_pass=max(r for r, _ in shapes), pass_tokens=max(r * w for r, w in shapes))
        engine = MultiLoRAEngine(loaded, cfg)
        times = measure(engine, loaded.model.get_input_embeddings().weight.shape[0], shapes, args.device, args.reps)
        a, b, c = fit(times)
        cost = lambda rows, padded: a + b * padded + c * rows  # noqa: E731
        print(f"\npass time on {loaded.name} ({args.dtype}, {args.device}, {torch.get_num_threads()} threads): "
              f"fitted {a:.3f} s a pass + {b * 1e3:.3f} ms a padded token + {c * 1e3:.1f} ms a row")
        print("| rows x tokens | measured s | fitted s | residual |\n|---|---|---|---|")
        for (rows, width), seconds in times.items():
            print(f"| {rows} x {width} | {seconds:.3f} | {cost(rows, rows * width):.3f} | "
                  f"{seconds / cost(rows, rows * width) - 1:+.1%} |")
        figures["measured"] = {f"{r}x{w}": s for (r, w), s in times.items()}
        figures["fit"] = {"pass_s": a, "token_s": b, "row_s": c}
    print("\n| jobs at once | max padding | passes | rows a pass | padded tokens a pass | padding |"
          + (" modelled s a row | speed vs jobs 1 |\n|---|---|---|---|---|---|---|---|" if cost else "\n|---|---|---|---|---|---|"))
    reference = None
    start = time.perf_counter()
    for max_padding in (float(v) for v in args.max_padding.split(",")):
        for n in (int(v) for v in args.jobs.split(",")):
            passes = [p for group in grouped(jobs, n) for p in replay(group, args.pass_tokens, max_padding)]
            rows, padded, real = (sum(p[i] for p in passes) for i in range(3))
            row = {"jobs": n, "max_padding": max_padding, "passes": len(passes), "rows_per_pass": rows / len(passes),
                   "padded_per_pass": padded / len(passes), "padding": 1 - real / padded}
            line = (f"| {n} | {max_padding:.0%} | {len(passes):,} | {row['rows_per_pass']:.2f} | "
                    f"{row['padded_per_pass']:.0f} | {row['padding']:.1%} |")
            if cost:
                row["modelled_s_per_row"] = sum(cost(r, p) for r, p, _ in passes) / rows
                reference = reference or (row["modelled_s_per_row"] if n == 1 else None)
                line += f" {row['modelled_s_per_row']:.3f} |" + (
                    f" {reference / row['modelled_s_per_row']:.2f}x |" if reference else " |")
            figures["schedules"].append(row)
            print(line, flush=True)
    print(f"\n(replay {time.perf_counter() - start:.0f} s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()

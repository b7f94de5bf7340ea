"""Trials per minute of one round on the embedded model: in this process against Ray with 1 and 2 workers.

    .venv/bin/python bench/executors.py                          # 8 fictional passages x 2 seeds, passage alone
    .venv/bin/python bench/executors.py --passages 16 --seeds 0,1,2 --device cuda --gpus-per-worker 0.5
    .venv/bin/python bench/executors.py --stage sampling --passages 16   # a round's self-edits instead

The same trials (every passage with no self-edit, trained and asked its questions, once per
seed; `contains` grader) run three ways in this one process: the local executor on the
batched engine with `--threads` torch threads; Ray with one worker of `--threads` CPUs; Ray
with two workers of half as many each. The Ray figures include the workers' model loading
(each worker loads the model once) but not the cluster's start, which is printed apart. It
prints trials per minute, the ratio to in-process, and whether every trial got the same
answers. On a 2-core machine two workers share the cores one process already used, so the
figure is Ray's overhead, not a speed-up.

`--stage sampling` times a ReST-EM round's sampling stage: k self-edits per passage in fixed
batches (`--sample-batch` passages each), one after another in this process, on one worker of
`--threads` CPUs, and on two workers of half as many, one batch at a time (as `seal train` sampled
until 2026-11-30) and side by side (each batch seeded on its own, so every way writes the same
self-edits). It prints passages per minute, the ratio to in-process and whether every self-edit
is the same.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

from seal.config import ExecutorConfig, InnerLoopConfig, ModelConfig, RunConfig, DataConfig
from seal.domains.knowledge.grading import make_grader
from seal.domains.knowledge.trials import KnowledgeTrials, passages_for, plan_trials
from seal.engines import make_engine
from seal.executors.base import LocalExecutor
from seal.loops.inner import run_logged
from seal.models import load_model
from seal.runs import RecordLog


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, default=8)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--adapters-per-pass", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--gpus-per-worker", type=float, default=0.0)
    ap.add_argument("--stage", choices=["trials", "sampling"], default="trials")
    ap.add_argument("--k", type=int, default=5, help="--stage sampling: self-edits per passage")
    ap.add_argument("--sample-batch", type=int, default=8, help="--stage sampling: passages per batch")
    ap.add_argument("--max-new-tokens", type=int, default=192, help="--stage sampling: tokens per self-edit")
    args = ap.parse_args()
    if args.stage == "sampling":
        return bench_sampling(args)

    torch.set_num_threads(args.threads)
    config = RunConfig(conditions=["passage"], model=ModelConfig(device=args.device),
                       data=DataConfig(source="fictional", num_passages=args.passages),
                       inner=InnerLoopConfig(seeds=[int(s) for s in args.seeds.split(",")],
                                             adapters_per_pass=args.adapters_per_pass)).validate()
    passages = passages_for(config)
    trials = plan_trials(config, passages, {})
    loaded = load_model(config.model)
    engine = make_engine(loaded, config.inner)
    grader = make_grader(config, loaded, engine)
    domain = KnowledgeTrials(loaded.tokenizer, config.inner, grader)
    print(f"{len(trials)} trials ({args.passages} passages x {len(config.inner.seeds)} seeds), "
          f"{engine.slots} per work, {args.threads} threads, device {args.device}")

    results = {}
    with TemporaryDirectory() as tmp:
        import ray

        from seal.executors.ray_pool import RayExecutor, start_ray

        for workers in (1, 2):
            cfg = ExecutorConfig(kind="ray", workers=workers, cpus_per_worker=args.threads / workers,
                                 gpus_per_worker=args.gpus_per_worker)
            start = time.perf_counter()
            start_ray(cfg)
            print(f"Ray local cluster of {workers} worker(s) started in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            records = run_logged(engine, domain, trials, RecordLog(Path(tmp) / f"ray{workers}.jsonl"), desc=None,
                                 executor=RayExecutor(config.model, config.inner, cfg, engine.slots))
            results[f"Ray, {workers} worker(s)"] = (records, time.perf_counter() - start)
            ray.shutdown()
        start = time.perf_counter()  # last: the driver's engine allocates nothing before this
        results["in-process"] = (run_logged(engine, domain, trials, RecordLog(Path(tmp) / "local.jsonl"),
                                            desc=None, executor=LocalExecutor(engine)),
                                 time.perf_counter() - start)
    reference = results["in-process"]
    key = lambda r: (r["passage_id"], r["seed"])  # noqa: E731
    answers = {key(r): r["answers"] for r in reference[0]}
    print(f"{'executor':<22} {'seconds':>8} {'trials/min':>11} {'ratio':>6} {'same answers':>13}")
    for name, (records, seconds) in results.items():
        same = sum(answers[key(r)] == r["answers"] for r in records)
        print(f"{name:<22} {seconds:>8.1f} {60 * len(records) / seconds:>11.2f} "
              f"{reference[1] / seconds:>6.2f} {same:>7}/{len(records)}")


def bench_sampling(args) -> None:
    from seal.config import SamplingConfig
    from seal.domains.knowledge.self_edits import generate_into

    torch.set_num_threads(args.threads)
    config = RunConfig(model=ModelConfig(device=args.device), data=DataConfig(source="fictional",
                       num_passages=args.passages), sampling=SamplingConfig(k=args.k, temperature=0.7,
                       max_new_tokens=args.max_new_tokens, batch_size=args.sample_batch)).validate()
    passages = passages_for(config)
    loaded = load_model(config.model)
    batches = -(-len(passages) // args.sample_batch)
    print(f"{len(passages)} passages x {args.k} self-edits in {batches} batches, {args.threads} threads, "
          f"device {args.device}")
    results = {}
    with TemporaryDirectory() as tmp:
        import ray

        from seal.executors.ray_pool import RayExecutor, start_ray

        class OneAtATime(RayExecutor):  # what `seal train` did before on_model_each: one batch, then the next
            def on_model_each(self, fn, calls):
                return ((c, self.on_model(fn, *a, **kw)) for c, (a, kw) in enumerate(calls))

        for name, workers, executor in (("Ray, 1 worker", 1, RayExecutor),
                                        ("Ray, 2, one at a time", 2, OneAtATime),
                                        ("Ray, 2, side by side", 2, RayExecutor)):
            cfg = ExecutorConfig(kind="ray", workers=workers, cpus_per_worker=args.threads / workers,
                                 gpus_per_worker=args.gpus_per_worker)
            start_ray(cfg)
            run_dir = Path(tmp) / name.replace(" ", "").replace(",", "-")
            run_dir.mkdir()
            start = time.perf_counter()
            edits = generate_into(run_dir, loaded, passages, config, executor=executor(config.model, config.inner, cfg))
            results[name] = (edits, time.perf_counter() - start)
            ray.shutdown()
        run_dir = Path(tmp) / "local"
        run_dir.mkdir()
        start = time.perf_counter()
        results["in-process"] = (generate_into(run_dir, loaded, passages, config), time.perf_counter() - start)
    reference = results["in-process"]
    print(f"{'executor':<22} {'seconds':>8} {'passages/min':>13} {'ratio':>6} {'same self-edits':>16}")
    for name, (edits, seconds) in results.items():
        same = sum(edits[p.id] == reference[0][p.id] for p in passages)
        print(f"{name:<22} {seconds:>8.1f} {60 * len(passages) / seconds:>13.2f} {reference[1] / seconds:>6.2f} "
              f"{same:>9}/{len(passages)}")


if __name__ == "__main__":
    main()

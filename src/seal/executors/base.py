"""Where the inner loop's work runs: in this process (the default) or on a Ray cluster.

The inner loop (seal.loops.inner) cuts a plan of trials into fixed groups of `engine.slots`
trials and turns each into a `Work`: the group's jobs (tokenised training data, seeds, lr,
epochs) and its requests (what each adapter is asked). An executor runs works on an engine
and hands back, for each, a `Done`: every job's training statistics and every request's
answers. Everything else (preparing jobs, scoring answers, writing records) stays with the
driver, so a work unit needs a base model and an engine, nothing of the domain.

    LocalExecutor(engine)             works one after another on this process's engine
    seal.executors.ray_pool.RayExecutor   works as Ray tasks on a cluster (`--executor ray`)

Executors yield (work index, Done) in the order works finish, not the order given; the inner
loop writes each group's records as they arrive, keyed, so a resume skips what is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from seal.domains.base import Requests
from seal.engines.base import Engine, Job, TrainStats
from seal.generation import run_here


@dataclass
class Work:
    """One group of trials: train `jobs` side by side, then ask request r with adapter `adapters[r]`
    (an index into jobs, or None: the base model)."""

    jobs: list[Job]
    requests: list[Requests]
    adapters: list[int | None]
    desc: str | None = None
    """A progress-bar label for training (None: no bar)."""


@dataclass
class Done:
    stats: list[TrainStats] = field(default_factory=list)
    answers: list[list[str]] = field(default_factory=list)
    eval_s: float = 0.0
    """Seconds spent answering, for the whole work."""
    worker: str = "local"


class Executor(Protocol):
    slots: int
    """Trials per work (the engine's adapters per pass)."""

    def run(self, works: list[Work]) -> Iterator[tuple[int, Done]]:
        """Every work's result, as works finish."""

    def on_model(self, fn, *args, keep: bool = True, **kwargs):
        """`fn(loaded, *args, **kwargs)` where the executor's model is (the generator SFT);
        keep=False: fn changes the model in place, and a worker drops it afterwards."""

    def on_model_each(self, fn, calls: list[tuple[tuple, dict]]) -> Iterator[tuple[int, object]]:
        """`fn(loaded, *args, **kwargs)` for each (args, kwargs) of `calls`, side by side where the executor
        has several workers (sampling: one call per batch of prompts); (call index, result) as each finishes."""

    def close(self) -> None: ...


def answer_requests(engine: Engine, requests: list[Requests], adapters: list[int | None]) -> list[list[str]]:
    """Every request's prompts in one decode, request r with adapter `adapters[r]`; answers per request."""
    prompts, rows, budgets = [], [], []
    for r, req in zip(adapters, requests):
        prompts += req.prompts
        rows += [r] * len(req.prompts)
        budgets += [req.max_new_tokens] * len(req.prompts) if isinstance(req.max_new_tokens, int) else req.max_new_tokens
    flat = engine.answer(prompts, rows, max_new_tokens=budgets, batch_size=engine.cfg.answer_batch_size,
                         chat=requests[0].chat, stop=requests[0].stop)
    out, i = [], 0
    for req in requests:
        out.append(flat[i:i + len(req.prompts)])
        i += len(req.prompts)
    return out


def run_work(engine: Engine, work: Work) -> Done:
    """Train the work's jobs, answer its requests, and reset the engine to the base model whatever happens."""
    try:
        stats = engine.train(work.jobs, desc=work.desc) if work.jobs else []
        start = time.perf_counter()
        answers = answer_requests(engine, work.requests, work.adapters) if work.requests else []
    finally:
        engine.reset()
    return Done(stats, answers, time.perf_counter() - start)


class LocalExecutor:
    """Works one after another on an engine of this process."""

    def __init__(self, engine: Engine, loaded=None):
        self.engine = engine
        self.slots = engine.slots
        self.loaded = loaded if loaded is not None else getattr(engine, "loaded", None)

    def on_model(self, fn, *args, keep: bool = True, **kwargs):
        return run_here(self.loaded, fn, *args, **kwargs)

    def on_model_each(self, fn, calls: list[tuple[tuple, dict]]) -> Iterator[tuple[int, object]]:
        for c, (args, kwargs) in enumerate(calls):
            yield c, run_here(self.loaded, fn, *args, **kwargs)

    def run(self, works: list[Work]) -> Iterator[tuple[int, Done]]:
        for w, work in enumerate(works):
            yield w, run_work(self.engine, work)

    def close(self) -> None:
        pass

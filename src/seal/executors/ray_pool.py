"""The Ray executor: the inner loop's works as Ray tasks, on a local cluster or an existing one.

    seal adapt --executor ray                           # a local cluster on this machine
    seal train --executor ray --ray-address auto        # join a running cluster (`ray start --head`)

Each work is a task (`_run_remote`) that claims `executor.cpus_per_worker` CPUs and
`executor.gpus_per_worker` GPUs; Ray starts as many worker processes as the cluster's resources
allow and feeds them tasks. A worker process keeps the base model and its engine loaded between
tasks (one per model name, so a ReST-EM round's new generator replaces the old): the model is
read from its name or path, so on several machines the run directory (where `seal train`
saves each round's generator) must be on storage every node reads. `on_model(fn, ...)` runs any
function of the model on a worker the same way (`_call_remote`): `seal train` runs the generator
SFT (which saves the new generator) so. `on_model_each(fn, calls)` runs many such calls as tasks side
by side: `seal train` samples each round's self-edits so, one task per batch of prompts (each batch
seeded on its own, so the self-edits are those one process samples). The driver keeps the run
directory: results come back in the order they finish and the inner loop appends each
group's records at once, so `--resume` works as in this process.

Failures, as Ray provides them: a work whose worker process dies (killed, out of memory, a lost
node) is rerun by Ray on another worker, up to `executor.max_retries` times (task retries, no
watchdog here); a work that fails by itself (a non-finite loss, a bad job) raises in the driver
as it would in-process, and is not retried. A driver killed outright loses at most the works in
flight; `--resume` skips every group whose records were written.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Iterator

from seal.config import ExecutorConfig, InnerLoopConfig, ModelConfig
from seal.errors import SealError
from seal.executors.base import Done, Work, run_work

_LOADED: dict[str, list] = {}
"""In a worker process: (model, inner config) -> [loaded model, engine or None], kept between tasks."""


def _run_remote(model: dict, inner: dict, threads: int, work: Work) -> Done:
    """One work in a Ray worker process (module-level, so Ray ships it by reference)."""
    import torch

    from seal.config_load import from_dict
    from seal.engines import make_engine

    torch.set_num_threads(threads)
    held = _model(model, inner)
    if held[1] is None:
        held[1] = make_engine(held[0], from_dict(InnerLoopConfig, inner))
    done = run_work(held[1], Work(work.jobs, work.requests, work.adapters, None))
    done.worker = f"{os.uname().nodename}:{os.getpid()}"
    return done


def _call_remote(model: dict, inner: dict, threads: int, keep: bool, fn, args: tuple, kwargs: dict):
    """`fn(loaded, *args, **kwargs)` on the worker's bare model (sampling, the generator SFT: the inner
    loop's engine is taken off first); with keep=False the model is dropped afterwards (fn changed it)."""
    import torch

    torch.set_num_threads(threads)
    held = _model(model, inner)
    if held[1] is not None:
        held[1].unload()
        held[1] = None
    try:
        return fn(held[0], *args, **kwargs)
    finally:
        if not keep:
            _LOADED.clear()


def _model(model: dict, inner: dict) -> list:
    """[loaded model, its engine or None], loaded once per worker process and model."""
    from seal.config_load import from_dict
    from seal.models import load_model

    key = repr((model, inner))
    if key not in _LOADED:
        _LOADED.clear()  # one model per worker: a new generator replaces the last
        _LOADED[key] = [load_model(from_dict(ModelConfig, model)), None]
    return _LOADED[key]


def check_ray() -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise SealError("--executor ray needs Ray: pip install 'seal-lm[ray]'")


def start_ray(cfg: ExecutorConfig) -> None:
    """Connect to `cfg.address`, or start a local cluster sized by `cfg.workers`; once per process."""
    check_ray()
    import ray

    if ray.is_initialized():
        return
    env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_VERBOSITY")
           if k in os.environ}
    env["OMP_NUM_THREADS"] = str(max(1, int(cfg.cpus_per_worker)))
    kwargs: dict = {"include_dashboard": False, "log_to_driver": False, "runtime_env": {"env_vars": env}}
    if cfg.address:
        ray.init(address=cfg.address, **kwargs)
    else:
        cpus = (cfg.workers * cfg.cpus_per_worker) if cfg.workers else os.cpu_count()
        ray.init(num_cpus=cpus, **kwargs)


class RayExecutor:
    """Works as Ray tasks; the driver waits for them as they finish (see the module docstring)."""

    def __init__(self, model: ModelConfig, inner: InnerLoopConfig, cfg: ExecutorConfig, slots: int | None = None):
        import ray

        start_ray(cfg)
        self.ray = ray
        self.slots = slots or (inner.adapters_per_pass if inner.engine == "batched" else 1)
        self.model, self.inner = asdict(model), asdict(inner)
        self.threads = max(1, int(cfg.cpus_per_worker))
        options = dict(num_cpus=cfg.cpus_per_worker, num_gpus=cfg.gpus_per_worker, max_retries=cfg.max_retries,
                       retry_exceptions=False)
        self.remote = ray.remote(**options)(_run_remote)
        self.call = ray.remote(**options)(_call_remote)

    def on_model(self, fn, *args, keep: bool = True, **kwargs):
        """`fn(loaded, *args, **kwargs)` on a worker holding the executor's model; its result."""
        ref = self.call.remote(self.model, self.inner, self.threads, keep, fn, args, kwargs)
        return self._get(ref)

    def on_model_each(self, fn, calls: list[tuple[tuple, dict]]) -> Iterator[tuple[int, object]]:
        """Each call as its own task, all submitted at once, so every free worker takes one (each worker
        loads the executor's model once); results as they finish."""
        refs = {self.call.remote(self.model, self.inner, self.threads, True, fn, args, kwargs): c
                for c, (args, kwargs) in enumerate(calls)}
        yield from self._as_finished(refs)

    def _as_finished(self, refs: dict) -> Iterator[tuple[int, object]]:
        waiting = list(refs)
        try:
            while waiting:
                [ready], waiting = self.ray.wait(waiting, num_returns=1)
                yield refs[ready], self._get(ready)
        finally:
            for ref in waiting:  # the driver stopped early (an error, a kill): do not leave works running
                self.ray.cancel(ref, force=True)

    def _get(self, ref):
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as err:  # the work failed by itself: as in-process
            cause = getattr(err, "cause", None)
            raise (cause if isinstance(cause, SealError) else SealError(f"a Ray work failed: {cause or err}")) from None
        except self.ray.exceptions.RayError as err:  # its workers died more than max_retries times
            raise SealError(f"a Ray work was lost: {type(err).__name__}: {str(err).splitlines()[0]}") from None

    def run(self, works: list[Work]) -> Iterator[tuple[int, Done]]:
        if not works:
            return
        refs = {self.remote.remote(self.model, self.inner, self.threads, w): i for i, w in enumerate(works)}
        yield from self._as_finished(refs)

    def close(self) -> None:
        pass

"""The Ray executor: the inner loop's works as Ray tasks, on a local cluster or an existing one.

    seal adapt --executor ray                           # a local cluster on this machine
    seal train --executor ray --ray-address auto        # join a running cluster (`ray start --head`)

Each work is a task (`_run_remote`) that claims `executor.cpus_per_worker` CPUs and
`executor.gpus_per_worker` GPUs; Ray starts as many worker processes as the cluster's resources
allow and feeds them tasks. A worker process keeps the base model and its engine loaded between
tasks (one per model name, so a ReST-EM round's new generator replaces the old): the model is
read from its name or path, so on several machines the run directory (where `seal train`
saves each round's generator) must be on storage every node reads. The driver keeps the run
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

_LOADED: dict[str, tuple] = {}
"""In a worker process: (model name, inner config) -> (loaded model, engine), kept between tasks."""


def _run_remote(model: dict, inner: dict, threads: int, work: Work) -> Done:
    """One work in a Ray worker process (module-level, so Ray ships it by reference)."""
    import torch

    from seal.config_load import from_dict
    from seal.engines import make_engine
    from seal.models import load_model

    torch.set_num_threads(threads)
    key = repr((model, inner))
    if key not in _LOADED:
        _LOADED.clear()  # one model per worker: a new generator replaces the last
        loaded = load_model(from_dict(ModelConfig, model))
        _LOADED[key] = (loaded, make_engine(loaded, from_dict(InnerLoopConfig, inner)))
    _, engine = _LOADED[key]
    done = run_work(engine, Work(work.jobs, work.requests, work.adapters, None))
    done.worker = f"{os.uname().nodename}:{os.getpid()}"
    return done


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

    def __init__(self, model: ModelConfig, inner: InnerLoopConfig, cfg: ExecutorConfig, slots: int):
        import ray

        start_ray(cfg)
        self.ray, self.slots = ray, slots
        self.model, self.inner = asdict(model), asdict(inner)
        self.threads = max(1, int(cfg.cpus_per_worker))
        self.remote = ray.remote(num_cpus=cfg.cpus_per_worker, num_gpus=cfg.gpus_per_worker,
                                 max_retries=cfg.max_retries, retry_exceptions=False)(_run_remote)

    def run(self, works: list[Work]) -> Iterator[tuple[int, Done]]:
        if not works:
            return
        refs = {self.remote.remote(self.model, self.inner, self.threads, w): i for i, w in enumerate(works)}
        waiting = list(refs)
        try:
            while waiting:
                [ready], waiting = self.ray.wait(waiting, num_returns=1)
                try:
                    done = self.ray.get(ready)
                except self.ray.exceptions.RayTaskError as err:  # the work failed by itself: as in-process
                    cause = getattr(err, "cause", None)
                    raise (cause if isinstance(cause, SealError) else SealError(f"a Ray work failed: {cause or err}")) \
                        from None
                except self.ray.exceptions.RayError as err:  # its workers died more than max_retries times
                    raise SealError(f"a Ray work was lost: {type(err).__name__}: {str(err).splitlines()[0]}") from None
                yield refs[ready], done
        finally:
            for ref in waiting:  # the driver stopped early (an error, a kill): do not leave works running
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        pass

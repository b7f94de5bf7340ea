"""Executors: where the inner loop's groups of trials run (this process, or a Ray cluster)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from seal.config import RunConfig
from seal.engines.base import Engine
from seal.executors.base import Executor, LocalExecutor


def make_executor(config: RunConfig, engine: Engine, model: str | None = None) -> Executor:
    """The configured executor for trials on `model` (default: config.model.name) with `engine`'s slots;
    `engine` itself serves the local executor."""
    return remote_executor(config, model) or LocalExecutor(engine)


def remote_executor(config: RunConfig, model: str | None = None) -> Executor | None:
    """The Ray executor for `model` when the config asks for one, else None (in-process)."""
    if config.executor.kind == "local":
        return None
    from seal.executors.ray_pool import RayExecutor

    name = model or config.model.name
    if Path(name).exists():  # workers may start elsewhere: hand them an absolute path
        name = str(Path(name).resolve())
    return RayExecutor(replace(config.model, name=name), config.inner, config.executor)

"""Engines: independent LoRA fine-tunes on one frozen base model, and answers with them.

    base.py         the Engine protocol, Job, TrainStats, NonFiniteLoss
    schedule.py     the job schedule both engines follow (initialisation, data order, decay, clipping, loss)
    peft_single.py  one peft adapter, one job at a time (`--engine single`)
    multi_lora.py   many adapters per pass, routed per row (`--engine batched`, the default)
"""

from __future__ import annotations

from seal.config import InnerLoopConfig
from seal.engines.base import Engine
from seal.models import LoadedModel


def make_engine(loaded: LoadedModel, cfg: InnerLoopConfig, engine: str | None = None) -> Engine:
    """The configured engine (`cfg.engine`, or `engine` when given) installed on `loaded.model`."""
    if (engine or cfg.engine) == "batched":
        from seal.engines.multi_lora import MultiLoRAEngine

        return MultiLoRAEngine(loaded, cfg)
    from seal.engines.peft_single import PeftEngine

    return PeftEngine(loaded, cfg)

"""`torch.compile` for the batched engine's training passes (`inner.compile`).

The model's repeated blocks (the classes it names in `_no_split_modules`, e.g. LlamaDecoderLayer,
Qwen2DecoderLayer) are compiled once with dynamic shapes, so one graph serves every block and every
pass size and length. The compiled blocks are used only inside `CompiledBlocks.active()`: the
engine's training forward (its backward is compiled with it). Decoding with a KV cache stays eager:
a cache's per-layer state would recompile the graph for every layer.

Measured on the project's 2-core CPU (float32, SmolLM2-135M, one thread): passes of 8 x 40, 32 x 40
and 4 x 256 tokens ran 1.14x, 1.18x and 1.13x as fast compiled, after 14-37 s of compiling a graph
(bench/train_pass.py --compile, docs/inner-loop.md). Off by default: compiling needs a C++ compiler on
a CPU machine and its cost is repaid only over many passes.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import torch
from torch import nn

from seal.errors import SealError


class CompiledBlocks:
    """The repeated blocks of `model`, each with a compiled call used only while `active()`."""

    def __init__(self, model: nn.Module):
        device = next(model.parameters()).device
        if device.type == "cpu" and not any(shutil.which(c) for c in (os.environ.get("CXX", ""), "c++", "g++", "clang++")
                                            if c):
            raise SealError("inner.compile on a CPU needs a C++ compiler (g++ or clang++, or $CXX), and none was found; "
                            "install one or set inner.compile to false")
        names = set(getattr(model, "_no_split_modules", None) or [])
        self.blocks = [m for m in model.modules() if type(m).__name__ in names]
        if not self.blocks:
            raise SealError(f"inner.compile: {type(model).__name__} names no repeated block (_no_split_modules) "
                            "to compile; set inner.compile to false")
        # One graph per kind of call (the first block's input needs no gradient, a pass with or without
        # padding, rows routed or not) uses up dynamo's default 8 variants; past them it runs eagerly.
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 32)
        # What nn.Module.compile() installs, kept aside so that only training passes use it.
        self.calls = [torch.compile(block._call_impl, dynamic=True) for block in self.blocks]

    @contextlib.contextmanager
    def active(self):
        for block, call in zip(self.blocks, self.calls):
            block._compiled_call_impl = call
        try:
            yield
        finally:
            for block in self.blocks:
                block._compiled_call_impl = None

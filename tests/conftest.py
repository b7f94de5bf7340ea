"""Shared fixtures: a tiny randomly initialised Llama with a tokenizer trained here, in seconds.

The tiny model goes through the same `load_model` path as any user model (it is saved
to a temporary directory and loaded by path), so the tests exercise real loading,
chat templating, generation and LoRA code, just with 2 layers of width 32.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub are imported
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch

from helpers import build_tiny_model
from seal.config import InnerLoopConfig, ModelConfig
from seal.domains.knowledge.fictional import generate_passages
from seal.models import load_model

torch.set_num_threads(1)  # tiny matrices: threads only add overhead (and CI has 2 cores)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def tiny(tiny_model_path):
    """A freshly loaded tiny model (function scope: LoRA attachment mutates the module)."""
    return load_model(ModelConfig(name=str(tiny_model_path), device="cpu", dtype="float32"))


@pytest.fixture
def fast_inner() -> InnerLoopConfig:
    return InnerLoopConfig(rank=8, alpha=16, lr=5e-2, epochs=6, answer_max_new_tokens=6,
                           target_modules=["q_proj", "v_proj", "up_proj", "down_proj"])


@pytest.fixture
def passage():
    return generate_passages(1, seed=0)[0]

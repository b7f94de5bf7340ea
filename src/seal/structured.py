"""Structured generation: samples held to a JSON schema while they are decoded (pip install 'seal-lm[structured]').

    constraint = json_schema_constraint(loaded, RECIPE_SCHEMA)          # xgrammar
    generate(loaded, prompts, ..., constraint=constraint)               # every completion matches the schema

A constraint gives, for each batch that `seal.generation.generate` decodes, the keyword
arguments of `model.generate` that mask every token the schema forbids: xgrammar's logits
processor (`xgrammar.contrib.hf.LogitsProcessor`; one grammar compiled once, one matcher per row
per batch). xgrammar is the library vLLM uses by default for structured output, so the same
schema serves a vLLM backend. Why xgrammar, measured in docs/structured.md: on the embedded
model its masks cost little next to a forward pass, and lm-format-enforcer 0.11.3's transformers
integration does not import with transformers 5.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Callable

from seal.errors import SealError

BACKENDS = ("xgrammar",)
_COMPILED: dict[tuple, tuple] = {}
"""(id(tokenizer), schema) -> (tokenizer, compiled grammar); the tokenizer is kept so its id stays its own."""


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise SealError(f"structured generation backends: {', '.join(BACKENDS)}; not {backend!r}")
    if importlib.util.find_spec(backend) is None:
        raise SealError(f"constrained sampling needs {backend}: pip install 'seal-lm[structured]'")


def json_schema_constraint(loaded, schema: dict, backend: str = "xgrammar") -> Callable[[], dict]:
    """A factory of `model.generate` keyword arguments that hold each completion to `schema`."""
    check_backend(backend)
    import xgrammar as xgr
    from xgrammar.contrib.hf import LogitsProcessor

    key = (id(loaded.tokenizer), json.dumps(schema, sort_keys=True))
    if key not in _COMPILED:  # sampling calls this once per batch: compile once per tokenizer and schema
        vocab = getattr(loaded.model.config, "vocab_size", None) or len(loaded.tokenizer)
        info = xgr.TokenizerInfo.from_huggingface(loaded.tokenizer, vocab_size=vocab)
        _COMPILED[key] = (loaded.tokenizer, xgr.GrammarCompiler(info).compile_json_schema(key[1], any_whitespace=False))
    compiled = _COMPILED[key][1]
    return lambda: {"logits_processor": [LogitsProcessor(compiled)]}

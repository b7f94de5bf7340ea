"""Batched generation: sampled self-edits and greedy answers, with Hugging Face `generate` (the
transformers backend) or, when the loaded model has one, its other backend (seal.backends: vLLM).

Prompts are wrapped in the model's chat template when it has one, sorted by length so
that each batch carries little padding (left padding, as decoder-only models need),
decoded with a KV cache, and stopped per row at the end-of-turn token. Results come
back in the caller's order. Sampling is seeded per batch, so the same seed gives the
same self-edits.
"""

from __future__ import annotations

import time

import torch
from seal.progress import bar

from seal.config import SamplingConfig
from seal.models import LoadedModel, format_prompt, stop_token_ids
from seal.runs import RecordLog


def encode_prompts(tokenizer, prompts: list[str], chat: bool = True) -> list[list[int]]:
    """Token ids of each prompt: in the chat template when the model has one (and `chat`), else the raw text."""
    chat = chat and bool(getattr(tokenizer, "chat_template", None))
    texts = [format_prompt(tokenizer, p) if chat else p for p in prompts]
    return [tokenizer(t, add_special_tokens=not chat)["input_ids"] for t in texts]


def generate(loaded: LoadedModel, prompts: list[str], *, max_new_tokens: int, batch_size: int = 8,
             temperature: float = 0.0, top_p: float = 1.0, num_return_sequences: int = 1,
             seed: int = 0, desc: str | None = None, chat: bool = True,
             stop: list[str] | None = None, on_batch=None, constraint=None, schema: dict | None = None,
             local: bool = False) -> list[list[str]]:
    """`num_return_sequences` completions for each prompt (temperature 0 means greedy).

    `chat=False` sends the prompts as raw text (e.g. ARC grids, trained on without a template).
    `stop` strings end a row early, as the end-of-turn token does (e.g. the blank line after
    an ARC grid); the text from the first stop string on is cut off. `on_batch(indices)` is
    called before each batch with the prompts' indices in it (e.g. to route rows to adapters).
    `constraint()` gives each batch's extra `model.generate` arguments that hold its completions to
    a grammar (seal.structured); `schema` is a JSON schema every completion is held to (either backend).
    A model with another backend (`loaded.backend`, seal.backends) decodes there, all prompts in one
    call, unless `local`: the model in this process as it is now (e.g. with an engine's adapters on).
    """
    tokenizer, model = loaded.tokenizer, loaded.model
    encoded = encode_prompts(tokenizer, prompts, chat)
    backend = getattr(loaded, "backend", None)
    if backend is not None and not local and on_batch is None and constraint is None:
        return backend.generate(encoded, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                n=num_return_sequences, seed=seed, stop=stop, schema=schema)
    if schema is not None and constraint is None:
        from seal.structured import json_schema_constraint

        constraint = json_schema_constraint(loaded, schema)
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    results: list[list[str]] = [[] for _ in prompts]
    stops = stop_token_ids(tokenizer)
    sampling = temperature > 0
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    progress = bar(batches, desc=desc, unit="batch", leave=False, disable=desc is None)
    for batch_index, batch in enumerate(progress):
        width = max(len(encoded[i]) for i in batch)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch])
        attention = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch])
        if on_batch is not None:
            on_batch(batch)
        if sampling:
            torch.manual_seed(seed * 100_003 + batch_index)
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids.to(loaded.device), attention_mask=attention.to(loaded.device),
                max_new_tokens=max_new_tokens, do_sample=sampling,
                temperature=temperature if sampling else None, top_p=top_p if sampling else None,
                top_k=None, num_return_sequences=num_return_sequences,
                eos_token_id=stops, pad_token_id=pad,
                **({"stop_strings": stop, "tokenizer": tokenizer} if stop else {}),
                **(constraint() if constraint is not None else {}),
            )
        completions = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        if stop:
            completions = [_cut(c, stop) for c in completions]
        for row, i in enumerate(batch):
            results[i] = [c.strip() for c in completions[row * num_return_sequences:(row + 1) * num_return_sequences]]
    return results


def _cut(text: str, stop: list[str]) -> str:
    r"""`text` up to its first stop string.

    >>> _cut("12\n34\n\nInput:", ["\n\n"])
    '12\n34'
    """
    ends = [i for i in (text.find(s) for s in stop) if i != -1]
    return text[:min(ends)] if ends else text


def greedy_answers(loaded: LoadedModel, prompts: list[str], *, max_new_tokens: int, batch_size: int = 16,
                   chat: bool = True, stop: list[str] | None = None, local: bool = False) -> list[str]:
    """One greedy completion per prompt."""
    return [c[0] for c in generate(loaded, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, chat=chat,
                                   stop=stop, local=local)]


def sample_into(log: RecordLog, loaded: LoadedModel, items: list, prompts: list[str], sampling: SamplingConfig, *,
                id_field: str, max_new_tokens: int, describe=None, desc: str = "sample self-edits",
                chat: bool = True, executor=None, constrained: dict | None = None) -> dict[str, list[str]]:
    """`sampling.k` self-edits for each item not yet in `log`, appended batch by batch; all of them by item id.

    Batches are the fixed slices items[b * batch_size:(b + 1) * batch_size], each seeded from its
    first index; a batch that a kill left half-written is sampled again whole and only its
    missing items are appended, so a resumed run samples exactly what the uninterrupted one
    would have. `describe(index, item)` adds fields to an item's record. With an `executor`
    (seal.executors) the batches run where its model is, side by side on its workers (on_model_each),
    and are appended in batch order, so the log is the one this process writes; default: `loaded`, here.
    `constrained`: a JSON schema every sample is held to while it is decoded (seal.structured).
    """
    done = {r[id_field]: r["self_edits"] for r in log}
    chunk = max(1, sampling.batch_size)
    batches = [list(range(b, min(b + chunk, len(items)))) for b in range(0, len(items), chunk)]
    batches = [b for b in batches if any(items[i].id not in done for i in b)]
    if not batches:
        return done
    start = time.perf_counter()
    fn = generate_constrained if constrained else generate
    calls = [(([prompts[i] for i in part],),
              dict(**({"schema": constrained} if constrained else {}), max_new_tokens=max_new_tokens,
                   batch_size=sampling.batch_size, temperature=sampling.temperature, top_p=sampling.top_p,
                   num_return_sequences=sampling.k, seed=sampling.seed * 1_000_003 + part[0], chat=chat))
             for part in batches]
    each = executor.on_model_each(fn, calls) if executor is not None else \
        ((c, run_here(loaded, fn, *args, **kwargs)) for c, (args, kwargs) in enumerate(calls))
    finished: dict[int, list[list[str]]] = {}
    written = 0  # batches appended so far, in batch order: the log one process writes
    with bar(total=sum(map(len, batches)), desc=desc, unit="input") as progress:
        for c, samples in each:
            finished[c] = samples
            progress.update(len(batches[c]))
            while written in finished:
                for i, edits in zip(batches[written], finished.pop(written)):
                    if items[i].id not in done:
                        log.append({id_field: items[i].id, **(describe(i, items[i]) if describe else {}),
                                    "self_edits": edits})
                        done[items[i].id] = edits
                written += 1
    print(f"{desc}: {sum(map(len, batches))} inputs x {sampling.k} in {time.perf_counter() - start:.1f}s")
    return done


def generate_constrained(loaded: LoadedModel, prompts: list[str], *, schema: dict, **kwargs) -> list[list[str]]:
    """`generate` with every completion held to the JSON `schema` (the grammar is compiled where the model is)."""
    return generate(loaded, prompts, schema=schema, **kwargs)


def run_here(loaded: LoadedModel, fn, *args, keep: bool = True, **kwargs):
    """`fn(loaded, ...)` in this process: what an executor's `on_model` does where the model is."""
    return fn(loaded, *args, **kwargs)

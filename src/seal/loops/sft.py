"""Supervised fine-tuning of the self-edit generator on kept (prompt, self-edit) pairs: ReST-EM's M-step.

The generator is trained with a LoRA adapter (paper: r=64, alpha=128, lr 3e-4, 2 epochs) on
the chat-formatted self-edit prompt followed by the kept self-edit and the end-of-turn
token, with the loss on the self-edit tokens only; the adapter is then merged, so the next
round samples from (and adapts) an ordinary model that `save_pretrained` writes out. It runs
as one job on the configured engine (`--engine`), on the shared job schedule.

A step takes `train.sft.batch_size` pairs (default 5: the authors' Trainer takes one pair per device
and accumulates gradients over 5) in one padded pass, with the loss the mean over the step's self-edit
tokens, as the Trainer weighs accumulated micro-batches. Departure from the paper: none in the
defaults; runs recorded before 2026-11-30 used batch 1 (5x the optimiser steps on the same pairs), and
their configs say so.

Addition, off by default (train.sft.mask_copied: N): a self-edit token inside a run of N or more words
that the prompt also holds is left out of the loss. A 135M generator fine-tuned on rewrites that copied a
quarter of their passage wrote its next rewrites with 0.70 of their 5-grams copied (docs/rest-em.md);
copied tokens are the ones a model predicts most easily from its context, so they dominate what the
paper's loss teaches. The paper masks only the prompt.
"""

from __future__ import annotations

import re

from seal.config import ALL_PROJECTIONS, InnerLoopConfig, SFTConfig
from seal.engines import make_engine
from seal.engines.base import Job, NonFiniteLoss
from seal.errors import SealError
from seal.models import LoadedModel, format_prompt


def copied_chars(completion: str, prompt: str, n: int) -> list[bool]:
    """Per character of `completion`: inside a run of >= n words (lower-cased, as quality.copied_share) that
    `prompt` also holds, from the run's first word to its last.

    >>> "".join("^" if c else " " for c in copied_chars("So: Vesu is a town by the sea.", "Vesu is a town.", 3))
    '    ^^^^^^^^^^^^^^            '
    """
    words = [(m.start(), m.end(), m.group().lower()) for m in re.finditer(r"\w+", completion)]
    found = re.findall(r"\w+", prompt.lower())
    grams = {tuple(found[i:i + n]) for i in range(len(found) - n + 1)}
    covered = [False] * len(completion)
    for i in range(len(words) - n + 1):
        if tuple(w for _, _, w in words[i:i + n]) in grams:
            covered[words[i][0]:words[i + n - 1][1]] = [True] * (words[i + n - 1][1] - words[i][0])
    return covered


def encode_pair(tokenizer, prompt: str, completion: str, max_len: int,
                mask_copied: int | None = None) -> tuple[list[int], list[int]]:
    """Token ids of prompt + completion + end of turn, and labels masking the prompt with -100 (and, with
    `mask_copied`, every completion token whose characters all lie in a run copied from the prompt)."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    prompt_ids = tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=not chat)["input_ids"]
    if mask_copied is not None and not getattr(tokenizer, "is_fast", False):
        raise SealError("train.sft.mask_copied needs a fast tokenizer (it maps tokens to characters)")
    encoded = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=mask_copied is not None)
    completion_ids = encoded["input_ids"] + [tokenizer.eos_token_id]
    targets = list(completion_ids)
    if mask_copied is not None:
        covered = copied_chars(completion, prompt, mask_copied)
        for t, (start, end) in enumerate(encoded["offset_mapping"]):
            text = completion[start:end]
            start += (len(text) - len(text.lstrip())) if text.strip() else 0  # a word's leading space may be outside
            if start < end and all(covered[start:end]):
                targets[t] = -100
    ids = (prompt_ids + completion_ids)[:max_len]
    labels = ([-100] * len(prompt_ids) + targets)[:max_len]
    return ids, labels


def sft_generator(loaded: LoadedModel, pairs: list[tuple[str, str]], cfg: SFTConfig, seed: int,
                  engine: str = "batched") -> dict:
    """Fine-tune `loaded.model` on `pairs` in place (LoRA, then merged); returns loss statistics."""
    if not pairs:
        raise SealError("no (prompt, self-edit) pairs were kept this round, so there is nothing to fine-tune on")
    examples = [encode_pair(loaded.tokenizer, p, c, cfg.max_seq_len, cfg.mask_copied) for p, c in pairs]
    examples = [e for e in examples if any(label != -100 for label in e[1])]
    if not examples:
        raise SealError(f"every kept pair was cut to nothing by sft.max_seq_len={cfg.max_seq_len}")
    present = {name.rsplit(".", 1)[-1] for name, _ in loaded.model.named_modules()}
    targets = [m for m in ALL_PROJECTIONS if m in present] or ["q_proj", "v_proj"]
    schedule = InnerLoopConfig(rank=cfg.rank, alpha=cfg.alpha, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                               target_modules=targets, max_seq_len=cfg.max_seq_len, adapters_per_pass=1,
                               pass_tokens=max(2048, cfg.max_seq_len * cfg.batch_size))
    trainer = make_engine(loaded, schedule, engine)
    try:
        [stats] = trainer.train([Job([ids for ids, _ in examples], seed, labels=[labels for _, labels in examples])],
                                desc="sft generator")
    except NonFiniteLoss as err:
        trainer.unload()
        raise SealError(f"generator SFT: {err} (train.sft.lr)") from None
    trainer.merge_and_unload(0)
    loaded.model.eval()
    targets = sum(label != -100 for _, labels in examples for label in labels)
    return {"pairs": len(examples), "steps": stats.steps, "epoch_losses": stats.epoch_losses,
            "seconds": round(stats.seconds, 2), "target_tokens": targets}

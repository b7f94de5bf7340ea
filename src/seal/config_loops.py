"""The outer loops' settings (a part of seal.config.RunConfig): ReST-EM (`seal train`) with its generator
SFT, continual learning (`seal continual`) and `seal learn`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from seal.errors import SealError


@dataclass
class SFTConfig:
    """ReST-EM's M-step: fine-tuning the generator on kept (prompt, self-edit) pairs (paper defaults)."""

    rank: int = 64
    alpha: int = 128
    lr: float = 3e-4
    epochs: int = 2
    batch_size: int = 5
    """Pairs per optimiser step: the authors' effective batch (1 pair per device, gradients accumulated over 5)."""
    max_seq_len: int = 1024
    mask_copied: int | None = None
    """Leave out of the loss every self-edit token inside a run of at least this many words that the prompt
    also holds (the passage, for knowledge), so the M-step learns what a self-edit adds, not copying; None:
    every self-edit token counts, as in the paper. The run-length matches train.max_copy's 5-grams at 5."""

    def validate(self) -> None:
        if self.mask_copied is not None and not 1 <= self.mask_copied <= 64:
            raise SealError(f"train.sft.mask_copied must be a word count in [1, 64] or unset, not {self.mask_copied}")
        if not 1 <= self.rank <= 4096 or self.alpha <= 0:
            raise SealError(f"train.sft.rank must be in [1, 4096] and alpha positive, not {self.rank}, {self.alpha}")
        if not (0.0 < self.lr <= 1.0) or math.isnan(self.lr):
            raise SealError(f"train.sft.lr must be in (0, 1], not {self.lr}")
        if not 1 <= self.epochs <= 1000 or self.batch_size < 1 or self.max_seq_len < 8:
            raise SealError("train.sft: epochs must be in [1, 1000], batch_size >= 1 and max_seq_len >= 8")


@dataclass
class TrainConfig:
    """The ReST-EM outer loop (`seal train`)."""

    rounds: int = 2
    """Rounds of (sample k self-edits per passage, run their inner loops, keep the best, SFT the generator)."""
    passages_per_round: int = 50
    """A fresh batch of training passages per round, drawn (seeded) from the data source's passages."""
    selection: str | None = None
    """best: keep each input's best self-edit if it beats the input's baseline; beats-baseline: keep every
    self-edit whose reward beats the baseline. None: the paper's rule for the domain (its footnote 1): the
    single best for passages, every recipe that solves its task for ARC (RunConfig.validate resolves it)."""
    baseline: str = "no-adaptation"
    """What a kept self-edit must beat. no-adaptation: the un-adapted model's accuracy (the paper);
    passage-only: a trial on the passage alone (one per seed), so that a self-edit is kept only if
    it teaches more than the passage does (knowledge domain only; costs one trial per passage and seed);
    passage-twice: a trial on two copies of the passage, so that a self-edit that only repeats the
    passage is not kept (docs/rest-em.md found a generator that learned to copy)."""
    max_copy: float | None = None
    """Keep no self-edit with more than this share of its word 5-grams found in its passage (knowledge only;
    none: no limit, as the paper). A generator rewarded for repeating the passage learns to copy it."""
    sft_from: str = "current"
    """Which model a round's M-step fine-tunes. current: the generator that sampled the round (each round
    builds on the last); base: the base model, each round afresh on that round's kept pairs, as ReST-EM's
    authors (Singh et al., 2023) do to keep the rounds from drifting. The SEAL paper does not say which."""
    seed: int = 0
    sft: SFTConfig = field(default_factory=SFTConfig)
    reuse_from: str | None = None
    """Another `seal train` run whose rounds this one would repeat (an ablation of the E-step or M-step):
    while this run's generator is the one that sampled that run's round, the round's draw, self-edits and
    trials are copied from it, not run again; the E-step and M-step run under this run's settings.
    seal.loops.reuse says when a round qualifies and which settings must match. Departure: not in the paper."""

    def validate(self) -> None:
        if not 1 <= self.rounds <= 100:
            raise SealError(f"train.rounds must be between 1 and 100, not {self.rounds}")
        if self.passages_per_round < 1:
            raise SealError(f"train.passages_per_round must be at least 1, not {self.passages_per_round}")
        if self.selection not in (None, "best", "beats-baseline"):
            raise SealError(f"train.selection must be best or beats-baseline, not {self.selection!r}")
        if self.baseline not in ("no-adaptation", "passage-only", "passage-twice"):
            raise SealError(f"train.baseline must be no-adaptation, passage-only or passage-twice, not {self.baseline!r}")
        if self.max_copy is not None and not 0.0 <= self.max_copy < 1.0:
            raise SealError(f"train.max_copy must be in [0, 1) or unset, not {self.max_copy}")
        if self.sft_from not in ("current", "base"):
            raise SealError(f"train.sft_from must be current or base, not {self.sft_from!r}")
        self.sft.validate()


@dataclass
class ContinualConfig:
    """`seal continual`: passages absorbed one after another, each self-edit's adapter merged into the weights."""

    sequences: int = 2
    """Sequences of passages, each from a fresh base model (the paper averages several)."""
    sequence_length: int = 8
    """Passages per sequence (the paper: 8)."""
    replay: bool = False
    """Each step also trains on the passages and self-edits of every earlier step of its sequence."""
    lr_scale: float = 1.0
    """Step t trains with inner.lr * lr_scale ** t (1.0: the same rate at every step, as the paper)."""
    merge: bool = True
    """True: each step's adapter is merged into the weights (the paper). False: stacked - every step's
    adapter stays a LoRA of its own, added to the frozen weights' output, which are never written."""

    def validate(self) -> None:
        if self.sequences < 1 or self.sequence_length < 1:
            raise SealError("continual.sequences and continual.sequence_length must be at least 1")
        if not 0.0 < self.lr_scale <= 10.0 or math.isnan(self.lr_scale):
            raise SealError(f"continual.lr_scale must be in (0, 10], not {self.lr_scale}")


@dataclass
class LearnConfig:
    """`seal learn`: a user's documents taught to the model as one adapter."""

    paths: list[str] = field(default_factory=list)
    """Text, Markdown or JSONL files, or folders of them."""
    max_words: int = 150
    """Paragraphs are joined into passages of at most this many words."""
    generator: str | None = None
    """The model that writes the self-edits (a `seal train` round's generator, say); default: the model itself."""
    merged: bool = False
    """Also save the model with the adapter merged in (save_pretrained), beside the PEFT adapter."""
    steps: bool = False
    """Learn passage by passage (continual): one adapter per passage, trained on the model with every
    earlier passage's adapter added, all kept unmerged and saved together as one PEFT adapter
    (rank = inner.rank x passages). Default: one adapter over all passages at once (CPT)."""

    def validate(self) -> None:
        if self.max_words < 10:
            raise SealError(f"learn.max_words must be at least 10, not {self.max_words}")

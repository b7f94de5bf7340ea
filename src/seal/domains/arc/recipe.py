"""ARC self-edits are training recipes: the model writes a JSON object choosing its own test-time training.

    {"augmentations": ["basic", "size"], "learning_rate": 1e-4, "epochs": 2, "loss": "output"}

Parsing is strict, as in the paper: a reply that holds no JSON object, has unknown keys,
wrong types or out-of-range values is rejected with the reason (`RecipeError`); the caller
resamples it or gives it a no-op adapter. A recipe whose training would cost more optimiser
steps than the budget is refused too. The paper's own nested layout
(`{"data_generation": {"use_basic_augmentations": ...}, "training": {"strategy": ...}}`) is
accepted and mapped onto the same fields.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from seal.domains.arc.augment import GROUPS

LR_RANGE = (1e-6, 1e-2)
EPOCHS_RANGE = (1, 10)
LOSSES = ("all", "output")


class RecipeError(ValueError):
    """A self-edit that is not a valid recipe; the message says why."""


class OverBudget(RecipeError):
    """A valid recipe whose training exceeds the budget (steps, or sequence length)."""


@dataclass(frozen=True)
class Recipe:
    augmentations: tuple[str, ...] = ()
    learning_rate: float = 1e-4
    epochs: int = 2
    loss: str = "output"

    def to_json(self) -> str:
        return json.dumps({"augmentations": list(self.augmentations), "learning_rate": self.learning_rate,
                           "epochs": self.epochs, "loss": self.loss})


RECIPE_SCHEMA = {
    "type": "object",
    "properties": {
        "augmentations": {"type": "array", "items": {"enum": list(GROUPS)}, "maxItems": len(GROUPS)},
        "learning_rate": {"type": "number", "minimum": LR_RANGE[0], "maximum": LR_RANGE[1]},
        "epochs": {"type": "integer", "minimum": EPOCHS_RANGE[0], "maximum": EPOCHS_RANGE[1]},
        "loss": {"enum": list(LOSSES)},
    },
    "required": ["augmentations", "learning_rate", "epochs", "loss"],
    "additionalProperties": False,
}
"""The recipe as a JSON schema, for constrained sampling (seal.structured): keys, group names, ranges, losses."""


ORACLE = Recipe(augmentations=tuple(GROUPS), learning_rate=1e-4, epochs=2, loss="output")
"""The paper's oracle TTT configuration: every augmentation group, output-only loss, lr 1e-4, 2 epochs."""


def _first_json_object(text: str) -> dict:
    """The first JSON object in `text` (braces inside JSON strings are the string's).

    >>> _first_json_object('Recipe: {"loss": "output", "note": "a } b"} done')
    {'loss': 'output', 'note': 'a } b'}
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            return obj
        start = text.find("{", start + 1)
    raise RecipeError("no JSON object in the self-edit")


def _from_paper_layout(obj: dict) -> dict:
    data, training = obj.get("data_generation", {}), obj.get("training", {})
    if not isinstance(data, dict) or not isinstance(training, dict):
        raise RecipeError("data_generation and training must be objects")
    augs = [g for g in GROUPS if data.get(f"use_{g}_augmentations")]
    strategy = training.get("strategy", "train_using_output_tokens")
    loss = {"train_using_all_tokens": "all", "train_using_output_tokens": "output"}.get(strategy)
    if loss is None:
        raise RecipeError(f"unknown training strategy {strategy!r}")
    return {"augmentations": augs, "learning_rate": training.get("learning_rate"),
            "epochs": training.get("num_train_epochs"), "loss": loss}


def parse_recipe(text: str) -> Recipe:
    """The recipe in a model's reply.

    >>> parse_recipe('Here: {"augmentations": ["basic"], "learning_rate": 0.0001, "epochs": 3, "loss": "all"}')
    Recipe(augmentations=('basic',), learning_rate=0.0001, epochs=3, loss='all')
    >>> parse_recipe('{"augmentations": ["basic"], "learning_rate": 5, "epochs": 3, "loss": "all"}')
    Traceback (most recent call last):
    seal.domains.arc.recipe.RecipeError: learning_rate 5 is outside [1e-06, 0.01]
    """
    obj = _first_json_object(text)
    if "data_generation" in obj or "training" in obj:
        obj = _from_paper_layout(obj)
    unknown = set(obj) - {"augmentations", "learning_rate", "epochs", "loss"}
    if unknown:
        raise RecipeError(f"unknown key {sorted(unknown)[0]!r}")
    augs = obj.get("augmentations", [])
    if not isinstance(augs, list) or not all(isinstance(a, str) for a in augs):
        raise RecipeError("augmentations must be a list of group names")
    bad = [a for a in augs if a not in GROUPS]
    if bad:
        raise RecipeError(f"unknown augmentation group {bad[0]!r} (groups: {', '.join(GROUPS)})")
    lr, epochs, loss = obj.get("learning_rate"), obj.get("epochs"), obj.get("loss", "output")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
        raise RecipeError("learning_rate must be a number")
    if not LR_RANGE[0] <= lr <= LR_RANGE[1]:
        raise RecipeError(f"learning_rate {lr} is outside [{LR_RANGE[0]}, {LR_RANGE[1]}]")
    if isinstance(epochs, bool) or not isinstance(epochs, int):
        raise RecipeError("epochs must be an integer")
    if not EPOCHS_RANGE[0] <= epochs <= EPOCHS_RANGE[1]:
        raise RecipeError(f"epochs {epochs} is outside [{EPOCHS_RANGE[0]}, {EPOCHS_RANGE[1]}]")
    if loss not in LOSSES:
        raise RecipeError(f"loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    return Recipe(tuple(dict.fromkeys(augs)), float(lr), epochs, loss)


def check_budget(recipe: Recipe, n_sequences: int, max_steps: int) -> None:
    """Refuse a recipe whose training would take more than `max_steps` optimiser steps (batch 1).

    >>> check_budget(Recipe(epochs=3), n_sequences=40, max_steps=100)
    Traceback (most recent call last):
    seal.domains.arc.recipe.OverBudget: recipe needs 120 steps (40 sequences x 3 epochs), over the budget of 100
    """
    steps = n_sequences * recipe.epochs
    if steps > max_steps:
        raise OverBudget(f"recipe needs {steps} steps ({n_sequences} sequences x {recipe.epochs} epochs), "
                          f"over the budget of {max_steps}")


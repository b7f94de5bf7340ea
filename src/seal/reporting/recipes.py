"""Which ARC recipes a set of trials used, and how often each choice solved its task.

The evidence issue 16 asks for when a trained generator is not better: what the model writes
now. For each group of trials (a ReST-EM round's sampled recipes, or an evaluation row) the
table gives, per choice of each recipe field (an augmentation group, the learning rate's order
of magnitude, the epochs, the loss), the share of the group's valid recipes that made it and how
many of those solved their task (a trial is one recipe and one seed):

    | choice               | round 0        | round 1         |
    |----------------------|----------------|-----------------|
    | trials               | 90 (90 valid)  | 90 (88 valid)   |
    | solved               | 7 (8 %)        | 15 (17 %)       |
    | augmentations none   | 21 % (2 of 19) | 40 % (9 of 35)  |
    | learning rate ~1e-03 | 33 % (5 of 30) | 61 % (12 of 54) |

A recipe with several augmentation groups counts under each of them, so those shares add up to
more than 100 %; the other fields' shares add up to 100 % of the valid recipes.
"""

from __future__ import annotations

import json
import math

from seal.report import label

FIELDS = ("augmentations", "learning_rate", "epochs", "loss")


def choices(record: dict) -> list[tuple[str, str]] | None:
    """The (field, value) choices of a trial's parsed recipe; None where it had no valid one.

    >>> choices({"recipe": '{"augmentations": ["basic", "size"], "learning_rate": 0.00031, "epochs": 3, "loss": "all"}'})
    [('augmentations', 'basic'), ('augmentations', 'size'), ('learning_rate', '~1e-04'), ('epochs', '3'), ('loss', 'all')]
    >>> choices({"recipe": '{"augmentations": [], "learning_rate": 0.0009, "epochs": 1, "loss": "output"}'})[:2]
    [('augmentations', 'none'), ('learning_rate', '~1e-03')]
    >>> choices({"status": "invalid_recipe"}) is None
    True
    """
    text = record.get("recipe")
    if not text:
        return None
    recipe = json.loads(text)
    out = [("augmentations", g) for g in recipe["augmentations"]] or [("augmentations", "none")]
    magnitude = 10 ** round(math.log10(recipe["learning_rate"]))
    return out + [("learning_rate", f"~{magnitude:.0e}"), ("epochs", str(recipe["epochs"])), ("loss", recipe["loss"])]


def _order(field: str, value: str):
    if field == "augmentations":
        from seal.domains.arc.augment import GROUPS

        names = [*GROUPS, "none"]
        return (names.index(value) if value in names else len(names), value)
    if field in ("learning_rate", "epochs"):
        return (float(value.lstrip("~")), value)
    return (0, value)


def recipe_profile(groups: dict[str, list[dict]]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the table above for `groups`: a column label -> that column's trial records."""
    header = ["choice", *map(label, groups)]
    counts: dict[str, dict[tuple[str, str], list[int]]] = {}
    totals = []
    for name, records in groups.items():
        per = counts.setdefault(name, {})
        valid = [r for r in records if choices(r) is not None]
        totals.append((len(records), len(valid), sum(bool(r.get("solved")) for r in records)))
        for r in valid:
            for choice in dict.fromkeys(choices(r)):
                seen = per.setdefault(choice, [0, 0])
                seen[0] += 1
                seen[1] += bool(r.get("solved"))
    rows = [["trials", *(f"{n} ({v} valid)" for n, v, _ in totals)],
            ["solved", *(f"{s} ({100 * s / n:.0f} %)" if n else "-" for n, _, s in totals)]]
    keys = sorted({k for per in counts.values() for k in per}, key=lambda k: (FIELDS.index(k[0]), _order(*k)))
    for field, value in keys:
        cells = []
        for name, (_, valid, _) in zip(groups, totals):
            made, solved = counts[name].get((field, value), [0, 0])
            cells.append(f"{100 * made / valid:.0f} % ({solved} of {made})" if made else "-")
        rows.append([f"{field.replace('_', ' ')} {value}", *cells])
    return header, rows


def profile_groups(view) -> dict[str, list[dict]]:
    """An ARC run's columns (a seal.reporting.read.RunView): each ReST-EM round's sampled recipes for `seal
    train`, else each row of the table that trains on recipes (in-context learning has none)."""
    if view.command == "train":
        rounds = sorted(view.path.glob("round-*/trials.jsonl"), key=lambda p: int(p.parent.name.split("-")[1]))
        groups = {f"round {p.parent.name.split('-')[1]}": [r for r in view.records(f"{p.parent.name}/trials.jsonl")
                                                          if r.get("condition") == "model"] for p in rounds}
    else:
        groups = {c: [] for c in view.config.get("conditions") or []}  # the run's order
        for r in view.records("trials.jsonl"):
            groups.setdefault(r["condition"], []).append(r)
    return {name: records for name, records in groups.items()
            if records and any(r.get("recipe") or r.get("status") == "invalid_recipe" for r in records)}


NOTES = {"Recipes": "Per choice: the share of a column's valid recipes that made it (solved of those). A recipe "
                    "with several augmentation groups counts under each.",
         "Grid": "The tasks some grid recipe solved, and which recipes did."}


def _tables(view) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of an ARC run's recipe tables: the recipe table, and a grid run's task x recipe matrix."""
    groups = profile_groups(view)
    if not groups:
        return []
    return [("Recipes", *recipe_profile(groups)), *([("Grid", *grid_matrix(groups["grid"]))] if "grid" in groups else [])]


def profile_section(view) -> str:
    """The tables as markdown sections for an ARC run's report.md ('' when no trial has a recipe yet)."""
    return "".join(f"\n## {title}\n\n{NOTES[title]}\n\n"
                   + "\n".join("| " + " | ".join(r) + " |" for r in [header, ["---"] * len(header), *rows]) + "\n"
                   for title, header, rows in _tables(view))


def profile_html(view) -> str:
    """The same tables as page sections ('' when no trial has a recipe yet)."""
    from seal.reporting.html import esc, table

    return "".join(f"<h2>{title}</h2><p class=\"muted\">{esc(NOTES[title])}</p>"
                   + table([esc(h) for h in header], ([esc(c) for c in row] for row in rows),
                           numeric=set(range(1, len(header))) if title == "Recipes" else frozenset())
                   for title, header, rows in _tables(view))


def recipe_label(text: str) -> str:
    """A recipe in a few words.

    >>> recipe_label('{"augmentations": ["basic", "size"], "learning_rate": 0.001, "epochs": 5, "loss": "output"}')
    'basic+size, lr 0.001, 5 ep, output'
    """
    r = json.loads(text)
    return f"{'+'.join(r['augmentations']) or 'none'}, lr {r['learning_rate']:g}, {r['epochs']} ep, {r['loss']}"


def grid_matrix(trials: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a grid run: a row per task that some recipe solved, then a row of how many tasks each
    recipe solved; a column per grid recipe, 'solved' or '·' per cell ('' where that trial has not run yet)."""
    grid = [t for t in trials if t.get("condition") == "grid" and t.get("recipe")]
    recipes = sorted({t["recipe"] for t in grid}, key=lambda x: [c[1] for c in choices({"recipe": x})])
    cells: dict[str, dict[str, bool]] = {}
    for t in grid:
        cells.setdefault(t["task_id"], {})[t["recipe"]] = bool(t.get("solved"))
    solved = sorted(tid for tid, row in cells.items() if any(row.values()))
    rows = [[tid, *("solved" if cells[tid].get(x) else ("·" if x in cells[tid] else "") for x in recipes)]
            for tid in solved]
    rows.append([f"solved by the recipe (of {len(cells)} tasks)",
                 *(str(sum(row.get(x, False) for row in cells.values())) for x in recipes)])
    return ["task", *map(recipe_label, recipes)], rows

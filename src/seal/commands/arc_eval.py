"""`seal eval --domain arc`: the paper's ARC table, every row through the same TTT trial on the configured engine.

    seal eval --domain arc --condition icl --condition model --condition oracle -k 5

Conditions: `icl` (no test-time training), `model` (recipes sampled from the model being
evaluated), `oracle` (each task's best grid recipe when `--arc-tasks RUN_DIR/selected.json:SPLIT`
names the tasks; otherwise all augmentation groups, output-only loss, lr 1e-4, 2 epochs), and
`generator:MODEL` (recipes sampled from another model, e.g. a ReST-EM round's generator: held to
the recipe's schema when `arc.constrained` is set here or in the ReST-EM run that trained it, so a
generator is sampled the way it learned).
A row's figure is the paper's success rate: the share of (task, recipe) trials whose voted
answers solve the task, averaged per task first, with the standard error over tasks.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from seal.config import RunConfig
from seal.config_load import load_yaml
from seal.domains.arc.domain import sample_recipes
from seal.domains.arc.selection import grid_recipes, select_tasks, selection_ids
from seal.domains.arc.recipe import ORACLE, parse_recipe
from seal.domains.arc.trials import ArcTrials, load_tasks, untrained_answers
from seal.domains.base import Trial
from seal.engines import make_engine
from seal.executors import make_executor
from seal.loops.inner import run_logged
from seal.models import load_model
from seal.report import summarise_arc
from seal.runs import RecordLog, write_atomic


def trained_constrained(generator: str) -> bool:
    """Whether the ReST-EM run that wrote RUN/round-r/generator sampled its recipes under the schema."""
    config = Path(generator).parent.parent / "config.yaml"
    return config.is_file() and bool((load_yaml(config).get("arc") or {}).get("constrained"))


def run_arc_eval(config: RunConfig, run_dir: Path) -> dict:
    tasks = load_tasks(config.arc)
    loaded = load_model(config.model)
    recipes: dict[str, dict[str, list]] = {}
    for c in config.conditions:
        if c in ("model", "constrained"):
            recipes[c] = sample_recipes(loaded, tasks, replace(config, arc=replace(config.arc, constrained=True))
                                        if c == "constrained" else config,
                                        run_dir / ("recipes.jsonl" if c == "model" else "recipes-constrained.jsonl"))
        elif c.startswith("generator:"):
            generator = load_model(replace(config.model, name=c.removeprefix("generator:")))
            label = "".join(ch if ch.isalnum() else "-" for ch in c)[-60:]
            held = config.arc.constrained or trained_constrained(c.removeprefix("generator:"))
            recipes[c] = sample_recipes(generator, tasks, replace(config, arc=replace(config.arc, constrained=held)),
                                        run_dir / f"recipes-{label}.jsonl")
            del generator
        elif c == "grid":  # every recipe of the grid: the search for a task set (seal.domains.arc.selection)
            recipes[c] = {t.id: grid_recipes(config.arc) for t in tasks}
        elif c == "oracle":  # each task's best grid recipe when the tasks come from a selection, else ORACLE
            best = selection_ids(config.arc.task_ids)[1]
            recipes[c] = {t.id: [parse_recipe(best[t.id]) if t.id in best else ORACLE] for t in tasks}
        else:
            recipes[c] = {t.id: [None] for t in tasks}

    engine = make_engine(loaded, config.inner)
    log = RecordLog(run_dir / "trials.jsonl")
    trials = [Trial(c, t, i, e, seed, edit) for c in config.conditions for i, t in enumerate(tasks)
              for e, edit in enumerate(recipes[c][t.id]) for seed in config.inner.seeds]
    start = time.perf_counter()
    records = run_logged(engine, ArcTrials(loaded.tokenizer, config.arc, untrained_answers(log)), trials, log,
                         desc="arc trials", executor=make_executor(config, engine),
                         input_blocks=config.inner.input_blocks)
    print(f"arc: {len(trials)} trials in {time.perf_counter() - start:.0f}s")
    summary = summarise_arc(records, config.conditions, [t.id for t in tasks], config.reference)
    if "grid" in config.conditions:
        selected = select_tasks(records, [t.id for t in tasks], config.arc)
        write_atomic(run_dir / "selected.json", json.dumps(selected, indent=1))
        print(f"arc grid: {len(selected['solved'])} of {selected['tried']} tasks solved by some recipe "
              f"({len(selected['train'])} train, {len(selected['eval'])} eval): {run_dir / 'selected.json'}")
        summary["selected"] = {k: selected[k] for k in ("tried", "solved", "train", "eval")}
    return summary

"""The ARC domain as seen by the ReST-EM loop: tasks in, rewarded recipes out.

The reward of a recipe is 1 when test-time training with it makes the voted answers solve
the task, else 0; the baseline is 0, so the loop keeps only recipes that solved their task
(the paper's filter for ARC).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tqdm.auto import tqdm

from seal.arc.evaluate import load_tasks, sample_recipes
from seal.arc.grids import Task
from seal.arc.trial import arc_trial, recipe_prompt, untrained_answers
from seal.config import RunConfig
from seal.models import LoadedModel
from seal.runs import RecordLog


class ArcDomain:
    name = "arc"

    def __init__(self):
        self._pool: list[Task] | None = None

    def _tasks(self, config: RunConfig) -> list[Task]:
        if self._pool is None:
            self._pool = load_tasks(config)
        return self._pool

    def draw(self, config: RunConfig, r: int, round_dir: Path) -> list[Task]:
        path = round_dir / "tasks.json"
        by_id = {t.id: t for t in self._tasks(config)}
        if path.exists():
            return [by_id[i] for i in json.loads(path.read_text())]
        n = min(config.train.passages_per_round, len(by_id))
        ids = random.Random(f"rest-em-{config.train.seed}-{r}").sample(sorted(by_id), n)
        path.write_text(json.dumps(ids))
        return [by_id[i] for i in ids]

    def prompt(self, task: Task, config: RunConfig) -> str:
        return recipe_prompt(task)

    def sample(self, loaded: LoadedModel, tasks: list[Task], config: RunConfig, round_dir: Path) -> dict[str, list[str]]:
        return sample_recipes(loaded, tasks, config, round_dir / "self_edits.jsonl")

    def evaluate(self, loaded: LoadedModel, model, tasks: list[Task], self_edits: dict[str, list[str]],
                 config: RunConfig, round_dir: Path) -> tuple[dict[str, float], list[dict]]:
        log = RecordLog(round_dir / "trials.jsonl")
        done = {(r["task_id"], r["self_edit_index"], r["seed"]) for r in log}
        plan = [(t, e, edit, seed) for t in tasks for e, edit in enumerate(self_edits[t.id])
                for seed in config.inner.seeds if (t.id, e, seed) not in done]
        untrained = untrained_answers(log)
        for task, e, edit, seed in tqdm(plan, desc="arc trials", unit="trial"):
            record = arc_trial(loaded, model, task, edit, seed, config.inner, config.arc, untrained)
            record["self_edit_index"] = e
            log.append(record)
        # Reward 1 only when the recipe's own TTT solved the task: an invalid or over-budget recipe
        # trained nothing, so the untrained model's luck is not its reward.
        return {t.id: 0.0 for t in tasks}, [{**r, "item_id": r["task_id"],
                                             "accuracy": r["accuracy"] if r["status"] == "ok" else 0.0} for r in log]

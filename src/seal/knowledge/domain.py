"""The knowledge-incorporation domain as seen by the ReST-EM loop: passages in, rewarded self-edits out."""

from __future__ import annotations

import random
from pathlib import Path

from seal.config import RunConfig
from seal.knowledge.grading import Grader
from seal.knowledge.passages import Passage, load_passages, save_passages
from seal.knowledge.prompts import self_edit_prompt
from seal.models import LoadedModel


class KnowledgeDomain:
    """Passages from `config.data`; the reward of a self-edit is the no-context accuracy after its trials."""

    name = "knowledge"
    batched_trials = True  # its trials run on the batched multi-adapter engine (seal.multi_lora)

    def __init__(self, grader: Grader | None = None):
        self.grader = grader  # None: the grader named in the config
        self._pool: list[Passage] | None = None

    def draw(self, config: RunConfig, r: int, round_dir: Path) -> list[Passage]:
        """This round's training batch: drawn once with seed (train.seed, r), saved, read back on resume."""
        path = round_dir / "passages.json"
        if path.exists():
            return load_passages(str(path))
        if self._pool is None:
            from seal.adapt import passages_for

            self._pool = passages_for(config)
        n = min(config.train.passages_per_round, len(self._pool))
        batch = random.Random(f"rest-em-{config.train.seed}-{r}").sample(self._pool, n)
        save_passages(batch, path)
        return batch

    def prompt(self, passage: Passage, config: RunConfig) -> str:
        return self_edit_prompt(config.sampling.prompt, passage)

    def sample(self, loaded: LoadedModel, passages: list[Passage], config: RunConfig, round_dir: Path) -> dict[str, list[str]]:
        from seal.self_edits import generate_into

        return generate_into(round_dir, loaded, passages, config)

    def evaluate(self, loaded: LoadedModel, model, passages: list[Passage], self_edits: dict[str, list[str]],
                 config: RunConfig, round_dir: Path) -> tuple[dict[str, float], list[dict]]:
        """Baseline accuracy per passage and one record per trial (with `item_id`, `self_edit_index`, `accuracy`)."""
        from seal.adapt import ensure_baselines, make_grader, plan_trials, run_trials

        grader = self.grader or make_grader(config, loaded, model)
        baselines = ensure_baselines(round_dir, loaded, model, passages, config.inner, grader)
        specs = plan_trials(config, passages, {"model": self_edits})
        trials = run_trials(round_dir, loaded, model, passages, specs, config.inner, grader, baselines)
        return ({pid: b["accuracy"] for pid, b in baselines.items()},
                [{**t, "item_id": t["passage_id"]} for t in trials])

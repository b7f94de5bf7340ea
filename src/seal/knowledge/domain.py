"""The knowledge-incorporation domain as seen by the ReST-EM loop: passages in, rewarded self-edits out."""

from __future__ import annotations

import random
from dataclasses import replace
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
        """Baseline accuracy per passage and one record per self-edit trial (`item_id`, `self_edit_index`, `accuracy`).

        The baseline is the un-adapted model's accuracy, or with `train.baseline: passage-only`
        the mean over seeds of trials on the passage alone (run with the self-edits' trials).
        """
        from seal.adapt import ensure_baselines, make_grader, plan_trials, run_trials

        grader = self.grader or make_grader(config, loaded, model)
        baselines = ensure_baselines(round_dir, loaded, model, passages, config.inner, grader)
        passage_only = config.train.baseline == "passage-only"
        conditions = ["passage", "model"] if passage_only else ["model"]
        specs = plan_trials(replace(config, conditions=conditions), passages, {"model": self_edits})
        trials = run_trials(round_dir, loaded, model, passages, specs, config.inner, grader, baselines)
        reference = {pid: b["accuracy"] for pid, b in baselines.items()}
        if passage_only:
            by_passage: dict[str, list[float]] = {}
            for t in trials:
                if t["condition"] == "passage":
                    by_passage.setdefault(t["passage_id"], []).append(t["accuracy"])
            reference = {pid: sum(v) / len(v) for pid, v in by_passage.items()}
        return reference, [{**t, "item_id": t["passage_id"]} for t in trials if t["condition"] == "model"]

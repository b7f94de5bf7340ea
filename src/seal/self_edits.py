"""Sampling self-edits: the model writes its own fine-tuning data for each passage.

    seal generate --data ../shared/data/squad/eval200_gpt41_self_edits.json --num-passages 20 -k 3

Self-edits are sampled in batches (k per passage, `num_return_sequences`) and appended to
`RUN_DIR/self_edits.jsonl` one passage at a time, so an interrupted generation resumes
where it stopped. A later `seal adapt` can train on them by naming the run directory as a
condition (`--condition runs/...-generate`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from seal.config import RunConfig, SamplingConfig
from seal.errors import SealError
from seal.generation import generate
from seal.knowledge.passages import Passage
from seal.knowledge.prompts import self_edit_prompt
from seal.models import LoadedModel
from seal.runs import RecordLog


def sample_self_edits(loaded: LoadedModel, passages: list[Passage], sampling: SamplingConfig,
                      desc: str | None = None) -> list[list[str]]:
    """k self-edits per passage from the current model."""
    if sampling.prompt == "none":
        return [[] for _ in passages]
    prompts = [self_edit_prompt(sampling.prompt, p) for p in passages]
    return generate(loaded, prompts, max_new_tokens=sampling.max_new_tokens, batch_size=sampling.batch_size,
                    temperature=sampling.temperature, top_p=sampling.top_p, num_return_sequences=sampling.k,
                    seed=sampling.seed, desc=desc)


def generate_into(run_dir: Path, loaded: LoadedModel, passages: list[Passage], config: RunConfig,
                  log_name: str = "self_edits.jsonl") -> dict[str, list[str]]:
    """Sample self-edits for every passage not yet in RUN_DIR/LOG_NAME; return all of them by passage id."""
    log = RecordLog(run_dir / log_name)
    done = {r["passage_id"]: r["self_edits"] for r in log}
    todo = [(i, p) for i, p in enumerate(passages) if p.id not in done]
    if todo:
        chunk = max(1, config.sampling.batch_size)
        start = time.perf_counter()
        with tqdm(total=len(todo), desc="generate self-edits", unit="passage") as progress:
            for c in range(0, len(todo), chunk):
                part = todo[c:c + chunk]
                # Seed per chunk from its first passage index, so a resumed run samples what it would have.
                sampling = replace(config.sampling, seed=config.sampling.seed * 1_000_003 + part[0][0])
                samples = sample_self_edits(loaded, [p for _, p in part], sampling)
                for (i, p), edits in zip(part, samples):
                    log.append({"passage_id": p.id, "passage_index": i, "title": p.title,
                                "prompt": config.sampling.prompt, "self_edits": edits})
                    done[p.id] = edits
                progress.update(len(part))
        print(f"generate: {len(todo)} passages x {config.sampling.k} self-edits in {time.perf_counter() - start:.1f}s")
    return done


def read_generated(path: str | Path) -> tuple[str, dict[str, list[str]]]:
    """Self-edits of an earlier `seal generate` run (its directory or its self_edits.jsonl), and their prompt family."""
    path = Path(path)
    if path.is_dir():
        path = path / "self_edits.jsonl"
    if not path.is_file():
        raise SealError(f"no self_edits.jsonl at {path}")
    records = list(RecordLog(path))
    if not records:
        raise SealError(f"{path} holds no self-edits")
    families = {r.get("prompt", "implications") for r in records}
    return families.pop() if len(families) == 1 else "implications", {r["passage_id"]: r["self_edits"] for r in records}

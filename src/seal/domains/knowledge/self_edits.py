"""Sampling self-edits: the model writes its own fine-tuning data for each passage.

    seal generate --data ../shared/data/squad/eval200_gpt41_self_edits.json --num-passages 20 -k 3

Self-edits are sampled in batches (k per passage, `num_return_sequences`) and appended to
`RUN_DIR/self_edits.jsonl` batch by batch (`seal.generation.sample_into`), so an interrupted
generation resumes where it stopped and samples what it would have. A later `seal adapt` can train on them by naming the run directory as a
condition (`--condition runs/...-generate`).

A `generator:RUN/round-N/generator` row (a ReST-EM round's generator, `--train-run`) samples as its
`seal train` run sampled it: in that run's prompt family and at its length (`sampling.prompt`,
`sampling.max_new_tokens`), whatever the evaluating run's own: a generator trained on rewrites of up to
256 tokens is asked for rewrites of up to 256 tokens. `generator:RUN` is the generator the run started
from (its `model.name`), sampled the same way: the base generator's self-edits as the run's round 0 drew
them, the row its rounds' generators are measured against.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from seal.config import RunConfig, SamplingConfig
from seal.config_load import load_yaml
from seal.errors import SealError
from seal.generation import generate, sample_into
from seal.domains.knowledge.passages import Passage
from seal.domains.knowledge.prompts import self_edit_prompt
from seal.models import LoadedModel, load_model
from seal.runs import RecordLog


def sample_self_edits(loaded: LoadedModel, passages: list[Passage], sampling: SamplingConfig) -> list[list[str]]:
    """k self-edits per passage from the current model, in memory (the bench scripts' use)."""
    if sampling.prompt == "none":
        return [[] for _ in passages]
    return generate(loaded, [self_edit_prompt(sampling.prompt, p) for p in passages],
                    max_new_tokens=sampling.max_new_tokens, batch_size=sampling.batch_size,
                    temperature=sampling.temperature, top_p=sampling.top_p, num_return_sequences=sampling.k,
                    seed=sampling.seed)


def generate_into(run_dir: Path, loaded: LoadedModel, passages: list[Passage], config: RunConfig,
                  log_name: str = "self_edits.jsonl", executor=None) -> dict[str, list[str]]:
    """Sample self-edits for every passage not yet in RUN_DIR/LOG_NAME; return all of them by passage id."""
    s = config.sampling
    if s.prompt == "none":
        return {p.id: [] for p in passages}
    return sample_into(RecordLog(run_dir / log_name), loaded, passages, [self_edit_prompt(s.prompt, p) for p in passages],
                       s, id_field="passage_id", max_new_tokens=s.max_new_tokens,
                       describe=lambda i, p: {"passage_index": i, "title": p.title, "prompt": s.prompt},
                       desc="generate self-edits", executor=executor)


def read_generated(path: str | Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Self-edits of an earlier `seal generate` run (its directory or its self_edits.jsonl) by passage id,
    and each passage's prompt family (a run may mix families; records without one: implications)."""
    path = Path(path)
    if path.is_dir():
        path = path / "self_edits.jsonl"
    if not path.is_file():
        raise SealError(f"no self_edits.jsonl at {path}")
    records = list(RecordLog(path))
    if not records:
        raise SealError(f"{path} holds no self-edits")
    families = {r["passage_id"]: r.get("prompt", "implications") for r in records}
    return families, {r["passage_id"]: r["self_edits"] for r in records}


def is_sampled(condition: str) -> bool:
    """Whether a knowledge condition samples its self-edits during the run (model, model:FAMILY, generator:MODEL)."""
    return condition == "model" or condition.startswith(("model:", "generator:"))


def condition_family(condition: str, default: str) -> str:
    """The prompt family a sampling condition writes with: FAMILY for model:FAMILY, the family its ReST-EM run
    sampled in for generator:RUN/round-N/generator and generator:RUN, else `default` (sampling.prompt).

    >>> condition_family("model:self-qa", "implications"), condition_family("model", "rewrite")
    ('self-qa', 'rewrite')
    >>> condition_family("generator:HuggingFaceTB/SmolLM2-360M-Instruct", "implications")  # not a run's generator
    'implications'
    """
    if condition.startswith("model:"):
        return condition.removeprefix("model:")
    if condition.startswith("generator:"):
        run = generator_run(condition.removeprefix("generator:"))
        return (run["sampling"].get("prompt") or "implications") if run else default
    return default


def condition_sampling(condition: str, sampling: SamplingConfig) -> SamplingConfig:
    """How a sampling condition samples: the table's settings in the condition's family; a ReST-EM run's
    generator (or the generator it started from) also at the length that run sampled at."""
    out = replace(sampling, prompt=condition_family(condition, sampling.prompt))
    run = generator_run(condition.removeprefix("generator:")) if condition.startswith("generator:") else None
    length = run["sampling"].get("max_new_tokens") if run else None
    return replace(out, max_new_tokens=int(length)) if length else out


def generator_run(generator: str) -> dict | None:
    """The saved config of the `seal train` run that `generator` names, as RUN/round-N/generator (a round's
    generator) or as RUN (the generator it started from), with `sampling` always a mapping; else None."""
    path = Path(generator)
    run = path.parent.parent if path.name == "generator" and path.parent.name.startswith("round-") else path
    config = run / "config.yaml"
    if not config.is_file():
        return None
    saved = load_yaml(config)
    if saved.get("command") != "train":
        return None
    return {**saved, "sampling": saved.get("sampling") or {}}


def generator_model(generator: str) -> str:
    """The model a `generator:` row loads: for a `seal train` run's directory, the generator it started from
    (its model.name); otherwise `generator` itself (a model id, a path, a round's generator/)."""
    run = generator_run(generator)
    if run is None or Path(generator).name == "generator":
        return generator
    name = (run.get("model") or {}).get("name")
    if not name:
        raise SealError(f"{generator}/config.yaml names no model.name, so the generator it started from is unknown")
    return name


def sampled_log_name(condition: str) -> str:
    """The file in a run directory that holds a sampling condition's self-edits."""
    if condition == "model":
        return "self_edits.jsonl"
    label = "".join(ch if ch.isalnum() else "-" for ch in condition.removeprefix("generator:")).strip("-")[-60:]
    return f"self_edits-{label}.jsonl"


def check_self_edits_from(config: RunConfig) -> Path:
    """The run named by `self_edits_from`, if it sampled as this run would; otherwise one clear error."""
    from seal.runs import load_run_config

    source = Path(config.self_edits_from)
    other = load_run_config(source)
    fields = ("prompt", "k", "temperature", "top_p", "max_new_tokens", "seed")
    differ = [f"{f} {getattr(other.sampling, f)} vs {getattr(config.sampling, f)}" for f in fields
              if getattr(other.sampling, f) != getattr(config.sampling, f)]
    if other.model.name != config.model.name:
        differ.append(f"model {other.model.name} vs {config.model.name}")
    if differ:
        raise SealError(f"--self-edits-from {source}: it sampled otherwise ({'; '.join(differ)}); "
                        "sample again instead, or match its settings")
    return source


def reuse_sampled(run_dir: Path, condition: str, config: RunConfig) -> None:
    """Copy the condition's self-edits from `config.self_edits_from` into this run, once (before any sampling)."""
    name = sampled_log_name(condition)
    source = check_self_edits_from(config) / name
    if source.is_file() and not (run_dir / name).exists():
        shutil.copyfile(source, run_dir / name)
        print(f"{condition}: self-edits from {source}")


def sample_condition(condition: str, run_dir: Path, loaded: LoadedModel, passages: list[Passage],
                     config: RunConfig) -> dict[str, list[str]]:
    """Self-edits for a sampling condition: `model` (the adapted model itself), `model:FAMILY` (it, with that
    prompt family) or `generator:PATH`; with `--executor ray`, sampled side by side on the workers.

    With `config.self_edits_from`, the earlier run's records of the condition are copied in first,
    so only passages that run did not sample are sampled here."""
    if config.self_edits_from:
        reuse_sampled(run_dir, condition, config)
    from seal.executors import remote_executor

    family_config = replace(config, sampling=condition_sampling(condition, config.sampling))
    log_name = sampled_log_name(condition)
    if is_sampled(condition) and not condition.startswith("generator:"):  # the model itself
        return generate_into(run_dir, loaded, passages, family_config, log_name, executor=remote_executor(config))
    path = generator_model(condition.removeprefix("generator:"))
    done = {r["passage_id"]: r["self_edits"] for r in RecordLog(run_dir / log_name)}
    if all(p.id in done for p in passages):  # a resumed run: do not load the generator again
        return done
    remote = remote_executor(config, path)  # on Ray the workers load the generator, not this process
    if remote is not None:
        return generate_into(run_dir, loaded, passages, family_config, log_name, executor=remote)
    generator = load_model(replace(config.model, name=path))
    try:
        return generate_into(run_dir, generator, passages, family_config, log_name)
    finally:
        del generator

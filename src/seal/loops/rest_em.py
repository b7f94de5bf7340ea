"""The SEAL outer loop: ReST-EM rounds that teach the model to write self-edits it learns well from.

    seal train --config configs/rest-em-fictional.yaml                 # passages (knowledge incorporation)
    seal train --domain arc --arc-challenges ...training_challenges... # ARC recipes

Each round r lives in RUN_DIR/round-r/ and runs these named, timed stages, each writing
its output before the next starts:

  draw       a batch of training inputs, drawn with seed (train.seed, r)          passages.json / tasks.json
  generate   k self-edits per input, sampled from the current generator           self_edits.jsonl
  trials     every self-edit's inner loop, once per seed; reward = mean score     baselines.jsonl, trials.jsonl
  select     E-step: per input, the best self-edit if it beats the input's        kept.jsonl
             baseline (train.selection=beats-baseline keeps every one that does,
             the paper's rule for ARC and the ARC domain's default;
             train.baseline=passage-only: the baseline is a trial on the passage alone;
             train.max_copy: a self-edit repeating more of its passage is never kept)
  sft        M-step: LoRA SFT of the generator on the kept (prompt, self-edit)    generator/, round.json
             pairs, merged and saved with save_pretrained; the next round samples from it
             (train.sft_from=base: SFT of the base model instead, each round afresh)

The loop knows a domain only through the small `Domain` protocol of seal.domains.base (the
knowledge domain: passages and no-context QA; the ARC domain: tasks and recipes, reward 1 if
solved), and runs every trial and the generator SFT on the configured engine (`--engine`).
As in the paper, the generator is also the model adapted in the inner loop: round r's
trials fine-tune round r's generator. `seal train --resume RUN_DIR` skips every finished
stage and every finished trial. A round that keeps nothing leaves the generator unchanged.
With train.reuse_from, rounds another run has already sampled and tried are copied from it
(seal.loops.reuse): an ablation of the E-step or M-step reruns only what it changes.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from seal.config import RunConfig
from seal.domains.base import Domain
from seal.engines import make_engine
from seal.executors import remote_executor
from seal.executors.base import LocalExecutor
from seal.loops.reuse import reuse_round, reused_from
from seal.loops.sft import sft_generator
from seal.generation import run_here
from seal.models import load_model
from seal.runs import publish, relative_to_run, resolve_in_run, write_atomic
from seal.stats import TIE, mean_and_stderr


def select_self_edits(rewards: dict[str, list[float]], baselines: dict[str, float], rule: str = "best") -> dict[str, list[int]]:
    """Indices of the kept self-edits per passage: the E-step's filter.

    >>> rewards = {"p": [0.2, 0.6, 0.6], "q": [0.0, 0.0], "r": [0.5, 0.7]}
    >>> select_self_edits(rewards, {"p": 0.2, "q": 0.0, "r": 0.6})
    {'p': [1], 'r': [1]}
    >>> select_self_edits(rewards, {"p": 0.2, "q": 0.0, "r": 0.6}, "beats-baseline")
    {'p': [1, 2], 'r': [1]}
    >>> select_self_edits({"p": [(0.4 + 0.2) / 2]}, {"p": 0.3})   # a tie, not a win
    {}
    """
    kept = {}
    for pid, values in rewards.items():
        better = [i for i, v in enumerate(values) if v > baselines[pid] + TIE]
        if better:
            best = max(values[i] for i in better)
            kept[pid] = better if rule == "beats-baseline" else [min(i for i in better if values[i] >= best - TIE)]
    return kept


def self_edit_rewards(trials: list[dict]) -> dict[str, list[float]]:
    """Reward of every self-edit, by input: its trial accuracy averaged over seeds."""
    by_edit: dict[tuple[str, int], list[float]] = {}
    for t in trials:
        by_edit.setdefault((t["item_id"], t["self_edit_index"]), []).append(t["accuracy"])
    rewards: dict[str, list[float]] = {}
    for (pid, e), accs in sorted(by_edit.items()):
        rewards.setdefault(pid, []).append(sum(accs) / len(accs))
    return rewards


def save_generator(loaded, target: Path) -> None:
    """save_pretrained into a staging directory, then rename: a killed save leaves no half model."""
    staging = Path(tempfile.mkdtemp(prefix=".generator-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would stay on the final directory
    loaded.model.save_pretrained(staging)
    loaded.tokenizer.save_pretrained(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def sft_and_save(loaded, pairs: list[tuple[str, str]], cfg, seed: int, engine: str, target: str) -> dict:
    """The M-step where the generator is (this process, or a Ray worker: seal.executors): SFT, then save."""
    sft = sft_generator(loaded, pairs, cfg, seed=seed, engine=engine)
    save_generator(loaded, Path(target))
    return sft


def run_round(config: RunConfig, domain: Domain, r: int, generator: str, round_dir: Path) -> dict:
    """One ReST-EM round; returns (and saves as round.json) its summary."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    items = domain.draw(config, r, round_dir)
    loaded = load_model(replace(config.model, name=generator))
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    round_config = replace(config, conditions=["model"],
                           sampling=replace(config.sampling, seed=config.sampling.seed + 1_000 * r))
    remote = remote_executor(config, generator)  # None: everything in this process
    self_edits = domain.sample(loaded, items, round_config, round_dir, remote)
    timings["generate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    engine = make_engine(loaded, config.inner)
    baselines, trials = domain.evaluate(loaded, engine, items, self_edits, round_config, round_dir,
                                        remote or LocalExecutor(engine))
    timings["trials_s"] = time.perf_counter() - t

    rewards = self_edit_rewards(trials)
    by_id = {item.id: item for item in items}
    copied = {iid: [domain.copied(by_id[iid], self_edits[iid][e]) for e in range(len(v))] for iid, v in rewards.items()}
    limit = config.train.max_copy
    too_copied = {(iid, e) for iid, shares in copied.items() for e, c in enumerate(shares)
                  if limit is not None and c is not None and c > limit}
    eligible = {iid: [-math.inf if (iid, e) in too_copied else v for e, v in enumerate(values)]
                for iid, values in rewards.items()}  # an over-copied self-edit can beat no baseline
    rule = config.train.selection or domain.selection  # unset: the paper's rule for the domain
    kept = select_self_edits(eligible, baselines, rule)
    pairs = [(domain.prompt(by_id[iid], config), self_edits[iid][e]) for iid, indices in kept.items() for e in indices]
    write_atomic(round_dir / "kept.jsonl", "".join(
        json.dumps({"item_id": iid, "self_edit_index": e, "reward": rewards[iid][e], "baseline": baselines[iid],
                    "copied": copied[iid][e], "self_edit": self_edits[iid][e]}) + "\n"
        for iid, indices in kept.items() for e in indices))

    t = time.perf_counter()
    engine.unload()  # drop the inner-loop adapters; the base weights were never changed
    sft = None
    next_generator = generator
    sft_model = config.model.name if config.train.sft_from == "base" else generator
    if pairs:
        if sft_model == generator:
            where = remote.on_model if remote else partial(run_here, loaded)
        else:  # ReST-EM's authors' M-step: the base model, not the generator that sampled the round
            del loaded
            base_remote = remote_executor(config, sft_model)
            where = base_remote.on_model if base_remote else partial(run_here, load_model(config.model))
        sft = where(sft_and_save, pairs, config.train.sft, config.train.seed * 1_000 + r, config.inner.engine,
                    str((round_dir / "generator").resolve()), keep=False)
        next_generator = str(round_dir / "generator")
    timings["sft_s"] = time.perf_counter() - t

    input_rewards = {iid: sum(v) / len(v) for iid, v in rewards.items()}
    shares = [c for v in copied.values() for c in v if c is not None]
    mean, stderr = mean_and_stderr(list(input_rewards.values()))
    summary = {
        "round": r, "domain": domain.name, "generator_in": relative_to_run(round_dir.parent, generator),
        "sft_from": relative_to_run(round_dir.parent, sft_model) if pairs else None,
        "generator_out": relative_to_run(round_dir.parent, next_generator),
        "inputs": len(items), "self_edits": sum(len(v) for v in rewards.values()),
        "seeds": list(config.inner.seeds), "sampling_seed": round_config.sampling.seed,
        "mean_reward": mean, "reward_stderr": stderr,
        "input_rewards": input_rewards,
        "baseline": config.train.baseline, "mean_baseline": sum(baselines.values()) / len(baselines),
        "selection": rule,
        "kept": len(pairs), "copied_share": mean_and_stderr(shares)[0] if shares else None,
        "max_copy": limit, "dropped_as_copies": len(too_copied),
        "sft": sft, "timings": {k: round(v, 2) for k, v in timings.items()},
        "reused_from": reused_from(round_dir),
    }
    write_atomic(round_dir / "round.json", json.dumps(summary, indent=1))
    publish(round_dir / "round.json", summary)
    return summary


def train(config: RunConfig, run_dir: Path, domain: Domain) -> list[dict]:
    """Run (or resume) every ReST-EM round of `config` in `run_dir`; return the rounds' summaries."""
    generator = config.model.name
    history = []
    for r in range(config.train.rounds):
        round_dir = run_dir / f"round-{r}"
        round_dir.mkdir(parents=True, exist_ok=True)
        summary = read_round(round_dir)
        if summary is not None:
            print(f"round {r}: already done (mean reward {summary['mean_reward']:.3f})")
        else:
            if config.train.reuse_from:
                reuse_round(config, run_dir, r)
            print(f"round {r}: generator {generator}")
            summary = run_round(config, domain, r, generator, round_dir)
            print(f"round {r}: mean reward {summary['mean_reward']:.3f} ± {summary['reward_stderr']:.3f}, "
                  f"kept {summary['kept']} of {summary['self_edits']} self-edits")
        if "input_rewards" not in summary:  # rounds written before round.json kept the per-input rewards
            summary["input_rewards"] = logged_input_rewards(round_dir / "trials.jsonl")
        history.append(summary)
        generator = resolve_in_run(run_dir, summary["generator_out"])
    return history


def read_round(round_dir: Path) -> dict | None:
    """A finished round's summary; None when the round has not finished (or its round.json is unreadable,
    as an older version's torn write could leave it: every stage is resumable, so the round finishes again)."""
    path = round_dir / "round.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        print(f"round {round_dir.name}: {path} is unreadable; finishing the round again from its records")
        return None


def logged_input_rewards(trials_log: Path) -> dict[str, float]:
    """Each passage's mean self-edit reward, read back from a knowledge round's trials.jsonl.

    ARC records give {} (no paired change): their reward is not the logged accuracy alone
    (a recipe that trained nothing earns 0, see ArcDomain.evaluate).
    """
    with open(trials_log, encoding="utf-8") as f:
        trials = [{**t, "item_id": t["passage_id"]} for t in map(json.loads, f) if t.get("condition") == "model"]
    return {iid: sum(v) / len(v) for iid, v in self_edit_rewards(trials).items()}

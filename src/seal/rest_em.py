"""The SEAL outer loop: ReST-EM rounds that teach the model to write self-edits it learns well from.

    seal train --data fictional --num-passages 120 --rounds 3 --passages-per-round 8 -k 3 --seeds 0,1

Each round r lives in RUN_DIR/round-r/ and runs these named, timed stages, each writing
its output before the next starts:

  passages   a batch of training passages, drawn with seed (train.seed, r) from the pool  passages.json
  generate   k self-edits per passage, sampled from the current generator                 self_edits.jsonl
  baseline   the current generator's no-context answers, once per passage                baselines.jsonl
  trials     every self-edit's inner loop, once per seed; reward = mean accuracy          trials.jsonl
  select     E-step: per passage, the best self-edit if it beats the baseline             kept.jsonl
             (train.selection=beats-baseline keeps every self-edit that does)
  sft        M-step: LoRA SFT of the generator on the kept (prompt, self-edit) pairs,     generator/
             merged and saved with save_pretrained; the next round samples from it      round.json

As in the paper, the generator is also the model adapted in the inner loop: round r's
trials fine-tune round r's generator. `seal train --resume RUN_DIR` skips every finished
stage and every finished trial. A round that keeps nothing leaves the generator unchanged.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from seal.adapt import ensure_baselines, make_grader, mean_and_stderr, passages_for, plan_trials, run_trials
from seal.config import RunConfig
from seal.inner_loop import attach_lora
from seal.knowledge.grading import Grader
from seal.knowledge.passages import Passage, load_passages, save_passages
from seal.knowledge.prompts import self_edit_prompt
from seal.models import load_model
from seal.runs import RecordLog
from seal.self_edits import generate_into
from seal.sft import sft_generator


def round_passages(pool: list[Passage], config: RunConfig, r: int, round_dir: Path) -> list[Passage]:
    """This round's training batch: drawn once, saved, and read back on resume."""
    path = round_dir / "passages.json"
    if path.exists():
        return load_passages(str(path))
    n = min(config.train.passages_per_round, len(pool))
    batch = random.Random(f"rest-em-{config.train.seed}-{r}").sample(pool, n)
    save_passages(batch, path)
    return batch


def select_self_edits(rewards: dict[str, list[float]], baselines: dict[str, float], rule: str = "best") -> dict[str, list[int]]:
    """Indices of the kept self-edits per passage: the E-step's filter.

    >>> rewards = {"p": [0.2, 0.6, 0.6], "q": [0.0, 0.0], "r": [0.5, 0.7]}
    >>> select_self_edits(rewards, {"p": 0.2, "q": 0.0, "r": 0.6})
    {'p': [1], 'r': [1]}
    >>> select_self_edits(rewards, {"p": 0.2, "q": 0.0, "r": 0.6}, "beats-baseline")
    {'p': [1, 2], 'r': [1]}
    """
    kept = {}
    for pid, values in rewards.items():
        better = [i for i, v in enumerate(values) if v > baselines[pid]]
        if better:
            kept[pid] = better if rule == "beats-baseline" else [max(better, key=lambda i: (values[i], -i))]
    return kept


def self_edit_rewards(trials: list[dict]) -> dict[str, list[float]]:
    """Reward of every self-edit, by passage: its trial accuracy averaged over seeds."""
    by_edit: dict[tuple[str, int], list[float]] = {}
    for t in trials:
        by_edit.setdefault((t["passage_id"], t["self_edit_index"]), []).append(t["accuracy"])
    rewards: dict[str, list[float]] = {}
    for (pid, e), accs in sorted(by_edit.items()):
        rewards.setdefault(pid, []).append(sum(accs) / len(accs))
    return rewards


def save_generator(loaded, target: Path) -> None:
    """save_pretrained into a staging directory, then rename: a killed save leaves no half model."""
    staging = Path(tempfile.mkdtemp(prefix=".generator-", dir=target.parent))
    loaded.model.save_pretrained(staging)
    loaded.tokenizer.save_pretrained(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def run_round(config: RunConfig, pool: list[Passage], r: int, generator: str, round_dir: Path,
              grader: Grader | None = None) -> dict:
    """One ReST-EM round; returns (and saves as round.json) its summary."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    passages = round_passages(pool, config, r, round_dir)
    loaded = load_model(replace(config.model, name=generator))
    timings["load_s"] = time.perf_counter() - t

    t = time.perf_counter()
    round_config = replace(config, conditions=["model"],
                           sampling=replace(config.sampling, seed=config.sampling.seed + 1_000 * r))
    self_edits = generate_into(round_dir, loaded, passages, round_config)
    timings["generate_s"] = time.perf_counter() - t

    model = attach_lora(loaded.model, config.inner)
    grader = grader or make_grader(config, loaded, model)
    t = time.perf_counter()
    baselines = ensure_baselines(round_dir, loaded, model, passages, config.inner, grader)
    timings["baseline_s"] = time.perf_counter() - t
    t = time.perf_counter()
    specs = plan_trials(round_config, passages, {"model": self_edits})
    trials = run_trials(round_dir, loaded, model, passages, specs, config.inner, grader, baselines)
    timings["trials_s"] = time.perf_counter() - t

    rewards = self_edit_rewards(trials)
    baseline_acc = {pid: b["accuracy"] for pid, b in baselines.items()}
    kept = select_self_edits(rewards, baseline_acc, config.train.selection)
    by_id = {p.id: p for p in passages}
    pairs = [(self_edit_prompt(config.sampling.prompt, by_id[pid]), self_edits[pid][e])
             for pid, indices in kept.items() for e in indices]
    with open(round_dir / "kept.jsonl", "w", encoding="utf-8") as f:
        for pid, indices in kept.items():
            for e in indices:
                f.write(json.dumps({"passage_id": pid, "self_edit_index": e, "reward": rewards[pid][e],
                                    "baseline": baseline_acc[pid], "self_edit": self_edits[pid][e]}) + "\n")

    t = time.perf_counter()
    loaded.model = model.unload()  # drop the inner-loop adapter; the base weights were never changed
    sft = None
    next_generator = generator
    if pairs:
        sft = sft_generator(loaded, pairs, config.train.sft, seed=config.train.seed * 1_000 + r)
        save_generator(loaded, round_dir / "generator")
        next_generator = str(round_dir / "generator")
    timings["sft_s"] = time.perf_counter() - t

    per_passage = [sum(v) / len(v) for v in rewards.values()]
    mean, stderr = mean_and_stderr(per_passage)
    summary = {
        "round": r, "generator_in": generator, "generator_out": next_generator,
        "passages": len(passages), "self_edits": sum(len(v) for v in rewards.values()),
        "seeds": list(config.inner.seeds), "sampling_seed": round_config.sampling.seed,
        "mean_reward": mean, "reward_stderr": stderr,
        "mean_baseline": sum(baseline_acc.values()) / len(baseline_acc),
        "kept": len(pairs), "sft": sft, "timings": {k: round(v, 2) for k, v in timings.items()},
    }
    (round_dir / "round.json").write_text(json.dumps(summary, indent=1))
    return summary


def train(config: RunConfig, run_dir: Path, grader: Grader | None = None) -> list[dict]:
    """Run (or resume) every ReST-EM round of `config` in `run_dir`; return the rounds' summaries."""
    pool = passages_for(config)
    generator = config.model.name
    history = []
    for r in range(config.train.rounds):
        round_dir = run_dir / f"round-{r}"
        round_dir.mkdir(parents=True, exist_ok=True)
        if (round_dir / "round.json").exists():
            summary = json.loads((round_dir / "round.json").read_text())
            print(f"round {r}: already done (mean reward {summary['mean_reward']:.3f})")
        else:
            print(f"round {r}: generator {generator}")
            summary = run_round(config, pool, r, generator, round_dir, grader)
            print(f"round {r}: mean reward {summary['mean_reward']:.3f} ± {summary['reward_stderr']:.3f}, "
                  f"kept {summary['kept']} of {summary['self_edits']} self-edits")
        history.append(summary)
        generator = summary["generator_out"]
    return history


def train_report(history: list[dict], title: str) -> str:
    lines = [f"# {title}", "", "Reward: no-context accuracy after the inner loop, averaged over seeds, then over a "
             "passage's self-edits, then over passages (± standard error over passages).", "",
             "| round | passages | self-edits | baseline | mean reward | ± s.e. | kept | SFT loss | minutes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for h in history:
        sft = h["sft"]
        loss = f"{sft['epoch_losses'][0]:.3f} → {sft['epoch_losses'][-1]:.3f}" if sft else "-"
        minutes = sum(h["timings"].values()) / 60
        lines.append(f"| {h['round']} | {h['passages']} | {h['self_edits']} | {100 * h['mean_baseline']:.1f} % | "
                     f"{100 * h['mean_reward']:.1f} % | {100 * h['reward_stderr']:.1f} | {h['kept']} | {loss} | {minutes:.1f} |")
    lines += ["", f"Final generator: `{history[-1]['generator_out']}`"]
    return "\n".join(lines) + "\n"


def plot_rewards(history: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rounds = [h["round"] for h in history]
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ax.errorbar(rounds, [100 * h["mean_reward"] for h in history], yerr=[100 * h["reward_stderr"] for h in history],
                marker="o", capsize=4, label="sampled self-edits")
    ax.plot(rounds, [100 * h["mean_baseline"] for h in history], "--", color="grey", label="no adaptation")
    ax.set_xlabel("ReST-EM round")
    ax.set_ylabel("reward: no-context accuracy, %")
    ax.set_xticks(rounds)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

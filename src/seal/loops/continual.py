"""Continual learning, the paper's forgetting study: passages absorbed one after another, each edit merged.

    seal continual --data fictional --sequences 2 --sequence-length 8 --condition model --condition passage

For each condition and each sequence s (passages s*L ... s*L+L-1 of the data, L =
`continual.sequence_length`), starting from the base model:

  step t   the current model (every earlier step merged in) writes a self-edit for passage t
           (condition `model`; `passage`: no self-edit; `data`: the file's first stored one),
           a fresh adapter is trained on it on the configured engine (the inner loop's job:
           seed inner.seeds[0] + t, lr inner.lr * continual.lr_scale ** t, and with
           continual.replay the earlier steps' passages and self-edits too) and merged into
           the weights; then passages 0 ... t+1 are asked their questions with no passage in
           context: row t of the accuracy matrix. Column t+1 is the next passage before it is
           learned (the forward effect).

Each sequence keeps, in RUN_DIR/<condition>/sequence-s/: the base model's answers
(baselines.jsonl: the accuracy on each passage before any edit), steps.jsonl (one record per
step: the self-edit, training statistics, the row of accuracies and graded answers) and
step-t.safetensors (the step's adapter factors, written before its record). A resumed sequence
merges its saved adapters in order instead of training them again and goes on at the first
missing step: nothing is repeated, and the weights are the uninterrupted run's.

With `continual.merge: false` (`--stacked`) every step's adapter is kept unmerged instead: a
LoRA of its own added to the frozen weights' output (`Stack`), the base weights never written;
in float32 the two settings differ only by rounding, in bfloat16 merging rounds each edit into
the weights. Departures from the paper: one trial seed per step; `replay`, `lr_scale` and the
forward-effect column are additions. The paper's figure: Qwen2.5-7B, accuracy on the first
passage falls from 38 % to 19 % over 8 edits.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch
from pathlib import Path
from typing import Callable

from seal.progress import bar

from seal.config import RunConfig
from seal.domains.base import ContinualDomain, Trial
from seal.engines import make_engine
from seal.engines.base import Job, merge_adapter
from seal.errors import SealError
from seal.executors.base import answer_requests
from seal.models import LoadedModel, load_model
from seal.runs import RecordLog


def run_continual(config: RunConfig, run_dir: Path, items: list,
                  make_domain: Callable[[LoadedModel], ContinualDomain]) -> dict[str, list[dict]]:
    """Every condition's sequences; per condition, one {"base": [...], "rows": [[...], ...]} per sequence.

    `make_domain(loaded)` gives the domain's view (seal.domains.base.ContinualDomain) on a freshly
    loaded model.
    """
    cc = config.continual
    if len(items) < cc.sequences * cc.sequence_length:
        raise SealError(f"{cc.sequences} sequences of {cc.sequence_length} passages need "
                        f"{cc.sequences * cc.sequence_length} passages; the data gives {len(items)}")
    out: dict[str, list[dict]] = {}
    for condition in config.conditions:
        out[condition] = []
        for s in range(cc.sequences):
            sequence = items[s * cc.sequence_length:(s + 1) * cc.sequence_length]
            out[condition].append(run_sequence(config, condition, s, sequence, run_dir / condition / f"sequence-{s}",
                                               make_domain))
    return out


def run_sequence(config: RunConfig, condition: str, s: int, items: list, seq_dir: Path,
                 make_domain: Callable[[LoadedModel], ContinualDomain]) -> dict:
    """One sequence from the base model; resumable per step."""
    seq_dir.mkdir(parents=True, exist_ok=True)
    inner = replace(config.inner, adapters_per_pass=1)
    loaded = load_model(config.model)
    domain = make_domain(loaded)
    base = evaluate(loaded, domain, [Trial(condition, item, j, 0, 0) for j, item in enumerate(items)], inner,
                    RecordLog(seq_dir / "baselines.jsonl"))
    log = RecordLog(seq_dir / "steps.jsonl")
    done = {r["step"]: r for r in log}
    stack = None if config.continual.merge else Stack(loaded.model, inner.alpha / inner.rank)

    def apply(state: dict) -> None:
        if stack is None:
            merge_adapter(loaded.model, state, inner.alpha / inner.rank)
        else:
            stack.add(state)

    learned: list[Trial] = []
    for t in bar(range(len(items)), desc=f"{condition} sequence {s}", unit="step"):
        if t in done:  # merge the saved adapter instead of training it again
            if done[t]["status"] == "ok":
                apply(load_state(seq_dir / f"step-{t}.safetensors"))
            learned.append(Trial(condition, items[t], t, 0, inner.seeds[0] + t, done[t]["self_edit"],
                                 config.sampling.prompt))
            continue
        self_edit = domain.write_self_edit(condition, items[t], loaded, config.sampling.seed * 1_000_003 + 1_000 * s + t)
        trial = Trial(condition, items[t], t, 0, inner.seeds[0] + t, self_edit, config.sampling.prompt)
        prepared = domain.prepare(trial)
        record = {"step": t, "item_id": items[t].id, "self_edit": self_edit, "status": prepared.record.get("status"),
                  "train": None}
        if prepared.job is not None:
            parts = [prepared.job]
            if config.continual.replay:  # the earlier steps' training data again
                parts += [j for j in (domain.prepare(e).job for e in learned) if j is not None]
            token_ids = [ids for p in parts for ids in p.token_ids]
            labels = None if all(p.labels is None for p in parts) else \
                [lab for p in parts for lab in (p.labels or p.token_ids)]
            lr = (prepared.job.lr or inner.lr) * config.continual.lr_scale ** t
            job = Job(token_ids, trial.seed, lr=lr, epochs=prepared.job.epochs, labels=labels)
            engine = make_engine(loaded, inner)
            [stats] = engine.train([job])
            state = engine.adapter_state(0)
            engine.unload()
            save_state(state, seq_dir / f"step-{t}.safetensors")
            apply(state)
            record["train"] = {"sequences": len(token_ids), "steps": stats.steps, "tokens": stats.tokens,
                               "epoch_losses": stats.epoch_losses, "lr": job.lr}
        asked = [Trial(condition, item, j, 0, 0) for j, item in enumerate(items[:t + 2])]
        scored = answer_and_score(loaded, domain, asked, inner)
        record["accuracies"] = [x["accuracy"] for x in scored]
        record["answers"] = [x.get("answers", x.get("attempts")) for x in scored]
        log.append(record)
        done[t] = record
        learned.append(trial)
    return {"base": base, "rows": [done[t]["accuracies"] for t in range(len(items))]}


def evaluate(loaded: LoadedModel, domain: ContinualDomain, trials: list[Trial], inner, log: RecordLog) -> list[float]:
    """The base model's accuracy on each input before any edit, computed once and kept in `log`."""
    done = {r["item_id"]: r for r in log}
    if any(t.item.id not in done for t in trials):
        for t, scored in zip(trials, answer_and_score(loaded, domain, trials, inner)):
            if t.item.id not in done:
                done[t.item.id] = {"item_id": t.item.id, **scored}
                log.append(done[t.item.id])
    return [done[t.item.id]["accuracy"] for t in trials]


def answer_and_score(loaded: LoadedModel, domain: ContinualDomain, trials: list[Trial], inner) -> list[dict]:
    """Every trial's requests answered by the current (merged or stacked) model in shared batches, then scored."""
    engine = make_engine(loaded, inner)  # its adapters stay off: rows answer with the model as it is
    try:
        answers = answer_requests(engine, [domain.requests(t) for t in trials], [None] * len(trials))
    finally:
        engine.unload()
    return [domain.score(t, a) for t, a in zip(trials, answers)]


class Stack:
    """Earlier steps' adapters kept unmerged: a forward hook on each adapted Linear adds
    scaling * B_cat A_cat x, the factors of every step so far concatenated along the rank (one LoRA
    of rank r x steps). The base weights are never written; an engine installed on top trains the
    next step's adapter on the stacked model (its wrappers call the hooked Linear)."""

    def __init__(self, model, scaling: float):
        self.model, self.scaling, self.factors, self.hooks = model, scaling, {}, []

    def add(self, state: dict) -> None:
        for name in [n for n in state if n.endswith(".lora_A.weight")]:
            module_name = name.removesuffix(".lora_A.weight")
            a, b = state[name], state[name.replace(".lora_A.", ".lora_B.")]
            if module_name in self.factors:
                old_a, old_b = self.factors[module_name]
                a, b = torch.cat([old_a, a], 0), torch.cat([old_b, b], 1)
            else:
                module = self.model.get_submodule(module_name)
                self.hooks.append(module.register_forward_hook(self._hook(module_name)))
            device = self.model.get_submodule(module_name).weight.device
            self.factors[module_name] = (a.to(device, torch.float32), b.to(device, torch.float32))

    def state(self) -> dict:
        """Every step's adapter as one LoRA state of rank r x steps, keyed like Engine.adapter_state."""
        return {f"{m}.lora_{side}.weight": f for m, (a, b) in self.factors.items() for side, f in (("A", a), ("B", b))}

    def remove(self) -> None:
        """Take the hooks off: the model is the base model again."""
        for hook in self.hooks:
            hook.remove()
        self.hooks.clear()

    def _hook(self, module_name: str):
        def add_stack(module, inputs, output):
            a, b = self.factors[module_name]
            return output + (self.scaling * (inputs[0].to(a.dtype) @ a.T) @ b.T).to(output.dtype)
        return add_stack


def save_state(state: dict, path: Path) -> None:
    """The step's adapter factors, written atomically (a kill leaves the old file or none)."""
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    save_file({k: v.contiguous().cpu() for k, v in state.items()}, str(tmp))
    os.replace(tmp, path)


def load_state(path: Path) -> dict:
    from safetensors.torch import load_file

    if not path.is_file():
        raise SealError(f"{path} is missing: the step's record exists but its adapter does not (files removed by hand?)")
    return load_file(str(path))

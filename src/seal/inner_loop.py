"""The SEAL inner loop for knowledge incorporation: one trial = one passage, one self-edit, one seed.

    adapter = attach_lora(loaded.model, cfg)          # once per process
    result  = run_trial(loaded, adapter, passage, self_edit, seed, cfg, grader)

A trial (1) resets the LoRA adapter to a fresh initialisation drawn from the trial's
seed (A ~ kaiming-uniform as in peft, B = 0, so the adapted model starts exactly at the
base model); (2) fine-tunes it on the self-edit's training sequences (title-prefixed
pieces plus the passage; seal.knowledge.prompts), AdamW with a linear decay, loss on
real tokens only; (3) answers every question of the passage greedily with no passage
in context; (4) grades the answers. The base weights are frozen and never written, so
nothing accumulates between trials; the baseline (adapter switched off) is computed
once per passage by `baseline_answers`.

Departures from the paper: the paper's code builds a new peft model per trial and pads
every sequence to the longest; here the adapter is attached once and re-initialised in
place (milliseconds), and batches are padded only to their own longest sequence, with
padding masked out of the loss. A non-finite loss stops the trial (and the run) with
`NonFiniteLoss`; the adapter is reset either way.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from seal.config import InnerLoopConfig
from seal.errors import SealError
from seal.generation import greedy_answers
from seal.knowledge.grading import Grader
from seal.knowledge.passages import Passage
from seal.knowledge.prompts import question_prompt, training_sequences
from seal.models import LoadedModel


class NonFiniteLoss(SealError):
    """The training loss became NaN or infinite (usually a learning rate far too high)."""


@dataclass
class TrainStats:
    steps: int
    tokens: int
    seconds: float
    epoch_losses: list[float] = field(default_factory=list)


def check_target_modules(model: torch.nn.Module, cfg: InnerLoopConfig) -> None:
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in cfg.target_modules if m not in present]
    if missing:
        raise SealError(f"target modules {missing} are not in this model (it has e.g. "
                        f"{sorted(n for n in present if 'proj' in n or 'fc' in n)[:8]})")


def attach_adapters(model: torch.nn.Module, cfg: InnerLoopConfig):
    """The inner loop's adapters on `model`: a `MultiLoRA` (engine batched) or one peft adapter (single)."""
    if cfg.engine == "batched":
        from seal.multi_lora import MultiLoRA

        check_target_modules(model, cfg)
        return MultiLoRA(model, cfg)
    return attach_lora(model, cfg)


def attach_lora(model: torch.nn.Module, cfg: InnerLoopConfig):
    """Wrap `model` in a peft LoRA model once; trials reset it in place."""
    from peft import LoraConfig, get_peft_model

    check_target_modules(model, cfg)
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    peft_model.eval()
    return peft_model


def lora_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if "lora_" in n]


@torch.no_grad()
def reset_adapter(model: torch.nn.Module, seed: int) -> None:
    """A fresh LoRA initialisation drawn from `seed`: A kaiming-uniform (peft's default), B zero."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in lora_parameters(model):
        if "lora_B" in name:
            param.zero_()
        elif "lora_A" in name:
            # kaiming_uniform_(a=sqrt(5)) bound for a weight of shape (r, fan_in), drawn on the CPU for
            # device-independent values.
            bound = 1.0 / math.sqrt(param.shape[1])
            values = torch.empty(param.shape, dtype=torch.float32).uniform_(-bound, bound, generator=generator)
            param.copy_(values.to(param.device, param.dtype))


def tokenize_sequences(tokenizer, sequences: list[str], max_len: int) -> list[list[int]]:
    """Token ids of each training sequence, ending with EOS, cut to `max_len`."""
    out = []
    for text in sequences:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_len - 1]
        out.append(ids + [tokenizer.eos_token_id])
    return out


def train_adapter(loaded: LoadedModel, model: torch.nn.Module, token_ids: list[list[int]],
                  cfg: InnerLoopConfig, seed: int, lr: float | None = None, epochs: int | None = None,
                  labels: list[list[int]] | None = None, desc: str | None = None) -> TrainStats:
    """Fine-tune the (already reset) adapter on `token_ids`; only LoRA tensors receive gradients.

    `labels` (same shapes, -100 where no loss is taken) restricts the loss, e.g. to an ARC
    output grid or a self-edit after its prompt; by default every real token is a target.
    Only `cfg.lr`, `cfg.epochs`, `cfg.batch_size` and `cfg.max_grad_norm` are read. `desc` shows a progress bar.
    """
    lr = cfg.lr if lr is None else lr
    epochs = cfg.epochs if epochs is None else epochs
    params = [p for _, p in lora_parameters(model)]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    order_rng = random.Random(seed)
    steps_per_epoch = math.ceil(len(token_ids) / cfg.batch_size)
    total = steps_per_epoch * epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 - step / total)
    pad = loaded.tokenizer.pad_token_id
    stats = TrainStats(steps=0, tokens=0, seconds=0.0)
    progress = tqdm(total=total, desc=desc, unit="step", leave=False, disable=desc is None)
    start = time.perf_counter()
    model.train()
    try:
        for _ in range(epochs):
            order = list(range(len(token_ids)))
            order_rng.shuffle(order)
            loss_sum, loss_tokens = 0.0, 0
            for b in range(0, len(order), cfg.batch_size):
                rows = order[b:b + cfg.batch_size]
                batch = [token_ids[i] for i in rows]
                width = max(len(s) for s in batch)
                input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in batch], device=loaded.device)
                mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in batch], device=loaded.device)
                if labels is None:
                    targets = input_ids.masked_fill(mask == 0, -100)
                else:
                    targets = torch.tensor([labels[i] + [-100] * (width - len(labels[i])) for i in rows],
                                           device=loaded.device)
                loss = model(input_ids=input_ids, attention_mask=mask, labels=targets).loss
                if not torch.isfinite(loss):
                    raise NonFiniteLoss(f"training loss became {loss.item()} at step {stats.steps + 1} "
                                        f"(lr={lr}); lower the learning rate")
                loss.backward()
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                n_targets = int((targets[:, 1:] != -100).sum())
                loss_sum += loss.item() * n_targets
                loss_tokens += n_targets
                stats.steps += 1
                stats.tokens += int(mask.sum())
                progress.update(1)
            stats.epoch_losses.append(loss_sum / max(loss_tokens, 1))
    finally:
        progress.close()
        model.eval()
        stats.seconds = time.perf_counter() - start
    return stats


def answer_questions(loaded: LoadedModel, passages: list[Passage], cfg: InnerLoopConfig) -> list[list[str]]:
    """Greedy no-context answers to every question of `passages`, in one batched decode, per passage."""
    prompts = [question_prompt(q.question, p.title, cfg.question_prompt) for p in passages for q in p.questions]
    flat = greedy_answers(loaded, prompts, max_new_tokens=cfg.answer_max_new_tokens, batch_size=cfg.answer_batch_size)
    out, i = [], 0
    for p in passages:
        out.append(flat[i:i + len(p.questions)])
        i += len(p.questions)
    return out


def grade_answers(passage: Passage, answers: list[str], grader: Grader) -> list[dict]:
    scores = grader([q.question for q in passage.questions], [q.answer for q in passage.questions], answers)
    return [{"question": q.question, "gold": q.answer, "answer": a, "score": s}
            for q, a, s in zip(passage.questions, answers, scores)]


def baseline_answers(loaded: LoadedModel, model: torch.nn.Module, passage: Passage, cfg: InnerLoopConfig,
                     grader: Grader) -> list[dict]:
    """The un-adapted model's graded answers (the adapter switched off)."""
    with model.disable_adapter():
        return grade_answers(passage, answer_questions(loaded, [passage], cfg)[0], grader)


def run_trial(loaded: LoadedModel, model: torch.nn.Module, passage: Passage, self_edit: str | None,
              seed: int, cfg: InnerLoopConfig, grader: Grader, family: str = "implications") -> dict:
    """One inner-loop trial; returns its record (self-edit, losses, graded answers, accuracy, timings).

    `self_edit=None` trains on the passage alone. A self-edit that yields no training
    sequence (empty or unparsable) is not trained on and scores 0, so that a generator is
    never rewarded for writing nothing.
    """
    sequences = training_sequences(passage, self_edit, family, cfg.include_passage)
    if self_edit is not None and len(sequences) == int(cfg.include_passage):
        return empty_trial_record(seed, self_edit, len(sequences))
    stats, [graded], eval_s = adapt_and_answer(loaded, model, sequences, [passage], seed, cfg, grader)
    return trial_record(seed, self_edit, len(sequences), stats, graded, eval_s)


def run_trials_batched(loaded: LoadedModel, multi, trials: list[tuple[Passage, str | None, int, str]],
                       cfg: InnerLoopConfig, grader: Grader, desc: str | None = "trials"):
    """The records of many trials (passage, self-edit, seed, family), trained and answered together.

    `multi` is a `seal.multi_lora.MultiLoRA`. Trials of similar step counts share a group of
    `multi.slots` adapters, trained in shared passes; then every question of the group is
    answered in one routed batched decode. Yields (trial index, record) per finished trial, a
    group at a time, so a caller can save them as they come. Results equal `run_trial`'s.
    """
    from seal.multi_lora import AdapterJob

    ready = []
    for t, (passage, self_edit, seed, family) in enumerate(trials):
        sequences = training_sequences(passage, self_edit, family, cfg.include_passage)
        if self_edit is not None and len(sequences) == int(cfg.include_passage):
            yield t, empty_trial_record(seed, self_edit, len(sequences))
        else:
            ready.append((t, len(sequences), tokenize_sequences(loaded.tokenizer, sequences, cfg.max_seq_len)))
    ready.sort(key=lambda r: (len(r[2]), sum(map(len, r[2]))))  # alike step counts: passes stay full
    progress = tqdm(total=len(ready), desc=desc, unit="trial", disable=desc is None)
    try:
        for g in range(0, len(ready), multi.slots):
            group = ready[g:g + multi.slots]
            stats = multi.train([AdapterJob(ids, seed=trials[t][2]) for t, _, ids in group],
                                pad_id=loaded.tokenizer.pad_token_id,
                                desc=f"train {len(group)} adapters" if desc is not None else None)
            start = time.perf_counter()
            prompts, slots = [], []
            for slot, (t, _, _) in enumerate(group):
                prompts += [question_prompt(q.question, trials[t][0].title, cfg.question_prompt) for q in trials[t][0].questions]
                slots += [slot] * len(trials[t][0].questions)
            flat = multi.greedy_answers(loaded, prompts, slots, max_new_tokens=cfg.answer_max_new_tokens,
                                        batch_size=cfg.answer_batch_size)
            eval_s = (time.perf_counter() - start) / len(group)
            i = 0
            for (t, n_sequences, _), st in zip(group, stats):
                passage, self_edit, seed, _ = trials[t]
                graded = grade_answers(passage, flat[i:i + len(passage.questions)], grader)
                i += len(passage.questions)
                yield t, trial_record(seed, self_edit, n_sequences, st, graded, eval_s)
            progress.update(len(group))
    finally:
        progress.close()


def empty_trial_record(seed: int, self_edit: str | None, n_sequences: int) -> dict:
    """The record of a self-edit that gave no training sequence: not trained on, scored 0."""
    return {"seed": seed, "self_edit": self_edit, "n_sequences": n_sequences, "status": "empty_self_edit",
            "accuracy": 0.0, "answers": [], "train": None, "timings": {"train_s": 0.0, "eval_s": 0.0}}


def trial_record(seed: int, self_edit: str | None, n_sequences: int, stats: TrainStats, graded: list[dict],
                 eval_s: float) -> dict:
    return {
        "seed": seed, "self_edit": self_edit, "n_sequences": n_sequences, "status": "ok",
        "accuracy": sum(g["score"] for g in graded) / len(graded),
        "answers": graded,
        "train": {"steps": stats.steps, "tokens": stats.tokens, "epoch_losses": stats.epoch_losses},
        "timings": {"train_s": round(stats.seconds, 3), "eval_s": round(eval_s, 3)},
    }


def adapt_and_answer(loaded: LoadedModel, model: torch.nn.Module, sequences: list[str], passages: list[Passage],
                     seed: int, cfg: InnerLoopConfig, grader: Grader) -> tuple[TrainStats, list[list[dict]], float]:
    """Train a fresh adapter (from `seed`) on `sequences`, answer every question of `passages`, reset.

    Returns the training statistics, the graded answers per passage and the evaluation time.
    """
    torch.manual_seed(seed)
    reset_adapter(model, seed)
    token_ids = tokenize_sequences(loaded.tokenizer, sequences, cfg.max_seq_len)
    try:
        stats = train_adapter(loaded, model, token_ids, cfg, seed)
        start = time.perf_counter()
        graded = [grade_answers(p, a, grader) for p, a in zip(passages, answer_questions(loaded, passages, cfg))]
        eval_s = time.perf_counter() - start
    finally:
        reset_adapter(model, seed)  # leave the model exactly at the base model between trials
    return stats, graded, eval_s

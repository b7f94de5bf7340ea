"""The single-adapter engine: one peft LoRA adapter, attached once, one job at a time (`--engine single`).

    engine = PeftEngine(loaded, cfg)      # get_peft_model once; trials re-initialise the adapter in place
    [stats] = engine.train([Job(token_ids, seed=0)])
    answers = engine.answer(prompts, adapters=[0] * len(prompts), max_new_tokens=32)

A job (1) re-initialises the adapter from its seed (`seal.engines.schedule`), (2) trains it
with AdamW on the schedule's data order and linear decay, loss on target tokens only, and
(3) keeps it until the next job or `reset`. Only LoRA tensors receive gradients; the base
weights are frozen and never written. This is the reference the batched engine is tested
against, and the engine of the generator SFT's merge (`merge_and_unload`).

Departure from the paper's code: it builds a new peft model per trial and pads every
sequence to the longest; here the adapter is attached once and re-initialised in place
(milliseconds), and batches are padded only to their own longest sequence, with padding
masked out of the loss. With `inner.dropout` > 0 the dropout masks come from torch's global
RNG seeded by the job's seed (peft's own dropout), so they differ from the batched engine's
per-job masks: the two engines agree exactly only at dropout 0, the paper's setting.
"""

from __future__ import annotations

import contextlib
import time

import torch
from torch import nn
from seal.progress import bar

from seal.config import InnerLoopConfig
from seal.engines.base import Job, TrainStats, answer_with_backend, group_by_budget
from seal.engines.schedule import (BETAS, EPS, check_finite, check_target_modules, clip_factors, init_generator,
                                   job_plan, lora_a_init, pad_batch, step_lr, target_losses)
from seal.errors import SealError
from seal.generation import greedy_answers
from seal.models import LoadedModel


class PeftEngine:
    """One peft LoRA adapter on `loaded.model` (see the module docstring)."""

    slots = 1

    def __init__(self, loaded: LoadedModel, cfg: InnerLoopConfig):
        from peft import LoraConfig, get_peft_model

        check_target_modules(loaded.model, cfg.target_modules)
        self.loaded, self.cfg = loaded, cfg
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
        self.peft_model = get_peft_model(loaded.model, lora)
        self.peft_model.eval()
        self.model = loaded.model  # the same module, now holding peft's LoRA layers
        self.params = [(n, p) for n, p in self.model.named_parameters() if "lora_" in n]

    @torch.no_grad()
    def init_adapter(self, seed: int) -> None:
        """A fresh adapter from `seed`: A from the schedule's generator, module by module; B zero."""
        generator = init_generator(seed)
        for name, param in self.params:
            if "lora_B" in name:
                param.zero_()
            elif "lora_A" in name:
                param.copy_(lora_a_init(generator, tuple(param.shape)).to(param.device, param.dtype))

    def reset(self) -> None:
        self.init_adapter(0)

    def adapter_state(self, slot: int = 0) -> dict[str, torch.Tensor]:
        """The adapter's factors, named `...q_proj.lora_A.weight` (as the batched engine names a slot's)."""
        return {n.replace(".default", ""): p.detach().clone() for n, p in self.params}

    def disable_adapter(self):
        """The base model alone, for any forward or generate inside."""
        return self.peft_model.disable_adapter()

    def train(self, jobs: list[Job], desc: str | None = None) -> list[TrainStats]:
        if len(jobs) > self.slots:
            raise SealError(f"{len(jobs)} jobs for {self.slots} adapter slot (the single engine trains one at a time)")
        return [self._train_one(job, desc) for job in jobs]

    def _train_one(self, job: Job, desc: str | None) -> TrainStats:
        cfg = self.cfg
        torch.manual_seed(job.seed)  # peft's dropout draws from the global RNG
        self.init_adapter(job.seed)
        lr = cfg.lr if job.lr is None else job.lr
        plan = job_plan(job, cfg.batch_size, cfg.epochs)
        params = [p for _, p in self.params]
        optimizer = torch.optim.AdamW(params, lr=lr, betas=BETAS, eps=EPS, weight_decay=0.0)
        pad = self.loaded.tokenizer.pad_token_id
        stats = TrainStats(steps=0, tokens=0, seconds=0.0)
        loss_sum, loss_tokens = 0.0, 0
        progress = bar(total=len(plan), desc=desc, unit="step", leave=False, disable=desc is None)
        start = time.perf_counter()
        self.model.train()
        try:
            for step, (epoch, rows) in enumerate(plan):
                for group in optimizer.param_groups:
                    group["lr"] = step_lr(lr, step, len(plan))
                targets = None if job.labels is None else [job.labels[i] for i in rows]
                input_ids, mask, labels = pad_batch([job.token_ids[i] for i in rows], targets, pad, self.loaded.device)
                losses, _ = target_losses(self.model, input_ids, mask, labels)
                loss = losses.sum() / max(losses.numel(), 1)
                value = loss.item()
                check_finite(value, f"at step {step + 1}", lr)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    grads = [p.grad for p in params if p.grad is not None]
                    scale = clip_factors(sum(g.pow(2).sum() for g in grads).reshape(1), cfg.max_grad_norm)[0]
                    for g in grads:
                        g.mul_(scale.to(g.dtype))
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                loss_sum += value * losses.numel()
                loss_tokens += losses.numel()
                stats.steps += 1
                stats.tokens += int(mask.sum())
                progress.update(1)
                if step + 1 == len(plan) or plan[step + 1][0] != epoch:
                    stats.epoch_losses.append(loss_sum / max(loss_tokens, 1))
                    loss_sum, loss_tokens = 0.0, 0
        except BaseException:
            self.reset()  # a failed job leaves the base model, not a half-trained adapter
            raise
        finally:
            progress.close()
            self.model.eval()
            stats.seconds = time.perf_counter() - start
        return stats

    def answer(self, prompts: list[str], adapters: list[int | None], *, max_new_tokens: int | list[int],
               batch_size: int = 16, chat: bool = True, stop: list[str] | None = None) -> list[str]:
        if len(adapters) != len(prompts):
            raise SealError(f"{len(adapters)} adapters for {len(prompts)} prompts")
        if any(a not in (None, 0) for a in adapters):
            raise SealError("the single engine holds one adapter (slot 0)")
        if self.loaded.backend is not None and self.loaded.backend.answers_with_adapters:  # e.g. vLLM: the adapter as a LoRARequest (seal.backends)
            return answer_with_backend(self, prompts, adapters, max_new_tokens=max_new_tokens, chat=chat, stop=stop)
        out: list[str] = [""] * len(prompts)
        for budget, indices in group_by_budget(max_new_tokens, len(prompts)).items():
            for adapter in (None, 0):
                rows = [i for i in indices if adapters[i] == adapter]
                if not rows:
                    continue
                with self.disable_adapter() if adapter is None else contextlib.nullcontext():
                    texts = greedy_answers(self.loaded, [prompts[i] for i in rows], max_new_tokens=budget,
                                           batch_size=batch_size, chat=chat, stop=stop, local=True)
                for i, text in zip(rows, texts):
                    out[i] = text
        return out

    def merge_and_unload(self, slot: int = 0) -> nn.Module:
        self.loaded.model = self.peft_model.merge_and_unload()
        self.loaded.model.eval()
        return self.loaded.model

    def unload(self) -> nn.Module:
        self.loaded.model = self.peft_model.unload()
        return self.loaded.model

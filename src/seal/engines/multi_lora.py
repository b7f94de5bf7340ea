"""The batched engine (the default, `--engine batched`): many LoRA adapters on one frozen base model,
every row of a batch trained and decoded with its own adapter.

    engine = MultiLoRAEngine(loaded, cfg, slots=16)      # replaces the target Linear layers in place
    stats = engine.train([Job(token_ids, seed=0), ...])  # job i -> slot i
    answers = engine.answer(prompts, adapters=[0, 0, 1, None], max_new_tokens=32)   # routed decode
    with engine.route([0, 0, 1, 3]):                     # row -> adapter slot, for any forward or generate()
        out = loaded.model.generate(...)
    base = engine.unload()                               # the original modules back, weights untouched

Each target `nn.Linear` becomes a `MultiLoRALinear` that holds the frozen base layer and the
stacked LoRA factors of every slot, A: [slots + 1, r, in] and B: [slots + 1, out, r]. A forward
gathers each row's factors and adds `scaling * x A_row^T B_row^T` with two batched matmuls, so
the base model's forward and backward are shared by all rows while every adapter gets only
its own rows' gradients (`seal.engines.multi_lora_layer`; with `fuse=True` projections that read
one input, q/k/v and gate/up, compute their A products in one matmul). The last slot stays at B = 0: rows
routed there are the base model.

`MultiLoRAEngine.train` runs independent fine-tunes, one per job: its own seed (initialisation
and data order), learning rate, epochs and loss mask, on the job schedule the single engine
follows too (`seal.engines.schedule`; `tests/test_engines.py` checks the weights agree). Each
pass takes the next micro-batch of as many jobs as fit in `pass_tokens` padded tokens (the
memory cap; on a GPU raised to what free memory holds, measured once by a probe pass), jobs sorted
by length so rows of a pass are alike, and logits are computed only where a loss is taken. A step
of several rows (batch size > 1, e.g. CPT's 8) is cut into micro-batches of alike length whose
gradients add up to the step's before its AdamW update (`micro_batches`), so a passage row does
not pad its step's self-edit lines to its length. With `inner.dropout` > 0 each job's dropout masks are drawn from its own
generator (seeded by the job's seed) at its own rows and length, so a job's adapter does not
depend on which jobs share its passes; they are not the masks peft draws, so the two engines
agree exactly only at dropout 0 (the paper's setting).
"""

from __future__ import annotations

import contextlib
import time

import torch
from torch import nn
from torch.optim.adamw import adamw
from seal.progress import bar

from seal.config import InnerLoopConfig
from seal.engines.compiled import CompiledBlocks
from seal.engines.base import Job, TrainStats, answer_with_backend, group_by_budget, merge_adapter
from seal.engines.schedule import (BETAS, EPS, check_finite, check_target_modules, clip_factors, init_generator,
                                   job_plan, lora_a_init, micro_batches, next_pass, pad_batch, step_lr,
                                   target_losses)
from seal.engines.multi_lora_layer import IDENTITY, MultiLoRALinear, Router, share_inputs
from seal.errors import SealError
from seal.models import LoadedModel

FUSED = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 4)
"""torch's fused AdamW kernel runs on the CPU from 2.4 on (and on CUDA); older versions use foreach."""


class MultiLoRAEngine:
    """`slots` LoRA adapters installed on `loaded.model` (see the module docstring)."""

    def __init__(self, loaded: LoadedModel, cfg: InnerLoopConfig, slots: int | None = None, fuse: bool = False):
        model = loaded.model
        check_target_modules(model, cfg.target_modules)
        self.compiled = CompiledBlocks(model) if cfg.compile else None
        """inner.compile: the model's blocks compiled for training passes (seal.engines.compiled)."""
        self.loaded, self.model, self.cfg = loaded, model, cfg
        self.slots = slots or cfg.adapters_per_pass
        self.base_slot = self.slots  # the extra slot kept at B = 0
        self.router = Router()
        self.layers: list[tuple[nn.Module, str, MultiLoRALinear]] = []
        for name, module in list(model.named_modules()):
            if name.rsplit(".", 1)[-1] not in cfg.target_modules:
                continue
            if not isinstance(module, nn.Linear):
                raise SealError(f"{name} is a {type(module).__name__}, not a Linear layer; detach other "
                                f"adapters (e.g. peft's) before installing MultiLoRA")
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            wrapped = MultiLoRALinear(module, self.slots + 1, cfg.rank, cfg.alpha, cfg.dropout, self.router)
            setattr(parent, name.rsplit(".", 1)[-1], wrapped)
            self.layers.append((parent, name.rsplit(".", 1)[-1], wrapped))
        if not self.layers:
            raise SealError(f"none of the target modules {list(cfg.target_modules)} is in this model")
        self.shared_groups = share_inputs(self.layers) if fuse else 0
        for p in model.parameters():  # the slots too: they train through per-pass leaf copies (`active`)
            p.requires_grad_(False)
        self.params = [p for _, _, layer in self.layers for p in (layer.lora_A, layer.lora_B)]
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.device = self.params[0].device
        self.steps = [[torch.zeros((), dtype=torch.float32, device=self.device) for _ in self.params]
                      for _ in range(self.slots + 1)]
        self.fitted_pass_tokens: int | None = None
        """On a GPU: the pass size fitted to free memory at the first `train` (inner.pass_tokens_from_memory)."""
        self.grad_sums: dict[int, list[torch.Tensor | None]] = {}  # slot -> its step's gradient so far (micro-batches)
        model.eval()

    # --- adapters -------------------------------------------------------------------------------

    @torch.no_grad()
    def init_slot(self, slot: int, seed: int) -> None:
        """Slot `slot` gets the initialisation the single engine gives a job with this seed."""
        generator = init_generator(seed)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            m[slot].zero_()
            v[slot].zero_()
        for _, _, layer in self.layers:
            layer.lora_A[slot].copy_(lora_a_init(generator, tuple(layer.lora_A.shape[1:])))
            layer.lora_B[slot].zero_()
        for step in self.steps[slot]:
            step.zero_()

    @torch.no_grad()
    def reset(self) -> None:
        for _, _, layer in self.layers:
            layer.lora_B.zero_()

    def adapter_state(self, slot: int) -> dict[str, torch.Tensor]:
        """Slot `slot`'s factors, named as peft names a single adapter's (`...q_proj.lora_A.weight`)."""
        names = {id(layer): name for name, layer in self.model.named_modules() if isinstance(layer, MultiLoRALinear)}
        out = {}
        for _, _, layer in self.layers:
            out[f"{names[id(layer)]}.lora_A.weight"] = layer.lora_A[slot].detach().clone()
            out[f"{names[id(layer)]}.lora_B.weight"] = layer.lora_B[slot].detach().clone()
        return out

    @contextlib.contextmanager
    def route(self, slots: list[int | None] | None):
        """Rows of the forward passes inside go to these slots (a slot None: the base model).

        `slots=None` while training: row i uses the pass's i-th adapter as it is (no gather).
        """
        previous = self.router.rows
        self.router.rows = IDENTITY if slots is None else torch.tensor(
            [self.base_slot if s is None else s for s in slots], device=self.device)
        try:
            yield
        finally:
            self.router.rows = previous

    @contextlib.contextmanager
    def disable_adapter(self):
        """The base model alone (as peft's context manager of the same name)."""
        previous, self.router.rows = self.router.rows, None
        try:
            yield
        finally:
            self.router.rows = previous

    def answer(self, prompts: list[str], adapters: list[int | None], *, max_new_tokens: int | list[int],
               batch_size: int = 16, chat: bool = True, stop: list[str] | None = None) -> list[str]:
        """One greedy completion per prompt, prompt i decoded with the adapter in `adapters[i]`, in shared batches."""
        from seal.generation import generate

        if len(adapters) != len(prompts):
            raise SealError(f"{len(adapters)} adapters for {len(prompts)} prompts")
        if self.loaded.backend is not None and self.loaded.backend.answers_with_adapters:  # e.g. vLLM: one LoRARequest per row (seal.backends)
            return answer_with_backend(self, prompts, adapters, max_new_tokens=max_new_tokens, chat=chat, stop=stop)
        out: list[str] = [""] * len(prompts)
        for budget, indices in group_by_budget(max_new_tokens, len(prompts)).items():
            def route(batch, indices=indices):
                self.router.rows = torch.tensor(
                    [self.base_slot if adapters[indices[i]] is None else adapters[indices[i]] for i in batch],
                    device=self.device)

            try:
                texts = generate(self.loaded, [prompts[i] for i in indices], max_new_tokens=budget,
                                 batch_size=batch_size, chat=chat, stop=stop, on_batch=route, local=True)
            finally:
                self.router.rows = None
            for i, text in zip(indices, texts):
                out[i] = text[0]
        return out

    def merge_and_unload(self, slot: int = 0) -> nn.Module:
        """Add slot `slot`'s adapter (scaling * B A) into each base weight, then unload."""
        state = self.adapter_state(slot)
        model = self.unload()
        merge_adapter(model, state, self.cfg.alpha / self.cfg.rank)
        return model

    def unload(self) -> nn.Module:
        """Put the original Linear layers back and return the base model."""
        for parent, attr, layer in self.layers:
            setattr(parent, attr, layer.base)
        self.layers = []
        self.loaded.model = self.model
        return self.model

    # --- training -------------------------------------------------------------------------------

    def train(self, jobs: list[Job], desc: str | None = None, pass_tokens: int | None = None) -> list[TrainStats]:
        """Fine-tune job i in slot i from a fresh initialisation; returns one TrainStats per job.

        The slots keep the trained adapters until the next `train` or `reset` (route rows to
        them to evaluate). Raises `NonFiniteLoss` naming the job (its slot) whose loss blew up.
        """
        if len(jobs) > self.slots:
            raise SealError(f"{len(jobs)} jobs for {self.slots} adapter slots")
        if pass_tokens is None and self.device.type == "cuda" and self.cfg.pass_tokens_from_memory:
            if self.fitted_pass_tokens is None:
                self.fitted_pass_tokens = self.fit_pass_tokens()
            pass_tokens = self.fitted_pass_tokens
        pass_tokens = pass_tokens or self.cfg.pass_tokens
        pad_id = self.loaded.tokenizer.pad_token_id
        cfg = self.cfg
        plans, micro, step_targets, totals, lrs = [], [], [], [], []
        self.dropout_generators = [init_generator(job.seed) for job in jobs]  # each job's own masks
        for j, job in enumerate(jobs):
            self.init_slot(j, job.seed)
            plans.append(job_plan(job, cfg.batch_size, cfg.epochs))
            lengths = [len(ids) for ids in job.token_ids]
            micro.append([micro_batches(rows, lengths, pass_tokens, cfg.max_padding) for _, rows in plans[-1]])
            step_targets.append([_targets(job, rows) for _, rows in plans[-1]])  # once, not per pass
            totals.append(len(plans[-1]))
            lrs.append(cfg.lr if job.lr is None else job.lr)
        stats = [TrainStats(steps=0, tokens=0, seconds=0.0) for _ in jobs]
        epoch_sums = [[0.0, 0] for _ in jobs]
        next_step, next_micro, step_sums = [0] * len(jobs), [0] * len(jobs), [[0.0, 0] for _ in jobs]  # step so far
        progress = bar(total=sum(totals), desc=desc, unit="step", leave=False, disable=desc is None)
        start = time.perf_counter()
        self.model.train()
        try:
            while True:
                pending = [j for j in range(len(jobs)) if next_step[j] < totals[j]]
                if not pending:
                    break
                unit = {j: micro[j][next_step[j]][next_micro[j]] for j in pending}
                width = {j: max(len(jobs[j].token_ids[i]) for i in unit[j]) for j in pending}
                group = next_pass(pending, width, {j: len(unit[j]) for j in pending},
                                  {j: totals[j] - next_step[j] for j in pending}, pass_tokens, cfg.max_padding)
                ends = [next_micro[j] == len(micro[j][next_step[j]]) - 1 for j in group]
                targets = [step_targets[j][next_step[j]] for j in group]
                losses = self._train_pass(jobs, group, [unit[j] for j in group], pad_id,
                                          [step_lr(lrs[j], next_step[j], totals[j]) for j in group], targets, ends)
                for j, end, n_targets, (loss, n_tokens) in zip(group, ends, targets, losses):
                    step_sums[j][0] += loss
                    step_sums[j][1] += n_tokens
                    if not end:
                        next_micro[j] += 1
                        continue
                    epoch = plans[j][next_step[j]][0]
                    epoch_sums[j][0] += step_sums[j][0] * n_targets
                    epoch_sums[j][1] += n_targets
                    stats[j].steps += 1
                    stats[j].tokens += step_sums[j][1]
                    step_sums[j], next_micro[j] = [0.0, 0], 0
                    next_step[j] += 1
                    if next_step[j] == totals[j] or plans[j][next_step[j]][0] != epoch:
                        stats[j].epoch_losses.append(epoch_sums[j][0] / max(epoch_sums[j][1], 1))
                        epoch_sums[j] = [0.0, 0]
                progress.update(sum(ends))
        except BaseException:
            self.reset()  # a failed pass leaves the base model, not half-trained adapters
            raise
        finally:
            self.grad_sums = {}
            progress.close()
            self.model.eval()
        seconds = time.perf_counter() - start
        all_tokens = sum(s.tokens for s in stats) or 1
        for s in stats:  # wall time shared out by trained tokens
            s.seconds = seconds * s.tokens / all_tokens
        return stats

    def activate(self, slots: torch.Tensor) -> None:
        """Gradients only for these slots' adapters: leaf copies of them (`layer.active`), rows of the
        next passes in their order; a training pass writes them back after its step."""
        for _, _, layer in self.layers:
            layer.active = (layer.lora_A.detach().index_select(0, slots).requires_grad_(),
                            layer.lora_B.detach().index_select(0, slots).requires_grad_())

    def fit_pass_tokens(self, memory=None, share: float = 0.7, probe_rows: int = 2, probe_len: int = 256) -> int:
        """The padded tokens a training pass may hold on this GPU: `share` of its free memory over the
        bytes one token of a pass costs, measured by a probe pass (forward and backward on random
        tokens through two leaf copies of slots; no optimiser step, so no adapter changes). Never
        below `inner.pass_tokens`. `memory`: (start, peak, free) byte readers (default torch.cuda's)."""
        if memory is None:
            memory = (lambda: (torch.cuda.reset_peak_memory_stats(), torch.cuda.memory_allocated())[1],
                      torch.cuda.max_memory_allocated, lambda: torch.cuda.mem_get_info()[0])
        start, peak, free = memory
        length = min(probe_len, self.cfg.max_seq_len)
        vocab = self.model.get_input_embeddings().weight.shape[0]
        ids = torch.randint(0, vocab, (probe_rows, length), device=self.device)
        slots = torch.arange(probe_rows, device=self.device) % self.slots
        before = start()
        self.activate(slots)
        try:
            self.model.train()
            with self.route(None):
                losses, _ = target_losses(self.model, ids, torch.ones_like(ids), ids)
            losses.sum().backward()
            per_token = max(peak() - before, 1) / (probe_rows * length)
        finally:
            self.model.eval()
            for _, _, layer in self.layers:
                layer.active = None
        return max(self.cfg.pass_tokens, int(share * free() / per_token))

    def _train_pass(self, jobs, group, rows_per_job, pad_id, lrs, step_targets, ends) -> list[tuple[float, int]]:
        """One forward/backward over the rows of `group` (a micro-batch of each job's step); (loss, tokens) per job.

        A job's loss here is its rows' summed token losses over `step_targets`, its whole step's target count,
        so that the micro-batches of a step add up to the step's mean loss. A job whose step `ends` with this
        micro-batch takes its AdamW step on the step's whole gradient; the others keep theirs summed.
        """
        sequences, targets, owners, segments = [], [], [], []
        for g, (j, rows) in enumerate(zip(group, rows_per_job)):
            for i in rows:
                sequences.append(jobs[j].token_ids[i])
                targets.append(jobs[j].labels[i] if jobs[j].labels is not None else jobs[j].token_ids[i])
                owners.append(g)
            segments.append((self.dropout_generators[j], len(rows), max(len(jobs[j].token_ids[i]) for i in rows)))
        device = self.device
        input_ids, mask, labels = pad_batch(sequences, targets, pad_id, device)
        owner = torch.tensor(owners, device=device)
        slots = torch.tensor(group, device=device)
        self.activate(slots)
        try:
            # row -> position of its job in the pass; one row per job (batch size 1) needs no gather
            self.router.dropout_segments = segments if self.cfg.dropout > 0 else None
            with self.route(None if owners == list(range(len(group))) else owners), \
                    (self.compiled.active() if self.compiled else contextlib.nullcontext()):
                token_losses, row_of_token = target_losses(self.model, input_ids, mask, labels)
            owner_of_token = owner[row_of_token]
            n_jobs = len(group)
            sums = torch.zeros(n_jobs, dtype=token_losses.dtype, device=device).index_add(0, owner_of_token, token_losses)
            per_job = sums / torch.tensor(step_targets, dtype=sums.dtype, device=device).clamp(min=1)
            values = per_job.detach().cpu().tolist()
            for g, value in enumerate(values):
                check_finite(value, f"in job {group[g]} of a batched pass", lrs[g])
            per_job.sum().backward()
            self._accumulate(group, ends)
            self._adamw_step(slots, torch.tensor(lrs, dtype=torch.float64), [g for g, end in enumerate(ends) if end])
        finally:
            self.router.dropout_segments = None
            for _, _, layer in self.layers:
                layer.active = None
        tokens = torch.bincount(owner, weights=mask.sum(1).to(torch.float32), minlength=n_jobs).tolist()
        return [(values[g], int(tokens[g])) for g in range(n_jobs)]

    @torch.no_grad()
    def _accumulate(self, group: list[int], ends: list[bool]) -> None:
        """Sum the pass's gradients of jobs whose step spans several micro-batches; at a step's last one,
        put the step's sum in the pass's gradient (what `_adamw_step` reads)."""
        actives = [t for _, _, layer in self.layers for t in layer.active]
        for g, (slot, end) in enumerate(zip(group, ends)):
            total = self.grad_sums.get(slot)
            if end and total is None:  # the whole step in this pass: its gradient is the pass's
                continue
            grads = [None if a.grad is None else a.grad[g] for a in actives]
            if total is None:
                total = self.grad_sums[slot] = [None if x is None else x.clone() for x in grads]
            else:
                for t, x in zip(total, grads):
                    if x is not None:
                        t.add_(x)
            if end:
                for x, t in zip(grads, total):
                    if x is not None:
                        x.copy_(t)
                del self.grad_sums[slot]

    @torch.no_grad()
    def _adamw_step(self, slots: torch.Tensor, lrs: torch.Tensor, stepping: list[int] | None = None) -> None:
        """torch's AdamW update (weight decay 0) for the given slots only, each with its own lr
        (`stepping`: only these positions of `slots` step; the others' adapters stay as they are).

        The pass's adapters are the leaf copies in `layer.active`; each job's update runs in one
        fused call (torch's own fused AdamW kernel where available) on its rows of those copies and
        on its slot of the optimiser state in place, then the copies are written back to the slots.
        """
        actives = [t for _, _, layer in self.layers for t in layer.active]
        if self.cfg.max_grad_norm is not None:  # each adapter's gradient clipped by its own norm
            grads = [a.grad for a in actives if a.grad is not None]
            scale = clip_factors(torch.stack([g.pow(2).flatten(1).sum(1) for g in grads]).sum(0), self.cfg.max_grad_norm)
            for g in grads:
                g.mul_(scale.view((-1,) + (1,) * (g.dim() - 1)).to(g.dtype))
        for g, (slot, lr) in enumerate(zip(slots.tolist(), lrs.tolist())):
            if stepping is not None and g not in stepping:
                continue
            rows = [(a[g], a.grad[g], m[slot], v[slot]) for a, m, v in zip(actives, self.exp_avg, self.exp_avg_sq)
                    if a.grad is not None]
            params, grads, exp_avgs, exp_avg_sqs = (list(x) for x in zip(*rows))
            adamw(params, grads, exp_avgs, exp_avg_sqs, [], self.steps[slot], foreach=not FUSED, fused=FUSED or None,
                  lr=lr, beta1=BETAS[0], beta2=BETAS[1], weight_decay=0.0, eps=EPS, amsgrad=False, maximize=False,
                  capturable=False, differentiable=False, grad_scale=None, found_inf=None, has_complex=False)
        for _, _, layer in self.layers:
            active_a, active_b = layer.active
            layer.lora_A.index_copy_(0, slots, active_a)
            layer.lora_B.index_copy_(0, slots, active_b)


def _targets(job: Job, rows: list[int]) -> int:
    """How many tokens of these rows of `job` are loss targets (labels shifted by one, -100 ignored)."""
    labels = job.labels if job.labels is not None else job.token_ids
    return sum(sum(t != -100 for t in labels[i][1:]) for i in rows)

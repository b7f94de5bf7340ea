"""Typed configuration for every `seal` command.

The dataclasses below are the single source of truth (seal.config_load fills them from nested
dicts, checking every key and value type): the command line and YAML files
(`seal adapt --config configs/demo.yaml`) are two ways to fill them, and the resolved
config is written into every run directory as `config.yaml`, so that a run can be
resumed (`seal adapt --resume RUN_DIR`) or reproduced exactly.

Defaults follow the paper's knowledge-incorporation inner loop (LoRA r=32, alpha=64,
dropout 0, lr 1e-3, 10 epochs, batch 1) except where a measurement on the small
embedded model said otherwise (self-edit sampling temperature: see docs/sampling.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seal.config_arc import ArcConfig  # noqa: F401 (part of RunConfig; re-exported)
from seal.config_loops import ContinualConfig, LearnConfig, SFTConfig, TrainConfig  # noqa: F401 (re-exported)
from seal.config_vllm import VLLMConfig
from seal.errors import SealError

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROMPT_FAMILIES = ["implications", "implications-long", "implications-very-long", "rewrite", "self-qa", "none"]
GRADERS = ["contains", "exact", "f1", "judge"]


@dataclass
class ModelConfig:
    """Which causal LM to adapt, and where it runs."""

    name: str = EMBEDDED_MODEL
    """A Hugging Face model id, a local path, or the embedded default."""
    dtype: str = "auto"
    """float32, bfloat16, float16, or auto (float32 on CPU, bfloat16 on CUDA)."""
    device: str = "auto"
    """cpu, cuda, cuda:N, or auto."""
    backend: str = "transformers"
    """What generates (self-edits, answers): transformers (generate) or vllm (the optional extra; seal.backends)."""
    vllm: VLLMConfig = field(default_factory=VLLMConfig)

    def validate(self) -> None:
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise SealError(f"model.dtype must be auto, float32, bfloat16 or float16, not {self.dtype!r}")
        if self.backend not in ("transformers", "vllm"):
            raise SealError(f"model.backend must be transformers or vllm, not {self.backend!r}")
        self.vllm.validate()


@dataclass
class DataConfig:
    """Where the passages come from."""

    source: str = "fictional"
    """'fictional' (the embedded generator), a JSON path, or 'hf:NAME[:SPLIT]'."""
    num_passages: int | None = None
    """Use the first N passages after `offset` (all when unset)."""
    offset: int = 0
    fictional_seed: int = 0
    """Seed of the fictional-passage generator (the same seed gives the same passages)."""

    def validate(self) -> None:
        if self.num_passages is not None and self.num_passages < 1:
            raise SealError(f"data.num_passages must be at least 1, not {self.num_passages}")
        if self.offset < 0:
            raise SealError(f"data.offset must be >= 0, not {self.offset}")


@dataclass
class SamplingConfig:
    """How self-edits are sampled from the generator."""

    prompt: str = "implications"
    k: int = 1
    """Self-edits sampled per passage."""
    temperature: float = 0.3
    """Measured on SmolLM2-135M: at 1.0 its implications are mostly invented facts."""
    top_p: float = 0.95
    max_new_tokens: int = 192
    batch_size: int = 8
    """Prompts per generate() call."""
    seed: int = 0

    def validate(self) -> None:
        if self.prompt not in PROMPT_FAMILIES:
            raise SealError(f"unknown self-edit prompt {self.prompt!r}; choose from {', '.join(PROMPT_FAMILIES)}")
        if not 1 <= self.k <= 1000:
            raise SealError(f"sampling.k must be between 1 and 1000, not {self.k}")
        if not (0.0 <= self.temperature <= 5.0) or math.isnan(self.temperature):
            raise SealError(f"sampling.temperature must be in [0, 5], not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise SealError(f"sampling.top_p must be in (0, 1], not {self.top_p}")
        if not 1 <= self.max_new_tokens <= 32768:
            raise SealError(f"sampling.max_new_tokens must be between 1 and 32768, not {self.max_new_tokens}")
        if self.batch_size < 1:
            raise SealError(f"sampling.batch_size must be at least 1, not {self.batch_size}")


INNER_SCHEDULING = frozenset({"engine", "adapters_per_pass", "pass_tokens", "pass_tokens_from_memory", "compile",
                              "max_padding", "input_blocks", "answer_batch_size"})
"""InnerLoopConfig fields that change how trials are scheduled, not what they compute (the engines agree:
tests/test_engines.py). Runs that differ only in these ran the same trials (seal.loops.reuse,
seal.reporting.retest)."""


@dataclass
class InnerLoopConfig:
    """One trial: a fresh LoRA fine-tune on a self-edit, then no-context QA."""

    rank: int = 32
    alpha: int = 64
    dropout: float = 0.0
    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 1
    max_grad_norm: float | None = None
    """Clip each adapter's gradient to this norm per step. None: no clipping (a plain PEFT loop, as
    in the known SmolLM2 figures); 1.0 is what transformers' Trainer, and so the paper's code, does."""
    target_modules: list[str] = field(default_factory=lambda: list(ALL_PROJECTIONS))
    max_seq_len: int = 512
    """Training sequences are cut to this many tokens (this project's cap: a passage of the paper's
    data fits; the paper's code sets no cut of its own)."""
    max_sequences: int = 128
    """A self-edit that splits into more training sequences than this is cut to its first ones, and a
    warning and the trial's record (`dropped_sequences`) say so: a 2,600-line self-edit would otherwise
    cost 26,000 optimiser steps. The paper's self-edits are tens of lines."""
    include_passage: bool = True
    """Train on the passage itself besides the self-edit's sequences (the paper does)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Each self-edit runs one trial per seed (LoRA init and data order); rewards are averaged."""
    question_prompt: str = "topic"
    """How a no-context question is asked: topic (the passage title as `Topic: ...` before the question,
    as the authors' code asks it) or plain (the question alone, this project's earlier wording)."""
    answer_max_new_tokens: int = 32
    answer_batch_size: int = 16
    engine: str = "batched"
    """batched: many trials' adapters trained and evaluated in shared passes (seal.engines.multi_lora);
    single: one peft adapter, one trial at a time (the same results, slower). Every trial of every
    domain (knowledge, ARC test-time training, CPT) and the ReST-EM generator SFT run on it."""
    adapters_per_pass: int = 16
    """batched engine: trials trained at once (each holds its LoRA factors and AdamW state)."""
    pass_tokens: int = 2048
    """batched engine: the memory cap of a training pass, in padded tokens (activations grow with it)."""
    max_padding: float = 0.2
    """batched engine: a pass (or a step's micro-batch) ends where the next row is more than this share shorter
    than its widest, so at most about this share of it is padding. 0.2 is the fastest in a model of this CPU's
    pass times, where a padded token costs what a real one does (docs/inner-loop.md); a GPU that a small pass
    leaves idle may gain from more. `bench/schedule.py` prints the pass sizes it gives."""
    pass_tokens_from_memory: bool = True
    """batched engine on a GPU: raise the cap to what 70 % of free memory holds (measured by a probe pass)."""
    compile: bool = False
    """batched engine: torch.compile the model's repeated blocks for training passes (seal.engines.compiled)."""
    input_blocks: int = 0
    """Trial order. 0: all trials sorted by size, so that passes stay full (the fastest). N: the trials of the
    first N inputs (passages, tasks) first, then the next N, each block sorted by size: a run stopped part-way
    then holds every row of its first inputs, a complete table on fewer inputs (seal.loops.inner)."""
    grader: str = "contains"
    """contains (gold answer contained in the answer), exact, f1, or judge."""
    judge_model: str | None = None
    """For grader=judge: 'local' (the base model), a model id/path, or an OpenAI-compatible model name."""
    judge_url: str | None = None
    """For grader=judge with an endpoint: base URL of an OpenAI-compatible API (key from $OPENAI_API_KEY)."""

    def validate(self) -> None:
        if not 1 <= self.rank <= 4096:
            raise SealError(f"inner.rank must be between 1 and 4096, not {self.rank}")
        if self.alpha <= 0:
            raise SealError(f"inner.alpha must be positive, not {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise SealError(f"inner.dropout must be in [0, 1), not {self.dropout}")
        if not (0.0 < self.lr <= 1.0) or math.isnan(self.lr):
            raise SealError(f"inner.lr must be in (0, 1], not {self.lr}: a LoRA learning rate is usually 1e-5 to 1e-2")
        if not 1 <= self.epochs <= 1000:
            raise SealError(f"inner.epochs must be between 1 and 1000, not {self.epochs}")
        if not 1 <= self.batch_size <= 4096:
            raise SealError(f"inner.batch_size must be between 1 and 4096, not {self.batch_size}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise SealError(f"inner.max_grad_norm must be positive (or unset: no clipping), not {self.max_grad_norm}")
        if not self.target_modules:
            raise SealError("inner.target_modules must name at least one module (e.g. q_proj)")
        if self.max_sequences < 1:
            raise SealError(f"inner.max_sequences must be at least 1, not {self.max_sequences}")
        if self.max_seq_len < 8:
            raise SealError(f"inner.max_seq_len must be at least 8, not {self.max_seq_len}")
        if not self.seeds:
            raise SealError("inner.seeds must list at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise SealError(f"inner.seeds must not repeat a seed: {self.seeds}")
        if self.grader not in GRADERS:
            raise SealError(f"unknown grader {self.grader!r}; choose from {', '.join(GRADERS)}")
        if self.grader == "judge" and not self.judge_model:
            raise SealError("grader=judge needs inner.judge_model ('local', a model path, or an endpoint model name)")
        if not 1 <= self.answer_max_new_tokens <= 4096:
            raise SealError(f"inner.answer_max_new_tokens must be between 1 and 4096, not {self.answer_max_new_tokens}")
        if self.question_prompt not in ("topic", "plain"):
            raise SealError(f"inner.question_prompt must be topic or plain, not {self.question_prompt!r}")
        if self.engine not in ("batched", "single"):
            raise SealError(f"inner.engine must be batched or single, not {self.engine!r}")
        if self.compile and self.engine != "batched":
            raise SealError("inner.compile applies to the batched engine (inner.engine: batched)")
        if self.input_blocks < 0:
            raise SealError(f"inner.input_blocks must be 0 (no blocks) or a number of inputs, not {self.input_blocks}")
        if not 1 <= self.adapters_per_pass <= 4096:
            raise SealError(f"inner.adapters_per_pass must be between 1 and 4096, not {self.adapters_per_pass}")
        if not 0.0 <= self.max_padding < 1.0:
            raise SealError(f"inner.max_padding must be in [0, 1), not {self.max_padding}")
        if self.pass_tokens < self.max_seq_len:
            raise SealError(f"inner.pass_tokens ({self.pass_tokens}) must hold one sequence of "
                            f"inner.max_seq_len ({self.max_seq_len}) tokens")


CONDITIONS_HELP = (
    "passage (train on the passage only), passage-twice (on two copies of it: the control for a "
    "self-edit that repeats the passage), data (self-edits stored in the data file), data:PATH (stored in "
    "another file of the same passages), "
    "model (self-edits sampled now from the model), model:FAMILY (sampled with that prompt family, e.g. "
    "model:self-qa), generator:MODEL (self-edits sampled from another "
    "model, e.g. a ReST-EM round's generator), or a path to a `seal generate` run"
)


@dataclass
class ExecutorConfig:
    """Where the inner loop's groups of trials run (seal.executors)."""

    kind: str = "local"
    """local: in this process; ray: as Ray tasks on a cluster (pip install 'seal-lm[ray]')."""
    address: str | None = None
    """ray: an existing cluster's address ('auto', 'ray://host:10001'); None starts a local cluster here."""
    workers: int | None = None
    """ray, local cluster: concurrent workers (default: this machine's CPUs // cpus_per_worker)."""
    cpus_per_worker: float = 1.0
    """CPUs a worker claims; its torch threads are this, rounded down (at least 1)."""
    gpus_per_worker: float = 0.0
    """GPUs a worker claims (fractions share a GPU)."""
    max_retries: int = 3
    """Times Ray reruns a work whose worker died (a work that fails by itself is not retried)."""

    def validate(self) -> None:
        if self.kind not in ("local", "ray"):
            raise SealError(f"executor.kind must be local or ray, not {self.kind!r}")
        if self.workers is not None and self.workers < 1:
            raise SealError(f"executor.workers must be at least 1, not {self.workers}")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0 or self.max_retries < 0:
            raise SealError("executor: cpus_per_worker must be > 0, gpus_per_worker and max_retries >= 0")


@dataclass
class RunConfig:
    """Everything a `seal` command needs; written to RUN_DIR/config.yaml."""

    command: str = "adapt"
    domain: str = "knowledge"
    """knowledge (passages and questions) or arc (few-shot ARC tasks; `seal eval --domain arc`)."""
    runs_root: str = "runs"
    name: str | None = None
    """Optional label in the run directory's name."""
    conditions: list[str] = field(default_factory=lambda: ["passage", "model"])
    """Which self-edits each trial trains on (see CONDITIONS_HELP)."""
    max_self_edits: int | None = None
    """For condition 'data' (or a generate run): use at most this many stored self-edits per passage."""
    reference: str | None = None
    """The row every other row's paired change is measured against (a condition, or 'baseline');
    default: 'model' (the base generator's self-edits) if it is a condition, else 'passage'."""
    compare_with: list[str] = field(default_factory=list)
    """More rows to give every row a paired change against, each in a column of its own (e.g. `data`)."""
    self_edits_from: str | None = None
    """An earlier knowledge run whose sampled self-edits (`model` and `generator:` rows) this run trains
    on instead of sampling again; it must have sampled with the same model and sampling settings."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    inner: InnerLoopConfig = field(default_factory=InnerLoopConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    arc: ArcConfig = field(default_factory=ArcConfig)
    continual: ContinualConfig = field(default_factory=ContinualConfig)
    learn: LearnConfig = field(default_factory=LearnConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    log_to: list[str] = field(default_factory=list)
    """Trackers that receive the run's metrics: tensorboard, wandb, mlflow (seal.tracking)."""

    def validate(self) -> "RunConfig":
        for part in (self.model, self.data, self.sampling, self.inner, self.train, self.arc, self.continual,
                     self.learn, self.executor):
            part.validate()
        if not self.conditions:
            raise SealError("name at least one condition: " + CONDITIONS_HELP)
        for tracker in self.log_to:
            if tracker not in ("tensorboard", "wandb", "mlflow"):
                raise SealError(f"log_to takes tensorboard, wandb and mlflow, not {tracker!r}")
        if self.domain not in ("knowledge", "arc"):
            raise SealError(f"domain must be knowledge or arc, not {self.domain!r}")
        if self.command == "continual" and not set(self.conditions) <= {"model", "passage", "data"}:
            raise SealError(f"continual conditions are model, passage and data, not {self.conditions}")
        if self.command == "learn" and not self.learn.paths:
            raise SealError("seal learn needs at least one document or folder")
        for condition in self.conditions if self.command not in ("train", "learn") else []:  # they sample their own
            if self.domain == "arc":
                if condition not in ("icl", "model", "constrained", "oracle", "grid") \
                        and not condition.startswith("generator:"):
                    raise SealError("ARC conditions are icl, model, constrained, oracle, grid or generator:MODEL, "
                                    f"not {condition!r}")
            elif condition.startswith("generator:"):
                if not condition.removeprefix("generator:"):
                    raise SealError("condition generator: needs a model id or path after the colon")
            elif condition.startswith("model:"):
                families = [f for f in PROMPT_FAMILIES if f != "none"]
                if condition.removeprefix("model:") not in families:
                    raise SealError(f"condition {condition!r}: model:FAMILY takes a prompt family, one of "
                                    f"{', '.join(families)}")
            elif condition.startswith("data:"):  # the file is read (and checked) before the run starts
                if not condition.removeprefix("data:"):
                    raise SealError("condition data: needs a file after the colon")
            elif condition not in ("passage", "passage-twice", "data", "model") and not Path(condition).exists():
                raise SealError(f"unknown condition {condition!r}: use " + CONDITIONS_HELP)
        for ref in [self.reference, *self.compare_with]:
            if ref is not None and ref not in [*self.conditions, "baseline"]:
                raise SealError(f"reference {ref!r} is not one of the rows: {', '.join(self.conditions)}, baseline")
        if self.self_edits_from and (self.domain != "knowledge" or self.command in ("train", "continual", "learn")):
            raise SealError("self_edits_from applies to knowledge runs of seal adapt, eval and cpt")
        if self.max_self_edits is not None and self.max_self_edits < 1:
            raise SealError(f"max_self_edits must be at least 1, not {self.max_self_edits}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

"""`seal learn PATH...`: make a model know your documents; `seal ask`: ask it, with and without what it learned.

    seal learn notes/ faq.jsonl                          # self-edits written by the model itself
    seal learn notes/ --generator runs/<time>-train/round-1/generator --merged
    seal ask runs/<time>-learn/adapter "When was the Quorvath Bridge built?" --topic "Quorvath Bridge"

Documents become passages (seal.domains.knowledge.documents states the rule), the generator
writes `-k` self-edits per passage (saved in self_edits.jsonl before training), and one job over
every passage and its self-edits' lines (the continued-pretraining setting of `seal cpt`) trains
one LoRA adapter on the configured engine. With `--steps` the passages are learned one after
another instead, as in `seal continual` but unmerged: passage t's adapter (seed inner.seeds[0] + t)
is trained on the model with adapters 0 ... t-1 added (loops.continual.Stack), each saved in
RUN_DIR/step-t.safetensors before its record in steps.jsonl, so a resumed run trains only the
missing steps; the self-edits are all written first, by the generator, not by the model as it
learns (a departure from `seal continual`). The n adapters are one LoRA of rank r x n
(factors concatenated, lora_alpha = alpha x n keeps the scaling). It is saved as a standard PEFT adapter
(RUN_DIR/adapter: adapter_config.json + adapter_model.safetensors, loadable by transformers,
peft and vLLM without this package) and, with `--merged`, as a whole model with the adapter
merged in (RUN_DIR/merged, `save_pretrained`). Passages given with questions (JSONL) are asked
before and after, with no passage in context. Step-by-step learning with merges is `seal continual`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from seal.progress import bar

from seal.config import InnerLoopConfig, ModelConfig, RunConfig
from seal.domains.base import Trial
from seal.domains.knowledge.documents import read_documents
from seal.domains.knowledge.grading import make_grader
from seal.domains.knowledge.passages import Passage
from seal.domains.knowledge.self_edits import generate_into
from seal.domains.knowledge.trials import Corpus, CptTrials, grade_answers, question_requests
from seal.engines import make_engine
from seal.engines.base import Job, TrainStats, merge_adapter
from seal.errors import SealError
from seal.generation import greedy_answers
from seal.loops.continual import Stack, load_state, save_state
from seal.models import LoadedModel, load_model
from seal.runs import RecordLog
from seal.domains.knowledge.prompts import question_prompt


def run_learn(config: RunConfig, run_dir: Path) -> dict:
    passages = read_documents(config.learn.paths, config.learn.max_words)
    loaded = load_model(config.model)
    generator = loaded if config.learn.generator is None else load_model(replace(config.model, name=config.learn.generator))
    self_edits = generate_into(run_dir, generator, passages, config)
    del generator
    inner = replace(config.inner, adapters_per_pass=1)
    engine = make_engine(loaded, inner)
    grader = make_grader(config, loaded, engine)
    asked = [p for p in passages if p.questions]
    requests = question_requests(asked, inner)
    before = engine.answer(requests.prompts, [None] * len(requests.prompts), max_new_tokens=requests.max_new_tokens,
                           batch_size=inner.answer_batch_size) if asked else []
    cpt = CptTrials(loaded.tokenizer, inner, grader)

    def job(ps: list[Passage], seed: int) -> Job:
        corpus = Corpus(tuple(ps), tuple(tuple((config.sampling.prompt, e) for e in self_edits[p.id]) for p in ps))
        return cpt.prepare(Trial("learn", corpus, 0, 0, seed)).job

    if config.learn.steps:
        engine.unload()
        stack, trained = learn_steps(loaded, inner, passages, job, run_dir)
        engine = make_engine(loaded, inner)
        after = engine.answer(requests.prompts, [None] * len(requests.prompts), max_new_tokens=requests.max_new_tokens,
                              batch_size=inner.answer_batch_size) if asked else []  # the stacked model
        engine.unload()
        stack.remove()
        state, n = stack.state(), len(passages)
        saved = replace(inner, rank=inner.rank * n, alpha=inner.alpha * n)
        losses = [r["epoch_losses"] for r in trained]
        stats = TrainStats(sum(r["steps"] for r in trained), sum(r["tokens"] for r in trained),
                           sum(r["seconds"] for r in trained), [sum(epoch) / len(epoch) for epoch in zip(*losses)])
        sequences = sum(r["sequences"] for r in trained)
    else:
        whole = job(passages, inner.seeds[0])
        [stats] = engine.train([whole], desc="learn")
        after = engine.answer(requests.prompts, [0] * len(requests.prompts), max_new_tokens=requests.max_new_tokens,
                              batch_size=inner.answer_batch_size) if asked else []
        state, saved, sequences = engine.adapter_state(0), inner, len(whole.token_ids)
        engine.unload()
    save_peft_adapter(loaded, state, saved, run_dir / "adapter")
    if config.learn.merged:
        merge_adapter(loaded.model, state, inner.alpha / inner.rank)
        loaded.model.save_pretrained(run_dir / "merged")
        loaded.tokenizer.save_pretrained(run_dir / "merged")
    summary = {"setting": "learn", "mode": "steps" if config.learn.steps else "all", "documents": config.learn.paths,
               "passages": len(passages), "sequences": sequences, "adapter_rank": saved.rank,
               "train": {"steps": stats.steps, "tokens": stats.tokens, "epoch_losses": stats.epoch_losses},
               "adapter": "adapter", "merged": "merged" if config.learn.merged else None}
    if asked:
        summary["before"] = _accuracy(asked, before, grader)
        summary["after"] = _accuracy(asked, after, grader)
    return summary


def learn_steps(loaded: LoadedModel, inner: InnerLoopConfig, passages: list[Passage],
                job: Callable[[list[Passage], int], Job], run_dir: Path) -> tuple[Stack, list[dict]]:
    """Passage t's adapter trained on the model with adapters 0 ... t-1 added; resumable per passage."""
    stack = Stack(loaded.model, inner.alpha / inner.rank)
    log = RecordLog(run_dir / "steps.jsonl")
    done = {r["step"]: r for r in log}
    trained = []
    for t, passage in enumerate(bar(passages, desc="learn", unit="passage")):
        path = run_dir / f"step-{t}.safetensors"
        if t not in done:
            step_job = job([passage], inner.seeds[0] + t)
            engine = make_engine(loaded, inner)
            [stats] = engine.train([step_job])
            state = engine.adapter_state(0)
            engine.unload()
            save_state(state, path)
            done[t] = {"step": t, "passage_id": passage.id, "title": passage.title, "sequences": len(step_job.token_ids),
                       "steps": stats.steps, "tokens": stats.tokens, "seconds": stats.seconds,
                       "epoch_losses": stats.epoch_losses}
            log.append(done[t])
        stack.add(load_state(path))
        trained.append(done[t])
    return stack, trained


def _accuracy(passages: list[Passage], flat: list[str], grader) -> float:
    scores, k = [], 0
    for p in passages:
        scores += [g["score"] for g in grade_answers(p, flat[k:k + len(p.questions)], grader)]
        k += len(p.questions)
    return sum(scores) / len(scores)


@torch.no_grad()
def save_peft_adapter(loaded: LoadedModel, state: dict[str, torch.Tensor], inner: InnerLoopConfig, target: Path) -> None:
    """An engine's adapter as a standard PEFT adapter directory (`PeftModel.from_pretrained` loads it)."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(loaded.model, LoraConfig(r=inner.rank, lora_alpha=inner.alpha, lora_dropout=0.0,
                                                         target_modules=list(inner.target_modules), bias="none",
                                                         task_type="CAUSAL_LM"))
    try:
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.copy_(state[name.removeprefix("base_model.model.").replace(".default", "")])
        peft_model.save_pretrained(target)
        loaded.tokenizer.save_pretrained(target)
    finally:
        loaded.model = peft_model.unload()


def learn_report(summary: dict) -> str:
    how = "passage by passage (one adapter each, stacked)" if summary.get("mode") == "steps" else "all at once"
    lines = ["# seal learn", "", f"{summary['passages']} passages from {', '.join(summary['documents'])}, learned {how}; "
             f"{summary['sequences']} training sequences, {summary['train']['steps']} steps, loss "
             f"{summary['train']['epoch_losses'][0]:.3f} → {summary['train']['epoch_losses'][-1]:.3f}.", "",
             f"PEFT adapter (rank {summary.get('adapter_rank')}): `adapter/`" + (" ; merged model: `merged/`" if summary["merged"] else "")]
    if "before" in summary:
        lines += ["", f"No-context accuracy on the documents' questions: {100 * summary['before']:.1f} % before, "
                  f"{100 * summary['after']:.1f} % after."]
    return "\n".join(lines) + "\n"


def ask(model_or_adapter: str, question: str, topic: str = "", device: str = "auto",
        max_new_tokens: int = 32) -> dict[str, str]:
    """One question, answered greedily by the base model and, for a PEFT adapter directory, by the adapted one."""
    path = Path(model_or_adapter)
    adapter_config = path / "adapter_config.json"
    base_name = json.loads(adapter_config.read_text())["base_model_name_or_path"] if adapter_config.is_file() \
        else model_or_adapter
    loaded = load_model(ModelConfig(name=base_name, device=device))
    prompt = [question_prompt(question, topic, "topic" if topic else "plain")]
    out = {"base": greedy_answers(loaded, prompt, max_new_tokens=max_new_tokens)[0]}
    if adapter_config.is_file():
        from peft import PeftModel

        try:
            loaded.model = PeftModel.from_pretrained(loaded.model, str(path)).to(loaded.device)
        except (OSError, ValueError, KeyError) as err:
            raise SealError(f"{path} is not a PEFT adapter of {base_name}: {err}") from None
        out["adapted"] = greedy_answers(loaded, prompt, max_new_tokens=max_new_tokens)[0]
    return out

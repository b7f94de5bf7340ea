"""`seal learn PATH...`: make a model know your documents; `seal ask`: ask it, with and without what it learned.

    seal learn notes/ faq.jsonl                          # self-edits written by the model itself
    seal learn notes/ --generator runs/<time>-train/round-1/generator --merged
    seal ask runs/<time>-learn/adapter "When was the Quorvath Bridge built?" --topic "Quorvath Bridge"

Documents become passages (seal.domains.knowledge.documents states the rule), the generator
writes `-k` self-edits per passage (saved in self_edits.jsonl before training), and one job over
every passage and its self-edits' lines (the continued-pretraining setting of `seal cpt`) trains
one LoRA adapter on the configured engine. It is saved as a standard PEFT adapter
(RUN_DIR/adapter: adapter_config.json + adapter_model.safetensors, loadable by transformers,
peft and vLLM without this package) and, with `--merged`, as a whole model with the adapter
merged in (RUN_DIR/merged, `save_pretrained`). Passages given with questions (JSONL) are asked
before and after, with no passage in context. Step-by-step learning with merges is `seal continual`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from seal.config import InnerLoopConfig, ModelConfig, RunConfig
from seal.domains.base import Trial
from seal.domains.knowledge.documents import read_documents
from seal.domains.knowledge.grading import make_grader
from seal.domains.knowledge.passages import Passage
from seal.domains.knowledge.self_edits import generate_into
from seal.domains.knowledge.trials import Corpus, CptTrials, grade_answers, question_requests
from seal.engines import make_engine
from seal.engines.base import merge_adapter
from seal.errors import SealError
from seal.generation import greedy_answers
from seal.models import LoadedModel, load_model
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
    corpus = Corpus(tuple(passages), tuple(tuple((config.sampling.prompt, e) for e in self_edits[p.id]) for p in passages))
    job = CptTrials(loaded.tokenizer, inner, grader).prepare(Trial("learn", corpus, 0, 0, inner.seeds[0])).job
    [stats] = engine.train([job], desc="learn")
    after = engine.answer(requests.prompts, [0] * len(requests.prompts), max_new_tokens=requests.max_new_tokens,
                          batch_size=inner.answer_batch_size) if asked else []
    state = engine.adapter_state(0)
    engine.unload()
    save_peft_adapter(loaded, state, inner, run_dir / "adapter")
    if config.learn.merged:
        merge_adapter(loaded.model, state, inner.alpha / inner.rank)
        loaded.model.save_pretrained(run_dir / "merged")
        loaded.tokenizer.save_pretrained(run_dir / "merged")
    summary = {"setting": "learn", "documents": config.learn.paths, "passages": len(passages),
               "sequences": len(job.token_ids), "train": {"steps": stats.steps, "tokens": stats.tokens,
                                                          "epoch_losses": stats.epoch_losses},
               "adapter": "adapter", "merged": "merged" if config.learn.merged else None}
    if asked:
        summary["before"] = _accuracy(asked, before, grader)
        summary["after"] = _accuracy(asked, after, grader)
    return summary


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
    lines = ["# seal learn", "", f"{summary['passages']} passages from {', '.join(summary['documents'])}; "
             f"{summary['sequences']} training sequences, {summary['train']['steps']} steps, loss "
             f"{summary['train']['epoch_losses'][0]:.3f} → {summary['train']['epoch_losses'][-1]:.3f}.", "",
             "PEFT adapter: `adapter/`" + (" ; merged model: `merged/`" if summary["merged"] else "")]
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

"""Test helpers: the shared-data location and the tiny model builder (importable from every test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from seal.domains.knowledge.fictional import generate_passages

SHARED_DATA = Path(os.environ.get("SEAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(directory: Path, seed: int = 0) -> Path:
    """Train a 600-token byte-level BPE on fictional passages and save a random 2-layer Llama beside it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [f"{p.title}\n{p.context}\n" + "\n".join(f"{q.question} {q.answer}" for q in p.questions)
              for p in generate_passages(60, seed=123)]
    corpus.append("Answer the question with a short phrase, without explanation. Question: Implications:")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|im_end|>",
                                        bos_token="<|im_start|>", unk_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         initializer_range=0.3, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def requires_shared_data(*parts: str):
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not found at {path}")


def kill_after_records(argv: list[str], runs: Path, records: int, timeout: float = 120.0) -> Path | None:
    """Run `seal ARGV` in a new process, SIGKILL it once a trials.jsonl under `runs` holds `records` lines
    (or at the deadline, or let it be if it ended first); the trials.jsonl path, or None if none got there."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "seal.cli", *argv], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, found = time.time() + timeout, None
    while time.time() < deadline and proc.poll() is None:
        logs = list(runs.glob("*/trials.jsonl")) if runs.exists() else []
        if logs and len(logs[0].read_text().splitlines()) >= records:
            found = logs[0]
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return found


def nan_model(model_path: Path, target: Path) -> Path:
    """A copy of the model at `model_path` with one NaN weight (every training loss on it is NaN)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_path)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, 0] = float("nan")
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(model_path).save_pretrained(target)
    return target

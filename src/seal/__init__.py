"""SEAL: Self-Adapting Language Models (Zweiger et al., 2025).

A model adapts itself by writing a *self-edit* (its own fine-tuning data for a new
input), applying it with a fresh LoRA fine-tune (the inner loop) and being rewarded by
how well it then answers without the input in context. The outer ReST-EM loop trains
the model to write better self-edits.

Layout:
  seal/models.py          load any causal LM (the embedded SmolLM2 by default), prompts
  seal/generation.py      batched sampling of self-edits and greedy answering
  seal/knowledge/         the knowledge-incorporation domain: passages, prompts, graders
  seal/arc/               the few-shot domain: ARC tasks, augmentations, recipes, TTT + voting
  seal/inner_loop.py      one trial: LoRA fine-tune on a self-edit, answer, grade, reset
  seal/adapt.py           `seal adapt` / `seal eval`: trials per condition, baselines, summary
  seal/rest_em.py         `seal train`: the ReST-EM outer loop over a small Domain protocol
  seal/sft.py             ReST-EM's M-step: LoRA SFT of the generator, merged
  seal/cpt.py             `seal cpt`: one adapter over many passages
  seal/runs.py            run directories: resolved config, one JSON line per record, resume
  seal/cli.py             the `seal` command
"""

__version__ = "0.1.0"

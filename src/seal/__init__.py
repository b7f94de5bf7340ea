"""SEAL: Self-Adapting Language Models (Zweiger et al., 2025).

A model adapts itself by writing a *self-edit* (its own fine-tuning data for a new
input), applying it with a fresh LoRA fine-tune (the inner loop) and being rewarded by
how well it then answers without the input in context. The outer ReST-EM loop trains
the model to write better self-edits.

Layout (engines train adapters; loops hold the algorithm; domains own data, prompts and scoring):
  seal/engines/           the Engine protocol: peft single adapter, batched multi-LoRA; one job schedule
  seal/loops/inner.py     the inner loop of every domain: trials -> jobs -> engine -> answers -> scores
  seal/loops/rest_em.py   the ReST-EM outer loop over the Domain protocol
  seal/loops/sft.py       ReST-EM's M-step: LoRA SFT of the generator on the engine, merged
  seal/domains/           knowledge (passages, self-edits, graders) and arc (tasks, recipes, TTT, voting)
  seal/commands/          `seal adapt/eval/demo`, `generate`, `cpt`, `train`, `eval --domain arc`: thin wiring
  seal/report.py          tables with standard errors and paired differences; seal/stats.py the statistics
  seal/models.py, generation.py, runs.py, config.py, cli.py
"""

__version__ = "0.1.0"

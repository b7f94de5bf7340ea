"""Recipes sampled free (the paper's way) and under the recipe's JSON schema: how many parse, and at what cost.

    .venv/bin/python bench/structured.py                        # the 5 smallest shared ARC tasks, 3 recipes each
    .venv/bin/python bench/structured.py --tasks 10 -k 5 --temperature 1.0

On the embedded model, the same prompts and seeds, in this one process: every recipe is sampled
once unconstrained and once held to seal.domains.arc.recipe.RECIPE_SCHEMA by xgrammar
(seal.structured). Prints, for each way, the share of recipes that parse into a valid recipe,
seconds, generated tokens per second, and the grammar's compile time; then the distinct
recipes the constrained way wrote.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from seal.config import ArcConfig, ModelConfig
from seal.domains.arc.recipe import RECIPE_SCHEMA, RecipeError, parse_recipe
from seal.domains.arc.trials import load_tasks, recipe_prompt
from seal.generation import generate
from seal.models import load_model
from seal.structured import json_schema_constraint

ARC = Path(__file__).resolve().parents[2] / "shared" / "data" / "arc"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tasks = load_tasks(ArcConfig(challenges=str(ARC / "arc-agi_evaluation_challenges_filtered_1B_eval_set.json"),
                                 solutions=str(ARC / "arc-agi_evaluation_solutions_filtered_1B_eval_set.json")))
    tasks = sorted(tasks, key=lambda t: sum(len(g) * len(g[0]) for g in t.grids()))[:args.tasks]
    loaded = load_model(ModelConfig(device="cpu"))
    prompts = [recipe_prompt(t) for t in tasks]
    start = time.perf_counter()
    constraint = json_schema_constraint(loaded, RECIPE_SCHEMA)
    print(f"{len(tasks)} tasks x {args.k} recipes, T={args.temperature}; grammar compiled in "
          f"{time.perf_counter() - start:.2f} s")
    rows = {}
    for name, con in (("free (the paper's)", None), ("xgrammar, JSON schema", constraint)):
        start = time.perf_counter()
        out = generate(loaded, prompts, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                       num_return_sequences=args.k, seed=0, batch_size=1, constraint=con)
        seconds = time.perf_counter() - start
        texts = [x for o in out for x in o]
        parsed = []
        for text in texts:
            try:
                parsed.append(parse_recipe(text))
            except RecipeError:
                pass
        tokens = sum(len(loaded.tokenizer(x)["input_ids"]) for x in texts)
        rows[name] = (len(parsed), len(texts), seconds, tokens, parsed)
    print(f"{'sampling':<24} {'valid':>7} {'seconds':>8} {'tokens':>7} {'tok/s':>6} {'s/recipe':>9}")
    for name, (valid, n, seconds, tokens, _) in rows.items():
        print(f"{name:<24} {valid:>3}/{n:<3} {seconds:>8.1f} {tokens:>7} {tokens / seconds:>6.1f} {seconds / n:>9.1f}")
    for recipe in sorted(set(rows["xgrammar, JSON schema"][4]), key=str):
        print("  ", recipe.to_json())


if __name__ == "__main__":
    main()

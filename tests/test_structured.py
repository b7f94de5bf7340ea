"""Constrained recipe sampling: every sample parses into a valid recipe, even from a random tiny model."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import pytest

from seal.config import ArcConfig, ModelConfig, RunConfig, SamplingConfig
from seal.domains.arc.recipe import RECIPE_SCHEMA, RecipeError, parse_recipe
from seal.generation import generate
from seal.models import load_model

pytestmark = pytest.mark.skipif(importlib.util.find_spec("xgrammar") is None,
                                reason="xgrammar is not installed (pip install 'seal-lm[structured]')")


def test_constrained_samples_always_parse_into_valid_recipes(tiny_model_path):
    from seal.structured import json_schema_constraint

    loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu"))
    constraint = json_schema_constraint(loaded, RECIPE_SCHEMA)
    prompts = ["Write a recipe.", "Train on this task: 0 1 2", "{"]
    free, held = [], []
    for seed in range(4):
        kwargs = dict(max_new_tokens=200, temperature=1.0, num_return_sequences=4, seed=seed)
        free += [x for out in generate(loaded, prompts, **kwargs) for x in out]
        held += [x for out in generate(loaded, prompts, constraint=constraint, **kwargs) for x in out]
    recipes = [parse_recipe(x) for x in held]  # raises on the first that does not parse
    assert len(recipes) == 4 * 3 * 4 and len(set(recipes)) > 1  # sampled, not one fixed answer
    assert all(json.loads(x).keys() == RECIPE_SCHEMA["properties"].keys() for x in held)
    with pytest.raises(RecipeError):  # the same model, unconstrained, writes no recipe
        parse_recipe(free[0])


def test_the_constrained_condition_samples_under_the_schema(tmp_path, tiny_model_path):
    from seal.domains.arc.domain import sample_recipes
    from test_arc import toy_task
    import random

    tasks = [replace(toy_task(random.Random(i), n_train=2), id=f"t{i}") for i in range(2)]
    config = RunConfig(domain="arc", sampling=SamplingConfig(k=3, temperature=1.0),
                       arc=ArcConfig(constrained=True, recipe_max_new_tokens=200))
    loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu"))
    recipes = sample_recipes(loaded, tasks, config, tmp_path / "recipes.jsonl")
    assert all(len(v) == 3 for v in recipes.values())
    for texts in recipes.values():
        for text in texts:
            parse_recipe(text)

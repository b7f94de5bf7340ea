"""The inner-loop benchmark runs end to end on a tiny model and its three paths agree trial by trial."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

from helpers import SHARED_DATA, requires_shared_data

BENCH = Path(__file__).resolve().parents[1] / "bench" / "inner_loop.py"


@requires_shared_data("squad", "eval200_gpt41_self_edits.json")
def test_inner_loop_bench_on_a_tiny_model(tiny_model_path, tmp_path, monkeypatch):
    out = tmp_path / "figures.json"
    monkeypatch.syspath_prepend(str(BENCH.parent))  # the script imports its sibling bench/flops.py
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--model", str(tiny_model_path), "--passages", "1",
                                      "--self-edits", "2", "--reference-trials", "1", "--out", str(out),
                                      "--data", str(SHARED_DATA / "squad" / "eval200_gpt41_self_edits.json")])
    runpy.run_path(str(BENCH), run_name="__main__")
    figures = json.loads(out.read_text())
    assert figures["trials"] == 2
    assert figures["a"]["trials"] == figures["b"]["trials"] == 1 and figures["c"]["trials"] == 2
    # the same initialisation and data order: the paper's path, the single-adapter loop and the
    # batched engine answer the shared trial alike
    assert figures["agree_a_c"] == 1.0 and figures["agree_b_c"] == 1.0
    assert figures["c"]["trained_tokens"] > 0 and 0 < figures["c"]["mfu"] < 1


@requires_shared_data("arc", "arc-agi_evaluation_challenges_filtered_1B_eval_set.json")
def test_arc_bench_on_a_tiny_model(tiny_model_path, tmp_path, monkeypatch):
    script = BENCH.parent / "arc.py"
    out = tmp_path / "figures.json"
    monkeypatch.setattr(sys, "argv", [str(script), "--model", str(tiny_model_path), "--tasks", "2",
                                      "--max-examples", "2", "--out", str(out)])
    runpy.run_path(str(script), run_name="__main__")
    figures = json.loads(out.read_text())
    assert len(figures["tasks"]) == 2 and figures["single"]["steps"] == figures["batched"]["steps"] > 0
    assert figures["same_attempts"] == 2 and figures["batched/single"] > 0


def test_round_bench_shapes_are_the_published_models(monkeypatch):
    """bench/round.py builds its random models from shapes written in the script: they must have the real sizes."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    monkeypatch.syspath_prepend(str(BENCH.parent))
    shapes = runpy.run_path(str(BENCH.parent / "round.py"))["SHAPES"]
    published = {"qwen2.5-7b": 7.62e9, "smollm2-135m": 134.5e6}  # parameters, from the models' cards
    for name, total in published.items():
        spec = dict(shapes[name])
        with torch.device("meta"):  # no memory: only the parameter shapes
            model = AutoModelForCausalLM.from_config(AutoConfig.for_model(spec.pop("model_type"), **spec))
        assert abs(sum(p.numel() for p in model.parameters()) - total) < 0.01 * total, name

"""The inner-loop benchmark runs end to end on a tiny model and its three paths agree trial by trial."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

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


def test_packing_bench_packed_rows_get_their_padded_losses(tiny, monkeypatch):
    """bench/packing.py's packed layout: every row's token losses as in a padded pass, whatever the bin size."""
    import torch

    monkeypatch.syspath_prepend(str(BENCH.parent))
    bench = runpy.run_path(str(BENCH.parent / "packing.py"))
    model = tiny.model.train()
    for p in model.parameters():
        p.requires_grad_(False)
    lengths = [9, 6, 5, 3]
    seqs = [torch.randint(5, 100, (n,), generator=torch.Generator().manual_seed(n)) for n in lengths]
    padded = bench["padded"](model, seqs, [[0, 1], [2, 3]], "cpu")
    for capacity in (0, 12):
        bins = bench["bins_of"](lengths, capacity)
        assert sorted(i for b in bins for i in b) == [0, 1, 2, 3] and (capacity == 0) == (len(bins) == 1)
        packed = bench["packed"](model, seqs, bins, "cpu")
        for i, n in enumerate(lengths):
            assert packed[i].shape == (n - 1,) and torch.allclose(packed[i], padded[i], atol=1e-5), (capacity, i)
    # a packed row that could see the row before it would get other losses: the check can fail
    leaky = bench["row_losses"](model, torch.cat(seqs[:2]).unsqueeze(0))[0, len(seqs[0]):].detach()
    assert not torch.allclose(leaky, padded[1], atol=1e-5)


def test_round_bench_runs_every_stage_three_ways(tiny_model_path, tmp_path, monkeypatch):
    """bench/round.py end to end (the script the GPU check runs at the 7B shape), on its tiny shape."""
    script = BENCH.parent / "round.py"
    out = tmp_path / "round.json"
    monkeypatch.syspath_prepend(str(BENCH.parent))
    monkeypatch.setattr(sys, "argv", [str(script), "--shape", "tiny", "--tokenizer", str(tiny_model_path),
                                      "--trials", "3", "--reference-trials", "1", "--sample-passages", "1",
                                      "--sample-tokens", "8", "--sft-pairs", "1", "--epochs", "1",
                                      "--adapters-per-pass", "3", "--out", str(out)])
    runpy.run_path(str(script), run_name="__main__")
    figures = json.loads(out.read_text())
    assert figures["round_trials"] == 750 and figures["matmul_peak"] > 0
    assert [figures["ways"][w]["trials"] for w in "abc"] == [1, 1, 3]
    for way in figures["ways"].values():  # every stage measured and extrapolated to the whole round
        assert way["round_min"] > way["trials_min"] > 0 and way["trials_per_min"] > 0
    assert figures["sample_min"] > 0 and figures["sft_min"] > 0 and 0 < figures["ways"]["c"]["train_mfu"] < 1
    assert figures["c/a"] == figures["ways"]["c"]["trials_per_min"] / figures["ways"]["a"]["trials_per_min"]



def test_micro_batches_bench_trains_both_ways_to_the_same_losses(tiny_model_path, monkeypatch):
    import pytest

    from seal.engines import multi_lora, schedule

    script = BENCH.parent / "micro_batches.py"
    monkeypatch.syspath_prepend(str(BENCH.parent))
    monkeypatch.setattr(sys, "argv", [str(script), "--model", str(tiny_model_path), "--adapters", "2"])
    figures = runpy.run_path(str(script))["main"]()
    padded, cut = figures["losses"]["each step padded whole"], figures["losses"]["micro-batches (the engine's)"]
    assert len(cut) == 2 and cut == pytest.approx(padded, rel=1e-5)
    assert multi_lora.micro_batches is schedule.micro_batches  # the engine's rule is back after the bench


def test_schedule_bench_replays_the_engines_passes_and_padding_changes_passes_not_adapters(tiny_model_path,
                                                                                           monkeypatch):
    """bench/schedule.py's replay must be the pass sequence MultiLoRAEngine.train runs, at any inner.max_padding,
    and max_padding (a scheduling knob) must leave every adapter as it was."""
    import dataclasses

    import torch

    from seal.config import InnerLoopConfig, ModelConfig
    from seal.engines.base import Job
    from seal.engines.multi_lora import MultiLoRAEngine
    from seal.models import load_model

    monkeypatch.syspath_prepend(str(BENCH.parent))
    replay = runpy.run_path(str(BENCH.parent / "schedule.py"))["replay"]
    loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu", dtype="float32"))
    loaded.model.to(torch.float64)
    gen = torch.Generator().manual_seed(3)
    lengths = [[30, 12], [26, 9, 40], [22], [18, 33]]  # rows 10-70 % shorter than others: padding decides
    jobs = [Job([torch.randint(5, 500, (n,), generator=gen).tolist() for n in rows], seed=i, epochs=2 + i % 2)
            for i, rows in enumerate(lengths)]
    adapters, counts = {}, {}
    for max_padding in (0.0, 0.5, 0.9):
        cfg = InnerLoopConfig(rank=4, alpha=8, lr=5e-2, epochs=2, pass_tokens=96, max_padding=max_padding,
                              target_modules=["q_proj", "v_proj", "down_proj"])
        engine = MultiLoRAEngine(loaded, cfg, slots=4)
        seen, train_pass = [], engine._train_pass

        def recording(jobs_, group, rows_per_job, *rest, seen=seen, train_pass=train_pass):
            rows = [len(jobs_[j].token_ids[i]) for j, r in zip(group, rows_per_job) for i in r]
            seen.append((len(rows), len(rows) * max(rows), sum(rows)))
            return train_pass(jobs_, group, rows_per_job, *rest)

        engine._train_pass = recording
        engine.train([dataclasses.replace(job) for job in jobs])
        assert seen == replay(jobs, cfg.pass_tokens, max_padding, epochs=cfg.epochs), max_padding
        adapters[max_padding] = [engine.adapter_state(s) for s in range(len(jobs))]
        counts[max_padding] = len(seen)
        engine.unload()
    assert counts[0.0] > counts[0.5] > counts[0.9]  # more padding allowed: fewer, fuller passes
    for slot in range(len(jobs)):
        for name, want in adapters[0.0][slot].items():
            for max_padding in (0.5, 0.9):
                torch.testing.assert_close(adapters[max_padding][slot][name], want, rtol=1e-9, atol=1e-11)


def test_schedule_fit_recovers_a_pass_a_token_and_a_row_from_exact_times(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))
    fit = runpy.run_path(str(BENCH.parent / "schedule.py"))["fit"]
    times = {(r, w): 0.9 + 0.01 * r * w + 0.3 * r for r, w in ((1, 10), (2, 10), (1, 30), (4, 20))}
    assert fit(times) == pytest.approx((0.9, 0.01, 0.3))


def test_schedule_bench_runs_and_models_one_job_at_a_time_as_its_reference(tmp_path, monkeypatch):
    script = BENCH.parent / "schedule.py"
    out = tmp_path / "figures.json"
    monkeypatch.syspath_prepend(str(BENCH.parent))
    monkeypatch.setattr(sys, "argv", [str(script), "--measure", "--shape", "tiny", "--passages", "2", "--jobs", "1,5",
                                      "--max-padding", "0.2,0.8", "--shapes", "1x8,2x8,1x24,3x16", "--reps", "1",
                                      "--out", str(out)])
    runpy.run_path(str(script), run_name="__main__")
    figures = json.loads(out.read_text())
    assert figures["trials"] == 10 and set(figures["measured"]) == {"1x8", "2x8", "1x24", "3x16"}
    rows = {(r["jobs"], r["max_padding"]): r for r in figures["schedules"]}
    assert rows[1, 0.2]["rows_per_pass"] == 1.0 and rows[1, 0.2]["padding"] == 0.0  # one job: one row a pass
    assert rows[5, 0.8]["passes"] < rows[5, 0.2]["passes"] < rows[1, 0.2]["passes"]
    assert all(r["modelled_s_per_row"] > 0 for r in rows.values())

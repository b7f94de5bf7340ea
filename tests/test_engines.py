"""The engines: learning happens, only LoRA moves, the base is restored, and the two engines agree."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seal.domains.base import Trial
from seal.domains.knowledge.fictional import generate_passages
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.prompts import training_sequences
from seal.domains.knowledge.trials import KnowledgeTrials
from seal.engines import make_engine
from seal.engines.base import Job, NonFiniteLoss
from seal.engines.multi_lora import MultiLoRAEngine
from seal.engines.schedule import plan_passes
from seal.engines.peft_single import PeftEngine
from seal.engines.schedule import tokenize_sequences
from seal.errors import SealError
from seal.loops.inner import run_trials
from seal.models import load_model
from seal.config import ModelConfig


@pytest.fixture
def tiny64(tiny_model_path):
    loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu", dtype="float32"))
    loaded.model.to(torch.float64)  # equality up to reordering, checked tightly
    return loaded


def lora_state(engine: PeftEngine) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in engine.params}


def base_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def jobs_for(tokenizer, cfg, n: int) -> list[Job]:
    """n trials of different lengths, seeds, learning rates and epochs (one with a loss mask)."""
    jobs = []
    for i, p in enumerate(generate_passages(n, seed=5)):
        sequences = training_sequences(p, f"1. {p.questions[0].question} {p.questions[0].answer}.")[: 1 + i % 3]
        ids = tokenize_sequences(tokenizer, sequences, cfg.max_seq_len)
        labels = [[-100] * 4 + s[4:] for s in ids] if i == 1 else None
        jobs.append(Job(ids, seed=10 + i, lr=[5e-2, 2e-2, 1e-1][i % 3], epochs=2 + i % 2, labels=labels))
    return jobs


def knowledge_trials(loaded, engine, cfg, trials) -> dict[int, dict]:
    return dict(run_trials(engine, KnowledgeTrials(loaded.tokenizer, cfg, Grader("contains")), trials, desc=None))


def peft_as_multi_names(engine: PeftEngine) -> dict[str, torch.Tensor]:
    return {n.replace(".default", ""): p for n, p in lora_state(engine).items()}


# --- the single (peft) engine ---------------------------------------------------------------------------------

def test_trial_trains_only_lora_lowers_loss_and_restores_base(tiny, fast_inner, passage):
    engine = PeftEngine(tiny, fast_inner)
    probe = torch.tensor([tiny.tokenizer(passage.context)["input_ids"][:20]])
    before_base, before_logits = base_state(tiny.model), logits(tiny.model, probe)
    with engine.disable_adapter():
        assert torch.equal(logits(tiny.model, probe), before_logits)  # a reset adapter is exactly the base model

    [record] = knowledge_trials(tiny, engine, fast_inner,
                                [Trial("model", passage, 0, 0, 0, "1. The town is old.\n2. It has bridges.")]).values()
    assert record["status"] == "ok"
    losses = record["train"]["epoch_losses"]
    assert len(losses) == fast_inner.epochs and losses[-1] < 0.7 * losses[0]
    assert record["n_sequences"] == 3 and record["train"]["steps"] == 3 * fast_inner.epochs
    assert len(record["answers"]) == len(passage.questions)
    after_base = base_state(tiny.model)
    assert after_base.keys() == before_base.keys()
    assert all(torch.equal(after_base[n], before_base[n]) for n in before_base), "base weights changed"
    assert torch.equal(logits(tiny.model, probe), before_logits), "the model was not restored to the base"


def test_training_changes_lora_weights_and_init_restores_them(tiny, fast_inner, passage):
    engine = PeftEngine(tiny, fast_inner)
    engine.init_adapter(3)
    initial = lora_state(engine)
    ids = tokenize_sequences(tiny.tokenizer, training_sequences(passage, None), fast_inner.max_seq_len)
    engine.train([Job(ids, seed=3)])
    trained = lora_state(engine)
    changed = [n for n in initial if not torch.equal(initial[n], trained[n])]
    assert {n.split("lora_")[1].split(".")[0] for n in changed} == {"A", "B"}
    assert len(changed) == len(initial)  # every adapted projection learned something
    engine.init_adapter(3)
    assert all(torch.equal(initial[n], p) for n, p in engine.params)


def test_init_is_seeded_and_reset_is_the_base(tiny, fast_inner):
    engine = PeftEngine(tiny, fast_inner)
    a = (engine.init_adapter(1), lora_state(engine))[1]
    b = (engine.init_adapter(2), lora_state(engine))[1]
    c = (engine.init_adapter(1), lora_state(engine))[1]
    a_names = [n for n in a if "lora_A" in n]
    assert all(torch.equal(a[n], c[n]) for n in a)
    assert not any(torch.equal(a[n], b[n]) for n in a_names)
    engine.reset()
    assert all(not p.any() for n, p in engine.params if "lora_B" in n)


def test_same_seed_same_trial(tiny, fast_inner, passage):
    engine = PeftEngine(tiny, fast_inner)
    trials = [Trial("model", passage, 0, e, 5, "It is old.") for e in (0, 1)]
    first, second = knowledge_trials(tiny, engine, fast_inner, trials).values()
    assert first["train"]["epoch_losses"] == second["train"]["epoch_losses"]
    assert [a["answer"] for a in first["answers"]] == [a["answer"] for a in second["answers"]]


def test_loss_ignores_padding(tiny):
    """A padded batch's loss equals the token-weighted mean of each sequence's own loss."""
    from seal.engines.schedule import pad_batch, target_losses

    model = tiny.model.double()
    seqs = tokenize_sequences(tiny.tokenizer, ["Vesu is a town by a river.", "Short."], 64)
    ids, mask, labels = pad_batch(seqs, None, tiny.tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        batched = target_losses(model, ids, mask, labels)[0].mean()
        singles = [model(input_ids=torch.tensor([s]), labels=torch.tensor([s])).loss for s in seqs]
    weights = [len(s) - 1 for s in seqs]
    expected = sum(l * w for l, w in zip(singles, weights)) / sum(weights)
    assert torch.allclose(batched, expected, atol=1e-10)


@pytest.mark.parametrize("engine_name", ["single", "batched"])
def test_empty_self_edit_is_not_trained_and_scores_zero(tiny, fast_inner, passage, engine_name):
    engine = make_engine(tiny, fast_inner, engine_name)
    [record] = knowledge_trials(tiny, engine, fast_inner, [Trial("model", passage, 0, 0, 0, "**Implications:**\n\n")]).values()
    assert record["status"] == "empty_self_edit" and record["accuracy"] == 0.0 and record["train"] is None


@pytest.mark.parametrize("engine_name", ["single", "batched"])
def test_non_finite_loss_stops_the_trial_and_resets(tiny, fast_inner, passage, engine_name):
    before_base = base_state(tiny.model)
    absurd = dataclasses.replace(fast_inner, lr=1e30, epochs=5)  # past validation, as a corrupted run might be
    engine = make_engine(tiny, absurd, engine_name)
    with pytest.raises(NonFiniteLoss, match="lower the learning rate"):
        knowledge_trials(tiny, engine, absurd, [Trial("model", passage, 0, 0, 0, "It is old.")])
    probe = torch.tensor([[1, 2, 3, 4]])
    after = logits(tiny.model, probe)
    unloaded = engine.unload()
    assert torch.equal(after, logits(unloaded, probe)), "the adapters were not reset to the base"
    assert all(torch.equal(p, before_base[n]) for n, p in base_state(unloaded).items())


@pytest.mark.parametrize("engine_name", ["single", "batched"])
def test_unknown_target_module_is_a_clear_error(tiny, fast_inner, engine_name):
    with pytest.raises(SealError, match="not in this model"):
        make_engine(tiny, dataclasses.replace(fast_inner, target_modules=["c_attn"]), engine_name)


def test_local_judge_judges_with_the_adapter_off(tiny, tiny_model_path, fast_inner):
    from seal.domains.knowledge.grading import LocalJudge

    engine = PeftEngine(tiny, fast_inner)
    with torch.no_grad():  # an adapter mid-trial: far from the base model
        for name, p in engine.params:
            p.normal_(0, 1.0, generator=torch.Generator().manual_seed(len(name)))
    triples = (["Which river?", "When?"], ["Besheidoux", "1310"], ["the Besheidoux", "in 1290"])
    fresh = LocalJudge(load_model(ModelConfig(name=str(tiny_model_path), device="cpu")))
    assert LocalJudge(tiny, engine).replies(*triples) == fresh.replies(*triples)
    assert LocalJudge(tiny).replies(*triples) != fresh.replies(*triples)  # the perturbed adapter does matter


# --- the batched engine, and the two engines agreeing ----------------------------------------------------------

@pytest.mark.parametrize("max_grad_norm, batch_size", [(None, 1), (0.05, 1), (None, 3), (0.05, 3)])
def test_batched_training_gives_the_weights_of_separate_runs(tiny64, fast_inner, max_grad_norm, batch_size):
    """0.05: every step's gradient is clipped; batch 3: steps of a long passage row and short lines, which the
    batched engine cuts into micro-batches (their gradients summed before the step) and peft's pads into one."""
    cfg = dataclasses.replace(fast_inner, pass_tokens=64, max_grad_norm=max_grad_norm, batch_size=batch_size)
    jobs = jobs_for(tiny64.tokenizer, cfg, 4)

    single = PeftEngine(tiny64, cfg)
    expected, expected_stats = [], []
    for job in jobs:
        expected_stats += single.train([job])
        expected.append(peft_as_multi_names(single))
    single.unload()

    multi = MultiLoRAEngine(tiny64, cfg, slots=4)
    train_pass, micro = multi._train_pass, []
    multi._train_pass = lambda *a: (micro.extend(e for e in a[-1] if not e), train_pass(*a))[1]
    stats = multi.train(jobs)
    assert bool(micro) == (batch_size > 1)  # some step did span several passes
    for slot, (want, want_stats) in enumerate(zip(expected, expected_stats)):
        got = multi.adapter_state(slot)
        assert got.keys() == want.keys()
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=1e-9, atol=1e-11, msg=name)
        assert stats[slot].steps == want_stats.steps and stats[slot].tokens == want_stats.tokens
        assert stats[slot].epoch_losses == pytest.approx(want_stats.epoch_losses, rel=1e-6)  # float32 losses
        b = next(p for n, p in got.items() if "lora_B" in n)
        assert b.abs().sum() > 0  # it learned: B left its zero initialisation


def test_batched_answers_equal_one_by_one_answers(tiny, fast_inner):
    passages = generate_passages(3, seed=9)
    trials = [Trial("model", p, i, 0, s, "1. " + p.questions[0].answer + " matters.")
              for i, p in enumerate(passages) for s in (0, 1)]
    expected = knowledge_trials(tiny, PeftEngine(tiny, fast_inner), fast_inner, trials)
    base = load_model(ModelConfig(name=tiny.name, device="cpu", dtype="float32"))
    cfg = dataclasses.replace(fast_inner, adapters_per_pass=4)
    got = knowledge_trials(base, MultiLoRAEngine(base, cfg), cfg, trials)
    assert sorted(got) == list(range(len(trials)))
    for t, want in expected.items():
        assert [a["answer"] for a in got[t]["answers"]] == [a["answer"] for a in want["answers"]]
        assert got[t]["accuracy"] == want["accuracy"]
        assert got[t]["train"]["epoch_losses"] == pytest.approx(want["train"]["epoch_losses"], rel=1e-4)


def test_with_dropout_a_jobs_adapter_does_not_depend_on_its_pass_mates(tiny64, fast_inner):
    cfg = dataclasses.replace(fast_inner, dropout=0.3)
    jobs = jobs_for(tiny64.tokenizer, cfg, 3)
    multi = MultiLoRAEngine(tiny64, cfg, slots=3)
    multi.train([jobs[0]])
    alone = multi.adapter_state(0)
    multi.train([jobs[0], jobs[1], jobs[2]])
    together = multi.adapter_state(0)
    for name in alone:
        torch.testing.assert_close(together[name], alone[name], rtol=1e-9, atol=1e-11, msg=name)
    multi.train([dataclasses.replace(jobs[0], seed=99)])
    assert not torch.equal(multi.adapter_state(0)[name], alone[name])  # the seed does matter


def test_base_slot_is_the_base_model_and_unload_restores_it(tiny, fast_inner):
    ids = torch.tensor([tiny.tokenizer("The bridge of the old town")["input_ids"]] * 2)
    before = logits(tiny.model, ids)
    base_weights = base_state(tiny.model)
    multi = MultiLoRAEngine(tiny, fast_inner, slots=2)
    multi.train(jobs_for(tiny.tokenizer, fast_inner, 2))
    with multi.route([None, 0]):
        mixed = logits(tiny.model, ids)
    with multi.disable_adapter():
        off = logits(tiny.model, ids)
    assert torch.equal(mixed[0], before[0])  # the base slot (B = 0) is exactly the base model
    assert not torch.allclose(mixed[1], before[1])  # slot 0 learned something
    assert torch.equal(off, before)
    multi.reset()
    with multi.route([0, 1]):
        assert torch.equal(logits(tiny.model, ids), before)  # reset: every slot is the base again
    model = multi.unload()
    assert all(torch.equal(p, base_weights[n]) for n, p in model.named_parameters()), "base weights changed"
    assert torch.equal(logits(model, ids), before)


@pytest.mark.parametrize("engine_name", ["single", "batched"])
def test_merge_adds_the_adapter_into_the_weights(tiny64, fast_inner, engine_name):
    engine = make_engine(tiny64, fast_inner, engine_name)
    engine.train(jobs_for(tiny64.tokenizer, fast_inner, 1))
    ids = torch.tensor([[3, 5, 7, 11, 13]])
    with getattr(engine, "route", lambda s: __import__("contextlib").nullcontext())([0]):
        adapted = logits(tiny64.model, ids)
    merged = engine.merge_and_unload(0)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged, ids), adapted, rtol=1e-9, atol=1e-9)


def test_nan_loss_names_the_job(tiny, fast_inner):
    multi = MultiLoRAEngine(tiny, fast_inner, slots=2)
    jobs = jobs_for(tiny.tokenizer, fast_inner, 2)
    jobs[1].lr = 1e6  # a huge step: the loss blows up
    with pytest.raises(NonFiniteLoss, match="job 1 of a batched pass"):
        multi.train([dataclasses.replace(j, epochs=30) for j in jobs])


def test_passes_respect_the_memory_cap():
    width = {j: 100 - 5 * j for j in range(6)}
    passes = plan_passes(list(range(6)), width, dict.fromkeys(range(6), 1), pass_tokens=250)
    assert [j for p in passes for j in p] == list(range(6))
    assert all(len(p) * width[p[0]] <= 250 for p in passes)
    assert passes == [[0, 1], [2, 3], [4, 5]]
    # a long sequence does not pad short ones to its length
    assert plan_passes([0, 1, 2], {0: 200, 1: 30, 2: 28}, dict.fromkeys(range(3), 1), pass_tokens=4096) == [[0], [1, 2]]


def test_too_many_jobs_and_foreign_adapters_are_refused(tiny, fast_inner):
    single = PeftEngine(tiny, fast_inner)
    with pytest.raises(SealError, match="not a Linear"):
        MultiLoRAEngine(tiny, fast_inner, slots=1)
    with pytest.raises(SealError, match="2 jobs for 1 adapter slot"):
        single.train(jobs_for(tiny.tokenizer, fast_inner, 2))
    single.unload()
    multi = MultiLoRAEngine(tiny, fast_inner, slots=1)
    with pytest.raises(SealError, match="2 jobs for 1 adapter slots"):
        multi.train(jobs_for(tiny.tokenizer, fast_inner, 2))


@pytest.mark.parametrize("engine_name, slots", [("single", 1), ("batched", 2)])
def test_a_kill_loses_at_most_the_group_in_flight(tiny, fast_inner, tmp_path, engine_name, slots):
    from seal.loops.inner import run_logged
    from seal.runs import RecordLog

    cfg = dataclasses.replace(fast_inner, adapters_per_pass=slots, epochs=1)
    engine = make_engine(tiny, cfg, engine_name)
    train, calls = engine.train, {"n": 0}

    def dies_in_the_third_group(jobs, desc=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return train(jobs, desc)

    engine.train = dies_in_the_third_group
    passages = generate_passages(6, seed=2)
    trials = [Trial("passage", p, i, 0, 0) for i, p in enumerate(passages)]
    domain = KnowledgeTrials(tiny.tokenizer, cfg, Grader("contains"))
    log = RecordLog(tmp_path / "trials.jsonl")
    with pytest.raises(KeyboardInterrupt):
        run_logged(engine, domain, trials, log, desc=None)
    assert len(list(log)) == 2 * slots  # every finished group is on disk; only the third is lost
    engine.train = train
    records = run_logged(engine, domain, trials, log, desc=None)
    assert sorted(r["passage_index"] for r in records) == list(range(6))  # the rest, nothing repeated


def test_trials_added_on_resume_train_alone_and_finished_ones_never_again(tiny, fast_inner, tmp_path):
    """A row added to a finished table (`seal eval --resume RUN --train-run ...`) trains its own trials only,
    though the groups formed over all trials now mix them with finished ones."""
    from seal.loops.inner import run_logged
    from seal.runs import RecordLog

    cfg = dataclasses.replace(fast_inner, adapters_per_pass=3, epochs=1)
    engine = make_engine(tiny, cfg, "batched")
    trained = count_training(engine)
    passages = generate_passages(6, seed=2)
    first = [Trial("passage", p, i, 0, 0) for i, p in enumerate(passages)]
    added = [Trial("passage", p, i, 1, 1) for i, p in enumerate(passages)]  # another seed: the same sizes, interleaved
    domain = KnowledgeTrials(tiny.tokenizer, cfg, Grader("contains"))
    log = RecordLog(tmp_path / "trials.jsonl")
    before = run_logged(engine, domain, first, log, desc=None)
    assert sum(trained) == 6
    trained.clear()
    records = run_logged(engine, domain, first + added, RecordLog(log.path), desc=None)
    assert sum(trained) == 6 and trained == [3, 3]  # the 6 added trials, 3 a pass; none of the first 6 again
    assert records[:6] == before and sorted(r["seed"] for r in records[6:]) == [1] * 6
    assert all(r["train"]["steps"] > 0 for r in records[6:])


@pytest.mark.parametrize("plan_kept", [True, False])
def test_added_trials_that_sort_after_finished_ones_train_alone(tiny, fast_inner, tmp_path, plan_kept):
    """Trials added on resume that sort after finished ones in a group formed over all trials: the group
    looks like one a kill cut (finished records first), so the rule of groups formed over all trials
    trained its finished trial again. The written plan (or, for a run from before plans, the conditions
    that have records) tells the added trials apart: only they train."""
    from seal.loops.inner import run_logged
    from seal.runs import RecordLog

    cfg = dataclasses.replace(fast_inner, adapters_per_pass=3, epochs=1)
    engine = make_engine(tiny, cfg, "batched")
    trained = count_training(engine)
    passages = generate_passages(4, seed=2)
    first = [Trial("passage", p, i, 0, 0) for i, p in enumerate(passages)]  # 1 sequence each: groups [3], [1]
    added = [Trial("passage-twice", p, i, 0, 0) for i, p in enumerate(passages[:2])]  # 2 each: sort after all 4
    domain = KnowledgeTrials(tiny.tokenizer, cfg, Grader("contains"))
    log = RecordLog(tmp_path / "trials.jsonl")
    before = run_logged(engine, domain, first, log, desc=None)
    plan = tmp_path / "trials.groups.jsonl"
    assert [len(line["group"]) for line in RecordLog(plan)] == [3, 1] and trained == [3, 1]
    if not plan_kept:
        plan.unlink()  # a run written before plans were
    trained.clear()
    records = run_logged(engine, domain, first + added, RecordLog(log.path), desc=None)
    assert trained == [2]  # over all 6 trials the groups are [3] and [1 finished, 2 added]: that one trained 3
    assert records[:4] == before and [r["condition"] for r in records[4:]] == ["passage-twice"] * 2
    assert [len(line["group"]) for line in RecordLog(plan)][-1] == 2  # the added group is planned too


def test_trials_that_repeat_one_work_train_it_once_and_share_its_record(tiny, fast_inner, tmp_path):
    """Two trials with the same input, self-edit and seed are one fine-tune (a collapsed generator writes one
    recipe many times): it is trained once and the copy carries its answers; a kill between the two records
    trains that work again on resume and writes only the copy."""
    from seal.loops.inner import run_logged
    from seal.runs import RecordLog

    cfg = dataclasses.replace(fast_inner, adapters_per_pass=2, epochs=1)
    engine = make_engine(tiny, cfg, "batched")
    jobs = count_training(engine, jobs=True)
    passages = generate_passages(3, seed=2)
    trials = [Trial("passage", p, i, e, seed) for i, p in enumerate(passages) for e, seed in ((0, 0), (1, 0), (2, 1))]
    domain = KnowledgeTrials(tiny.tokenizer, cfg, Grader("contains"))
    log = RecordLog(tmp_path / "trials.jsonl")
    records = {(r["passage_index"], r["self_edit_index"]): r for r in run_logged(engine, domain, trials, log, desc=None)}
    assert len(records) == 9 and len(jobs) == 6  # 3 passages x 2 seeds
    for i in range(3):
        first, copy, other = records[i, 0], records[i, 1], records[i, 2]
        assert copy["same_as"] == {"condition": "passage", "self_edit_index": 0}
        assert "same_as" not in first and "same_as" not in other  # another seed is another fine-tune
        assert (copy["answers"], copy["accuracy"], copy["train"]) == (first["answers"], first["accuracy"], first["train"])
        assert copy["timings"] == {"train_s": 0.0, "eval_s": 0.0} and first["timings"]["train_s"] > 0
    lines = log.path.read_text().splitlines()
    lost = next(k for k, line in enumerate(lines) if '"same_as"' in line)
    log.path.write_text("".join(line + "\n" for k, line in enumerate(lines) if k != lost))
    jobs.clear()
    again = run_logged(engine, domain, trials, RecordLog(log.path), desc=None)
    assert len(again) == 9 and 1 <= len(jobs) <= 2  # the lost copy's group, trained again
    assert {json_key(r) for r in again} == {json_key(r) for r in records.values()}
    back = [r for r in again if r.get("same_as")]
    assert all(r["answers"] == records[r["passage_index"], 0]["answers"] for r in back)


def count_training(engine, jobs: bool = False) -> list:
    """Wrap `engine.train` to record each call's group size (or, with `jobs`, the jobs themselves)."""
    train, seen = engine.train, []

    def counting(group, desc=None):
        seen.extend(group if jobs else [len(group)])
        return train(group, desc)

    engine.train = counting
    return seen


def json_key(record: dict) -> tuple:
    return record["passage_index"], record["self_edit_index"], record["seed"]


# --- projections that share an input compute their A products in one matmul ---------------------------------

def test_fused_a_factors_train_the_same_adapters_as_separate_ones(tiny64, fast_inner):
    cfg = dataclasses.replace(fast_inner, target_modules=["q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"])
    jobs = jobs_for(tiny64.tokenizer, cfg, 3)
    separate = MultiLoRAEngine(tiny64, cfg, slots=3)
    assert separate.shared_groups == 0
    separate.train(jobs)
    want = [separate.adapter_state(s) for s in range(3)]
    separate.unload()
    fused = MultiLoRAEngine(tiny64, cfg, slots=3, fuse=True)
    layers = tiny64.model.config.num_hidden_layers
    assert fused.shared_groups == 2 * layers  # q/k/v and gate/up of every block
    fused.train(jobs)
    assert all(layer.shared is not None and layer.shared.enabled for _, _, layer in fused.layers)  # it did fuse
    for slot in range(3):
        got = fused.adapter_state(slot)
        for name in want[slot]:
            torch.testing.assert_close(got[name], want[slot][name], rtol=1e-9, atol=1e-11, msg=name)
    assert any(got[n].abs().sum() > 0 for n in got if "v_proj.lora_B" in n)


def test_a_group_called_on_different_inputs_stops_fusing_and_stays_exact():
    from seal.engines.multi_lora_layer import MultiLoRALinear, Router, share_inputs

    torch.manual_seed(0)
    router = Router()
    parent = torch.nn.Module()
    layers = [(parent, name, MultiLoRALinear(torch.nn.Linear(6, 5), 3, 2, 4.0, 0.0, router))
              for name in ("q_proj", "k_proj")]
    for _, _, layer in layers:
        torch.nn.init.normal_(layer.lora_A)
        torch.nn.init.normal_(layer.lora_B)
    assert share_inputs(layers) == 1
    q, k = layers[0][2], layers[1][2]
    x = torch.randn(2, 4, 6)
    router.rows = torch.tensor([0, 2])

    def reference(layer, inp):
        a, b = layer.lora_A[router.rows], layer.lora_B[router.rows]
        return layer.base(inp) + layer.scaling * torch.bmm(torch.bmm(inp, a.transpose(1, 2)), b.transpose(1, 2))

    torch.testing.assert_close(q(x), reference(q, x))  # one input for both: fused
    torch.testing.assert_close(k(x), reference(k, x))
    assert q.shared is not None and q.shared.enabled
    torch.testing.assert_close(q(x), reference(q, x))
    torch.testing.assert_close(k(2 * x), reference(k, 2 * x))  # k on another input: the group switches off
    assert q.shared is None and k.shared is None
    torch.testing.assert_close(q(x), reference(q, x))


def test_pass_size_is_fitted_to_free_memory_by_a_probe_that_changes_nothing(tiny, fast_inner):
    multi = MultiLoRAEngine(tiny, fast_inner, slots=2)
    multi.train(jobs_for(tiny.tokenizer, fast_inner, 2))
    before = [multi.adapter_state(s) for s in range(2)]
    calls = []
    # a probe of 2 rows x 256 tokens that peaks 512 KiB above its start, with 1 GiB free: 1 KiB a token
    memory = (lambda: calls.append("start") or 10 * 2 ** 20, lambda: 10 * 2 ** 20 + 512 * 2 ** 10, lambda: 2 ** 30)
    fitted = multi.fit_pass_tokens(memory, share=0.5, probe_len=256)
    assert calls == ["start"]
    assert fitted == 2 ** 19  # half of 1 GiB over 1 KiB a token
    assert multi.fit_pass_tokens((memory[0], memory[1], lambda: 2 ** 20)) == fast_inner.pass_tokens  # never below
    for slot, want in enumerate(before):  # the probe took no optimiser step
        for name, tensor in multi.adapter_state(slot).items():
            assert torch.equal(tensor, want[name]), name
    assert all(layer.active is None for _, _, layer in multi.layers) and not multi.model.training


def test_compiled_blocks_train_the_same_adapters_and_leave_decoding_eager(tiny64, fast_inner):
    loaded = tiny64
    jobs = jobs_for(loaded.tokenizer, fast_inner, 3)
    eager = MultiLoRAEngine(loaded, fast_inner, slots=3)
    eager.train(jobs)
    want = [eager.adapter_state(s) for s in range(3)]
    eager.unload()
    engine = MultiLoRAEngine(loaded, dataclasses.replace(fast_inner, compile=True), slots=3)
    blocks = engine.compiled.blocks
    assert len(blocks) == loaded.model.config.num_hidden_layers
    calls = []
    original = engine.compiled.calls[0]
    engine.compiled.calls[0] = lambda *a, **k: (calls.append(1), original(*a, **k))[1]
    engine.train(jobs)
    assert calls  # the first block's forward went through its compiled call
    assert all(block._compiled_call_impl is None for block in blocks)  # decoding stays eager
    # The loss is taken in float32 (as transformers' is), so the compiled graph's reordered float64 sums
    # round differently there and the large test learning rates grow that: 1e-5 of a factor's scale here,
    # where a wrong row or adapter would be of order 1.
    for slot in range(3):
        got = engine.adapter_state(slot)
        for name in want[slot]:
            scale = want[slot][name].abs().max()
            assert (got[name] - want[slot][name]).abs().max() <= 1e-3 * scale, name
    assert any(got[n].abs().sum() > 0 for n in got if "lora_B" in n)


def test_compile_is_refused_for_the_single_engine(fast_inner):
    with pytest.raises(SealError, match="inner.compile"):
        dataclasses.replace(fast_inner, compile=True, engine="single").validate()


def test_compile_without_a_cpp_compiler_is_one_clear_error(tiny, fast_inner, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(SealError, match="C\\+\\+ compiler"):
        MultiLoRAEngine(tiny, dataclasses.replace(fast_inner, compile=True), slots=2)
    assert not any(type(m).__name__ == "MultiLoRALinear" for m in tiny.model.modules())  # the model untouched

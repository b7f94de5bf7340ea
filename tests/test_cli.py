"""The `seal` command: bad input is one clear line and a non-zero exit; a killed run resumes exactly."""

from __future__ import annotations

import importlib.util
import json

import pytest

from helpers import kill_after_records, nan_model

from seal.cli import main
from seal.domains.knowledge.fictional import generate_passages
from seal.domains.knowledge.passages import save_passages
from seal.errors import SealError


def tiny_flags(model_path, runs_root) -> list[str]:
    return ["--model", str(model_path), "--device", "cpu", "--runs-root", str(runs_root), "--rank", "4",
            "--alpha", "8", "--lr", "0.05", "--epochs", "2", "--target-modules", "q_proj,v_proj"]


def data_file(tmp_path, n=2, self_edits=True) -> str:
    passages = generate_passages(n, seed=4)
    if self_edits:
        from dataclasses import replace

        passages = [replace(p, self_edits=("1. It is old.\n2. It is far.", "It is new.")) for p in passages]
    path = tmp_path / "passages.json"
    save_passages(passages, path)
    return str(path)


def run_cli(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def assert_one_clear_line(err: str, needle: str) -> None:
    assert "Traceback" not in err
    error_lines = [line for line in err.splitlines() if line.startswith("seal: error:")]
    assert len(error_lines) == 1, err
    assert needle in error_lines[0], error_lines[0]


@pytest.mark.parametrize("make_input, needle", [
    (lambda tmp: str(tmp / "missing.json"), "passage file not found"),
    (lambda tmp: (tmp / "bad.json").write_text("[{oops") and str(tmp / "bad.json"), "is not valid JSON"),
    (lambda tmp: (tmp / "noq.json").write_text(json.dumps([{"title": "T", "context": "C", "questions": []}]))
     and str(tmp / "noq.json"), "has no questions"),
    (lambda tmp: (tmp / "empty.json").write_text(json.dumps([{"title": "T", "context": "C", "self_edits": [""],
                                                               "questions": [{"question": "Q", "answer": "A"}]}]))
     and str(tmp / "empty.json"), "self-edit 0 is empty"),
])
def test_bad_data_is_one_line_and_exit_2_and_no_run_dir(tmp_path, capsys, tiny_model_path, make_input, needle):
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["adapt", "--data", make_input(tmp_path), *tiny_flags(tiny_model_path, runs)])
    assert code == 2
    assert_one_clear_line(err, needle)
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("flags, needle", [
    (["--lr", "50"], "inner.lr must be in (0, 1]"),
    (["--epochs", "0"], "inner.epochs must be between"),
    (["--seeds", "1,1"], "must not repeat"),
    (["--condition", "nonsense"], "unknown condition 'nonsense'"),
    (["--temperature", "-1"], "sampling.temperature"),
    (["--prompt", "none", "--condition", "model"], "prompt 'none' samples no self-edits"),
    (["--no-passage", "--condition", "passage"], "leaves it nothing to train on"),
    (["--reference", "data", "--condition", "passage"], "reference 'data' is not one of the rows"),
    (["--condition", "model:poems"], "model:FAMILY takes a prompt family"),
])
def test_absurd_settings_are_rejected(tmp_path, capsys, tiny_model_path, flags, needle):
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), *tiny_flags(tiny_model_path, tmp_path / "r"), *flags])
    assert code == 2
    assert_one_clear_line(err, needle)


def test_unknown_model_offline_is_one_line(tmp_path, capsys):
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), "--model", "no-such-org/no-such-model-xyz",
                                 "--runs-root", str(tmp_path / "r"), "--condition", "passage"])
    assert code == 2
    assert_one_clear_line(err, "could not load model 'no-such-org/no-such-model-xyz'")


def test_nan_loss_is_one_line_and_exit_1(tmp_path, capsys, tiny_model_path):
    """A corrupted checkpoint (a NaN weight) makes the first loss NaN: the run stops with a clear line."""
    broken = nan_model(tiny_model_path, tmp_path / "broken-model")
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), "--condition", "passage",
                                 *tiny_flags(broken, tmp_path / "r")])
    assert code == 1
    assert_one_clear_line(err, "training loss became nan")


def test_adapt_writes_a_complete_run(tmp_path, capsys, tiny_model_path):
    runs = tmp_path / "runs"
    code = main(["adapt", "--data", data_file(tmp_path), "--condition", "passage", "--condition", "data",
                 "--seeds", "0,1", *tiny_flags(tiny_model_path, runs)])
    assert code == 0
    [run_dir] = list(runs.iterdir())
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    # 2 passages x (1 passage-only + 2 stored self-edits) x 2 seeds
    assert len(trials) == 12
    assert {t["condition"] for t in trials} == {"passage", "data"}
    questions = {p.id: len(p.questions) for p in generate_passages(2, seed=4)}
    assert all(t["status"] == "ok" and len(t["answers"]) == questions[t["passage_id"]] for t in trials)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["conditions"]) == {"baseline", "passage", "data"}
    assert "| passage |" in (run_dir / "report.md").read_text()
    # A second run never reuses the first one's directory.
    assert main(["adapt", "--data", data_file(tmp_path), "--condition", "passage",
                 *tiny_flags(tiny_model_path, runs)]) == 0
    assert len(list(runs.iterdir())) == 2


def test_killed_run_resumes_without_losing_or_repeating_a_trial(tmp_path, tiny_model_path):
    runs = tmp_path / "runs"
    flags = ["adapt", "--data", data_file(tmp_path, n=3), "--condition", "passage", "--condition", "data",
             "--seeds", "0,1", *tiny_flags(tiny_model_path, runs)]
    flags[flags.index("--epochs") + 1] = "40"  # slow enough to be killed midway
    trials_path = kill_after_records(flags, runs, 3)
    assert trials_path is not None, "the run never wrote three trials"
    before = trials_path.read_text()
    n_before = len(before.splitlines())
    total = 3 * 3 * 2
    assert 3 <= n_before < total, "the run finished before it could be killed"
    status_path = trials_path.with_name("trials.progress.json")  # what `seal runs` reads: all trials, done so far
    status = json.loads(status_path.read_text())
    assert status["trials"] == total and status["finished"] <= n_before  # written after each group, so it may lag
    with open(trials_path, "a") as f:  # as if the kill had landed in the middle of a write
        f.write('{"condition": "data", "passage_id": "tor')

    assert main(["adapt", "--resume", str(trials_path.parent)]) == 0
    status = json.loads(status_path.read_text())
    assert (status["trials"], status["finished"], status["eta_s"]) == (total, total, 0)

    after = trials_path.read_text()
    assert after.startswith(before), "records written before the kill changed"
    keys = [(r["condition"], r["passage_id"], r["self_edit_index"], r["seed"])
            for r in map(json.loads, after.splitlines())]
    assert len(keys) == total and len(set(keys)) == total
    assert len((trials_path.parent / "baselines.jsonl").read_text().splitlines()) == 3


def test_self_edits_sampled_from_another_generator(tmp_path, tiny_model_path):
    runs = tmp_path / "runs"
    argv = ["adapt", "--data", data_file(tmp_path, self_edits=False), "--condition", f"generator:{tiny_model_path}",
            "--condition", "model", "-k", "2", "--max-new-tokens", "12", *tiny_flags(tiny_model_path, runs)]
    assert main(argv) == 0
    [run_dir] = list(runs.iterdir())
    logs = sorted(p.name for p in run_dir.glob("self_edits*.jsonl"))
    assert len(logs) == 2 and logs[0].startswith("self_edits-") and logs[1] == "self_edits.jsonl"
    for name in logs:
        records = [json.loads(line) for line in (run_dir / name).read_text().splitlines()]
        assert len(records) == 2 and all(len(r["self_edits"]) == 2 for r in records)
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 2 * 2 * 2  # 2 conditions x 2 passages x k=2


def test_model_family_conditions_sample_with_their_own_prompt(tmp_path, tiny_model_path):
    """model:FAMILY rows: the model's self-edits written with another prompt family, beside the default family's."""
    runs = tmp_path / "runs"
    argv = ["adapt", "--data", data_file(tmp_path, self_edits=False), "--condition", "model", "--condition",
            "model:self-qa", "--condition", "model:rewrite", "-k", "1", "--max-new-tokens", "12",
            *tiny_flags(tiny_model_path, runs)]
    assert main(argv) == 0
    [run_dir] = list(runs.iterdir())
    prompts = {}
    for name in ("self_edits.jsonl", "self_edits-model-self-qa.jsonl", "self_edits-model-rewrite.jsonl"):
        records = [json.loads(line) for line in (run_dir / name).read_text().splitlines()]
        assert len(records) == 2
        prompts[name] = {r["prompt"] for r in records}
    assert list(prompts.values()) == [{"implications"}, {"self-qa"}, {"rewrite"}]
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert sorted({t["condition"] for t in trials}) == ["model", "model:rewrite", "model:self-qa"]
    assert len(trials) == 3 * 2


def test_a_rest_em_generator_row_samples_as_its_run_did(tmp_path, tiny_model_path):
    """--train-run of a run that sampled rewrites of up to 24 tokens: its generator, and the generator the run
    started from (generator:RUN), are asked for rewrites of up to 24 tokens, while the table's own `model`
    row keeps the table's sampling (implications, 3 tokens)."""
    import shutil

    from transformers import AutoTokenizer

    train_run = tmp_path / "20261130-211958-train-rewrite"
    shutil.copytree(tiny_model_path, train_run / "round-0" / "generator")
    (train_run / "round-0" / "round.json").write_text(json.dumps({"generator_out": "round-0/generator"}))
    (train_run / "config.yaml").write_text(f"command: train\nmodel:\n  name: {tiny_model_path}\n"
                                           "sampling:\n  prompt: rewrite\n  max_new_tokens: 24\n")
    runs = tmp_path / "runs"
    assert main(["eval", "--data", data_file(tmp_path, self_edits=False), "--condition", "model", "--condition",
                 f"generator:{train_run}", "--train-run", str(train_run), "-k", "1", "--max-new-tokens", "3",
                 *tiny_flags(tiny_model_path, runs)]) == 0
    [run_dir] = list(runs.iterdir())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    [start_log] = run_dir.glob("self_edits-*-train-rewrite.jsonl")
    [round_log] = run_dir.glob("self_edits-*-train-rewrite-round-0-generator.jsonl")
    logs = {"model": run_dir / "self_edits.jsonl", "start": start_log, "round 0": round_log}
    prompts, longest = {}, {}
    for name, path in logs.items():
        records = [json.loads(line) for line in path.read_text().splitlines()]
        prompts[name] = {r["prompt"] for r in records}
        longest[name] = max(len(tokenizer(e, add_special_tokens=False)["input_ids"])
                            for r in records for e in r["self_edits"])
    assert prompts == {"model": {"implications"}, "start": {"rewrite"}, "round 0": {"rewrite"}}
    assert longest["model"] <= 8 and longest["start"] > 12 and longest["round 0"] > 12, longest  # re-tokenised
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert {t["condition"] for t in trials} == {"model", f"generator:{train_run}",
                                                 f"generator:{train_run / 'round-0' / 'generator'}"}


def test_cpt_trains_one_adapter_per_condition_and_seed(tmp_path, tiny_model_path):
    runs = tmp_path / "runs"
    argv = ["cpt", "--data", data_file(tmp_path, n=3), "--condition", "passage", "--condition", "data",
            "--seeds", "0,1", *tiny_flags(tiny_model_path, runs)]
    assert main(argv) == 0
    [run_dir] = list(runs.iterdir())
    runs_ = [json.loads(line) for line in (run_dir / "cpt.jsonl").read_text().splitlines()]
    assert [(r["condition"], r["seed"]) for r in runs_] == [("passage", 0), ("passage", 1), ("data", 0), ("data", 1)]
    # passage: 3 passages; data: 3 passages + 3 x (2 + 1) self-edit lines
    assert [r["n_sequences"] for r in runs_] == [3, 3, 12, 12]
    assert all(len(r["passages"]) == 3 for r in runs_)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["setting"] == "cpt" and summary["conditions"]["data"]["trials"] == 6


def test_eval_adds_a_condition_per_train_round(tmp_path, tiny_model_path):
    from seal.cli import build_parser, config_from_args

    for r, out in enumerate([tmp_path / "round-0" / "generator", tmp_path / "round-1" / "generator"]):
        out.mkdir(parents=True)
        (out.parent / "round.json").write_text(json.dumps({"generator_out": str(out)}))
    args = build_parser().parse_args(["eval", "--condition", "passage", "--train-run", str(tmp_path)])
    assert config_from_args(args).conditions == ["passage", f"generator:{tmp_path / 'round-0' / 'generator'}",
                                                 f"generator:{tmp_path / 'round-1' / 'generator'}"]
    args = build_parser().parse_args(["eval", "--condition", "passage", "--train-run", str(tmp_path / "round-1")])
    assert config_from_args(args).conditions == ["passage", f"generator:{tmp_path / 'round-1' / 'generator'}"]
    (tmp_path / "round-2").mkdir()  # a round that kept nothing passes its generator on unchanged
    (tmp_path / "round-2" / "round.json").write_text(json.dumps({"generator_out": "round-1/generator"}))
    args = build_parser().parse_args(["eval", "--train-run", str(tmp_path / "round-2")])
    assert config_from_args(args).conditions == ["passage", "model", f"generator:{tmp_path / 'round-1' / 'generator'}"]
    (tmp_path / "round-3").mkdir()  # a run's first round that kept nothing: still the base model
    (tmp_path / "round-3" / "round.json").write_text(json.dumps({"generator_out": str(tiny_model_path / "nowhere")}))
    with pytest.raises(SealError, match="saved no generator"):
        config_from_args(build_parser().parse_args(["eval", "--train-run", str(tmp_path / "round-3")]))


def test_an_arc_run_that_names_no_condition_gets_the_arc_rows(tmp_path):
    from seal.cli import build_parser, config_from_args

    def conditions(*argv):
        return config_from_args(build_parser().parse_args(list(argv))).conditions

    assert conditions("eval", "--domain", "arc", "--arc-tasks", "00576224") == ["icl", "model"]
    assert conditions("eval", "--domain", "arc", "--condition", "oracle") == ["oracle"]
    assert conditions("eval") == ["passage", "model"]  # a knowledge run keeps its own
    named = tmp_path / "c.yaml"
    named.write_text("domain: arc\nconditions: [grid]\n")
    assert conditions("eval", "--config", str(named)) == ["grid"]
    unnamed = tmp_path / "d.yaml"
    unnamed.write_text("domain: arc\n")
    assert conditions("eval", "--config", str(unnamed)) == ["icl", "model"]


def test_generate_then_adapt_on_the_generated_self_edits(tmp_path, tiny_model_path):
    runs = tmp_path / "runs"
    common = ["--data", data_file(tmp_path, n=3, self_edits=False), "--model", str(tiny_model_path),
              "--device", "cpu", "--runs-root", str(runs), "--max-new-tokens", "10", "-k", "2", "--gen-batch-size", "2"]
    assert main(["generate", *common]) == 0
    [gen_dir] = list(runs.iterdir())
    records = [json.loads(line) for line in (gen_dir / "self_edits.jsonl").read_text().splitlines()]
    assert [r["passage_index"] for r in records] == [0, 1, 2] and all(len(r["self_edits"]) == 2 for r in records)

    # A generation killed after its first chunk resumes with the same samples it would have drawn.
    lines = (gen_dir / "self_edits.jsonl").read_text().splitlines()
    (gen_dir / "self_edits.jsonl").write_text("\n".join(lines[:2]) + "\n")
    assert main(["generate", "--resume", str(gen_dir)]) == 0
    assert (gen_dir / "self_edits.jsonl").read_text().splitlines() == lines

    assert main(["adapt", "--data", data_file(tmp_path, n=3, self_edits=False), "--condition", str(gen_dir),
                 *tiny_flags(tiny_model_path, runs), "--name", "on-generated"]) == 0
    [adapt_dir] = list(runs.glob("*on-generated"))
    trials = [json.loads(line) for line in (adapt_dir / "trials.jsonl").read_text().splitlines()]
    by_id = {r["passage_id"]: r["self_edits"] for r in records}
    assert len(trials) == 6 and all(t["self_edit"] == by_id[t["passage_id"]][t["self_edit_index"]] for t in trials)


def test_data_condition_without_stored_self_edits_fails_before_any_work(tmp_path, capsys, tiny_model_path):
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path, self_edits=False), "--condition", "data",
                                 *tiny_flags(tiny_model_path, runs)])
    assert code == 2
    assert_one_clear_line(err, "condition 'data' needs self_edits")
    assert not runs.exists()


def test_a_generate_run_mixing_prompt_families_splits_each_passage_by_its_own(tmp_path):
    from seal.config import RunConfig
    from seal.domains.knowledge.trials import plan_trials
    from seal.runs import RecordLog

    passages = generate_passages(2, seed=4)
    log = RecordLog(tmp_path / "self_edits.jsonl")
    log.append({"passage_id": passages[0].id, "prompt": "self-qa", "self_edits": ["Question: Who?\nAnswer: Ana"]})
    log.append({"passage_id": passages[1].id, "prompt": "rewrite", "self_edits": ["One.\n\nTwo."]})
    config = RunConfig(conditions=[str(tmp_path)]).validate()
    families = [t.family for t in plan_trials(config, passages, {})]
    assert families == ["self-qa", "rewrite"]


def test_eval_table_gives_each_row_its_paired_change(tmp_path, capsys, tiny_model_path):
    runs = tmp_path / "runs"
    code = main(["adapt", "--data", data_file(tmp_path, n=3), "--condition", "data", "--condition", "passage",
                 "--seeds", "0,1", *tiny_flags(tiny_model_path, runs)])
    assert code == 0
    [run_dir] = list(runs.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["reference"] == "passage"
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert trials[0]["condition"] == "passage"  # the shorter trials run first; the table keeps the run's order
    assert list(summary["conditions"]) == ["baseline", "data", "passage"]
    per = {}  # each passage's mean over its self-edits and seeds, per condition
    for t in trials:
        per.setdefault(t["condition"], {}).setdefault(t["passage_id"], []).append(t["accuracy"])
    diffs = [sum(per["data"][p]) / 4 - sum(per["passage"][p]) / 2 for p in per["passage"]]
    paired = summary["conditions"]["data"]["paired"]
    assert paired["passages"] == 3 and paired["mean"] == pytest.approx(sum(diffs) / 3)
    assert summary["conditions"]["passage"]["paired"] is None
    report = (run_dir / "report.md").read_text()
    assert "change vs passage (paired)" in report and f"{100 * paired['mean']:+.1f} ± " in report


def test_data_path_condition_takes_the_self_edits_of_another_file(tmp_path, capsys, tiny_model_path):
    from dataclasses import replace

    main_file = data_file(tmp_path, n=2)
    other = tmp_path / "other.json"
    passages = [replace(p, self_edits=("It is from the other file.",)) for p in generate_passages(2, seed=4)]
    save_passages(passages, other)
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["adapt", "--data", main_file, "--condition", "data", "--condition", f"data:{other}",
                                 *tiny_flags(tiny_model_path, runs)])
    assert code == 0, err
    [run_dir] = list(runs.iterdir())
    trials = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    mine = [t for t in trials if t["condition"] == f"data:{other}"]
    assert len(mine) == 2 and {t["self_edit"] for t in mine} == {"It is from the other file."}
    assert {t["self_edit"] for t in trials if t["condition"] == "data"} == {"1. It is old.\n2. It is far.", "It is new."}
    save_passages(passages[:1], other)  # now one passage has none there
    code, err = run_cli(capsys, ["adapt", "--data", main_file, "--condition", f"data:{other}",
                                 *tiny_flags(tiny_model_path, tmp_path / "r2")])
    assert code == 2
    assert_one_clear_line(err, "the file has no self-edits for passage 1")
    assert not (tmp_path / "r2").exists() or not any((tmp_path / "r2").iterdir())
    code, err = run_cli(capsys, ["adapt", "--data", main_file, "--condition", f"data:{tmp_path / 'missing.json'}",
                                 *tiny_flags(tiny_model_path, tmp_path / "r3")])
    assert code == 2
    assert_one_clear_line(err, "missing.json")
    assert not (tmp_path / "r3").exists() or not any((tmp_path / "r3").iterdir())


def test_compare_with_adds_a_paired_column_per_row(tmp_path, capsys, tiny_model_path):
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path, n=2), "--condition", "passage", "--condition",
                                 "data", "--reference", "passage", "--compare-with", "data", "--seeds", "0,1",
                                 *tiny_flags(tiny_model_path, runs)])
    assert code == 0, err
    [run_dir] = list(runs.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    c = summary["conditions"]
    assert summary["compare_with"] == ["data"] and c["data"]["paired_with"] == {"data": None}
    assert c["passage"]["paired_with"]["data"]["mean"] == pytest.approx(-c["data"]["paired"]["mean"])
    report = (run_dir / "report.md").read_text()
    assert "| vs data: passages.json (paired) |" in report and "| passage |" in report  # the data row by its file
    assert main(["report", str(run_dir)]) == 0 and "vs data: passages.json (paired)" in (run_dir / "report.html").read_text()
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path, n=2), "--condition", "passage",
                                 "--compare-with", "model", *tiny_flags(tiny_model_path, tmp_path / "r2")])
    assert code == 2
    assert_one_clear_line(err, "reference 'model' is not one of the rows")


@pytest.mark.parametrize("flags, needle", [
    (["--backend", "vllm", "--rank", "64"], "inner.rank 64 is above model.vllm.max_lora_rank 32"),
    pytest.param(["--backend", "vllm"], "model.backend vllm needs vLLM: pip install",
                 marks=pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")),
])
def test_backend_vllm_that_cannot_run_is_one_line_before_the_run(tmp_path, capsys, tiny_model_path, flags, needle):
    runs = tmp_path / "r"
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), *tiny_flags(tiny_model_path, runs), *flags])
    assert code == 2
    assert_one_clear_line(err, needle)
    assert not runs.exists() or not any(runs.iterdir())


def test_resume_with_train_run_adds_its_generators_and_repeats_no_trial(tmp_path, tiny_model_path):
    runs = tmp_path / "runs"
    assert main(["eval", "--data", data_file(tmp_path), "--condition", "passage", *tiny_flags(tiny_model_path, runs),
                 "-k", "1", "--max-new-tokens", "8", "--name", "table"]) == 0
    [run_dir] = list(runs.iterdir())
    before = (run_dir / "trials.jsonl").read_text().splitlines()
    train_run = tmp_path / "train"
    (train_run / "round-0").mkdir(parents=True)
    (train_run / "round-0" / "round.json").write_text(json.dumps({"generator_out": str(tiny_model_path)}))

    assert main(["eval", "--resume", str(run_dir), "--train-run", str(train_run)]) == 0
    after = (run_dir / "trials.jsonl").read_text().splitlines()
    row = f"generator:{tiny_model_path}"
    assert after[:len(before)] == before
    assert sorted(json.loads(line)["condition"] for line in after[len(before):]) == [row, row]
    assert row in (run_dir / "config.yaml").read_text()
    assert row in json.loads((run_dir / "summary.json").read_text())["conditions"]

    assert main(["eval", "--resume", str(run_dir), "--train-run", str(train_run)]) == 0
    assert (run_dir / "trials.jsonl").read_text().splitlines() == after


def test_resume_with_condition_adds_that_row_and_bad_input_leaves_the_run_as_it_was(tmp_path, tiny_model_path,
                                                                                      capsys):
    runs = tmp_path / "runs"
    assert main(["eval", "--data", data_file(tmp_path), "--condition", "passage", *tiny_flags(tiny_model_path, runs),
                 "-k", "1", "--max-new-tokens", "8", "--name", "table"]) == 0
    [run_dir] = list(runs.iterdir())
    trials, config = run_dir / "trials.jsonl", run_dir / "config.yaml"
    before, config_before = trials.read_text().splitlines(), config.read_text()

    code, err = run_cli(capsys, ["eval", "--resume", str(run_dir), "--condition", f"data:{tmp_path / 'missing.json'}"])
    assert code == 2
    assert_one_clear_line(err, "passage file not found")
    assert config.read_text() == config_before and trials.read_text().splitlines() == before

    assert main(["eval", "--resume", str(run_dir), "--condition", "model:rewrite", "--condition", "passage"]) == 0
    after = trials.read_text().splitlines()
    assert after[:len(before)] == before
    assert [json.loads(line)["condition"] for line in after[len(before):]] == ["model:rewrite"] * 2
    assert "model:rewrite" in config.read_text()
    records = (run_dir / "self_edits-model-rewrite.jsonl").read_text().splitlines()
    assert {json.loads(line)["prompt"] for line in records} == {"rewrite"}


def test_self_edits_from_an_earlier_run_are_trained_on_not_sampled_again(tmp_path, capsys, tiny_model_path,
                                                                         monkeypatch):
    runs = tmp_path / "runs"
    sampling = ["-k", "1", "--max-new-tokens", "8"]
    assert main(["eval", "--data", data_file(tmp_path), "--condition", "model", *tiny_flags(tiny_model_path, runs),
                 *sampling, "--name", "single"]) == 0
    [single] = list(runs.iterdir())

    import seal.generation

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled again")

    monkeypatch.setattr(seal.generation, "run_here", no_sampling)  # what samples each batch of self-edits
    assert main(["cpt", "--data", data_file(tmp_path), "--condition", "model", *tiny_flags(tiny_model_path, runs),
                 *sampling, "--self-edits-from", str(single), "--name", "cpt"]) == 0
    [cpt] = list(runs.glob("*-cpt"))
    assert (cpt / "self_edits.jsonl").read_text() == (single / "self_edits.jsonl").read_text()
    [record] = [json.loads(line) for line in (cpt / "cpt.jsonl").read_text().splitlines()]
    edits = [json.loads(line)["self_edits"] for line in (single / "self_edits.jsonl").read_text().splitlines()]
    assert record["n_sequences"] > 2 and edits  # the passages and their reused self-edits were trained on

    capsys.readouterr()
    code, err = run_cli(capsys, ["cpt", "--data", data_file(tmp_path), "--condition", "model",
                                 *tiny_flags(tiny_model_path, runs), *sampling, "--temperature", "0.9",
                                 "--self-edits-from", str(single), "--name", "other"])
    assert code == 2
    assert_one_clear_line(err, "it sampled otherwise (temperature")
    assert not list(runs.glob("*-other"))

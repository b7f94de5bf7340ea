"""Run directories that survive anything: one writer, atomic files, typed configs, honest resumes, retries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from seal.config import RunConfig
from seal.errors import SealError
from seal.runs import clean_temporaries, load_run_config, lock_run, write_atomic
from test_cli import assert_one_clear_line, data_file, run_cli, tiny_flags

SRC = Path(__file__).resolve().parents[1] / "src"


def seal_process(*argv: str, cwd=None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "seal.cli", *argv], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# 1. one writer at a time ------------------------------------------------------------------------------------------

def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", f"import sys, time; sys.path.insert(0, {str(SRC)!r}); "
                               f"from seal.runs import lock_run; lock_run({str(tmp_path)!r}); print('held', flush=True); "
                               "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SealError, match=f"in use by another seal process \\(pid {holder.pid}\\)"):
            lock_run(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    lock_run(tmp_path)  # the lock ends with its process, however it ends


def test_processes_resuming_one_run_at_once_end_with_exactly_the_planned_trials(tmp_path, tiny_model_path):
    runs = tmp_path / "runs"
    config = ["adapt", "--data", data_file(tmp_path, n=3), "--condition", "passage", "--condition", "data",
              "--seeds", "0,1", *tiny_flags(tiny_model_path, runs)]
    first = seal_process(*config)
    line = first.stdout.readline()  # "seal adapt: run directory ..." once the run exists
    first.kill()
    first.wait()
    run_dir = line.strip().rsplit(" ", 1)[-1]
    resumers = [seal_process("adapt", "--resume", run_dir) for _ in range(4)]
    outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in resumers]
    codes = [code for code, _ in outcomes]
    assert codes.count(0) >= 1 and set(codes) <= {0, 2}, outcomes
    for code, err in outcomes:
        if code == 2:
            assert_one_clear_line(err, "is in use by another seal process")
    keys = [(t["condition"], t["passage_id"], t["self_edit_index"], t["seed"])
            for t in map(json.loads, (Path(run_dir) / "trials.jsonl").read_text().splitlines())]
    assert len(keys) == len(set(keys)) == 3 * 2 + 3 * 2 * 2  # passage x seeds + data (2 self-edits) x seeds


# 2. paths relative to the run directory ----------------------------------------------------------------------------

def test_generator_paths_are_stored_relative_and_found_from_any_directory(tmp_path, tiny_model_path, monkeypatch):
    from seal.commands.generators import generator_conditions
    from seal.domains.knowledge.domain import KnowledgeDomain
    from seal.domains.knowledge.grading import Grader
    from seal.loops.rest_em import train
    from test_rest_em import length_grader, tiny_train_config

    monkeypatch.chdir(tmp_path)
    train(tiny_train_config(tiny_model_path, rounds=1), Path("run"), KnowledgeDomain(Grader("judge", length_grader)))
    summary = json.loads((tmp_path / "run" / "round-0" / "round.json").read_text())
    assert summary["generator_out"] == "round-0/generator"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert generator_conditions(str(tmp_path / "run")) == [f"generator:{tmp_path / 'run' / 'round-0' / 'generator'}"]
    assert oct((tmp_path / "run" / "round-0" / "generator").stat().st_mode & 0o777) == "0o755"


# 3. whole files written atomically, temporaries cleaned, damaged files named -------------------------------------

def test_a_failed_write_leaves_the_old_file_and_the_temporary_is_cleaned(tmp_path, monkeypatch):
    path = tmp_path / "round.json"
    write_atomic(path, '{"round": 0}')

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        write_atomic(path, '{"round": 1}')
    monkeypatch.undo()
    assert path.read_text() == '{"round": 0}'
    (tmp_path / "round-0" / ".generator-abc123").mkdir(parents=True)
    clean_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["round-0", "round.json"]


def test_an_empty_config_is_refused_not_resumed_as_a_default_run(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("")
    code, err = run_cli(capsys, ["train", "--resume", str(tmp_path)])
    assert code == 2
    assert_one_clear_line(err, "is empty or damaged")


def test_an_unreadable_round_json_finishes_the_round_again(tmp_path, tiny_model_path):
    from seal.domains.knowledge.domain import KnowledgeDomain
    from seal.domains.knowledge.grading import Grader
    from seal.loops.rest_em import train
    from test_rest_em import length_grader, tiny_train_config

    config = tiny_train_config(tiny_model_path, rounds=1)
    [first] = train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))
    (tmp_path / "round-0" / "round.json").write_text("")  # as an older version's torn write left them
    (tmp_path / "round-0" / "passages.json").write_text("")
    [again] = train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))
    assert again["mean_reward"] == first["mean_reward"] and again["kept"] == first["kept"]


# 4. YAML values checked by type --------------------------------------------------------------------------------------

@pytest.mark.parametrize("yaml_text, needle", [
    ("inner: {lr: fast}", "config.inner.lr must be a number, not 'fast'"),
    ("inner: {epochs: '10'}", "config.inner.epochs must be an integer, not '10'"),
    ("inner: {seeds: 5}", "config.inner.seeds must be a list of integers, not 5"),
    ("inner: {rank: 8.7}", "config.inner.rank must be an integer, not 8.7"),
    ("sampling: {k: 2.5}", "config.sampling.k must be an integer, not 2.5"),
    ("inner: {target_modules: q_proj}", "config.inner.target_modules must be a list of strings"),
    ("inner: 3", "config.inner must be a mapping of settings"),
])
def test_yaml_values_of_the_wrong_type_are_one_line(tmp_path, capsys, tiny_model_path, yaml_text, needle):
    (tmp_path / "c.yaml").write_text(yaml_text + "\n")
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["adapt", "--config", str(tmp_path / "c.yaml"), "--data", data_file(tmp_path),
                                 *tiny_flags(tiny_model_path, runs)[:4]])
    assert code == 2
    assert_one_clear_line(err, needle)
    assert not runs.exists() or not any(runs.iterdir())


# 5. a model that cannot load leaves no run directory -------------------------------------------------------------

@pytest.mark.parametrize("model, needle, offline_hint", [
    ("no-such-org/no-such-model-xyz", "could not load model 'no-such-org/no-such-model-xyz'", True),
    ("./no/such/folder", "model path './no/such/folder' does not exist", False),
    ("EMPTY", "holds no saved model (no config.json)", False),
])
def test_a_model_that_cannot_load_leaves_no_run_directory(tmp_path, capsys, model, needle, offline_hint):
    if model == "EMPTY":
        (tmp_path / "empty").mkdir()
        model = str(tmp_path / "empty")
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), "--model", model, "--runs-root", str(runs)])
    assert code == 2
    assert_one_clear_line(err, needle)
    assert ("SEAL_ONLINE" in err) == offline_hint
    assert not runs.exists() or not any(runs.iterdir())


def test_a_missing_judge_key_leaves_no_run_directory(tmp_path, capsys, tiny_model_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), *tiny_flags(tiny_model_path, runs),
                                 "--grader", "judge", "--judge-model", "gpt-4.1", "--judge-url", "http://127.0.0.1:9"])
    assert code == 2
    assert_one_clear_line(err, "needs an API key in $OPENAI_API_KEY")
    assert not runs.exists() or not any(runs.iterdir())


# 6. a resume honours only the run's own config (where trials run aside), and its own command ------------------------------

def test_flags_with_resume_and_the_wrong_subcommand_are_refused(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(RunConfig(command="train").to_dict()))
    code, err = run_cli(capsys, ["train", "--resume", str(tmp_path), "--epochs", "5", "--model", "nosuch/model"])
    assert code == 2
    assert_one_clear_line(err, "--epochs, --model would be ignored")
    code, err = run_cli(capsys, ["adapt", "--resume", str(tmp_path)])
    assert code == 2
    assert_one_clear_line(err, f"is a `seal train` run: resume it with seal train --resume {tmp_path}")
    code, err = run_cli(capsys, ["train", "--resume", str(tmp_path), "--executor", "ray", "--ray-workers", "0"])
    assert code == 2  # the executor flags a resume takes are checked as a new run's are
    assert_one_clear_line(err, "executor.workers must be at least 1")
    code, err = run_cli(capsys, ["train", "--resume", str(tmp_path), "--condition", "passage-twice"])
    assert code == 2  # a ReST-EM run samples its own rows: --condition adds rows to tables only
    assert_one_clear_line(err, "--condition adds rows on resume to a knowledge table")
    assert load_run_config(tmp_path).command == "train"


# 7. the E-step does not keep float-rounding ties --------------------------------------------------------------------

def test_a_reward_that_ties_the_baseline_up_to_rounding_is_not_kept():
    from seal.loops.rest_em import select_self_edits, self_edit_rewards

    trials = [{"item_id": "p", "self_edit_index": 0, "accuracy": a} for a in (0.4, 0.2)]
    rewards = self_edit_rewards(trials)
    assert rewards["p"][0] != 0.3  # 0.30000000000000004
    assert select_self_edits(rewards, {"p": 0.3}) == {}
    assert select_self_edits({"p": [0.3, 0.1 + 0.2]}, {"p": 0.0}) == {"p": [0]}  # equal rewards: the first


# 8. the endpoint judge retries passing failures and is checked first --------------------------------------------

class FlakyEndpoint(BaseHTTPRequestHandler):
    failures = 2
    calls = 0

    def do_POST(self):
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls <= type(self).failures:
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        body = json.dumps({"choices": [{"message": {"content": "yes"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_endpoint_judge_retries_rate_limits_and_is_checked_before_a_run(tmp_path, capsys, monkeypatch,
                                                                              tiny_model_path):
    from seal.domains.knowledge.grading import EndpointJudge

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    server = HTTPServer(("127.0.0.1", 0), FlakyEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        judge = EndpointJudge("m", f"http://127.0.0.1:{server.server_port}/v1", backoff_s=0.0)
        assert judge(["Q?"], ["4"], ["4"]) == [1.0] and FlakyEndpoint.calls == 3  # two 429s, then the answer
    finally:
        server.shutdown()
    runs = tmp_path / "runs"  # nothing listens on port 9: the check fails before any run directory
    code, err = run_cli(capsys, ["adapt", "--data", data_file(tmp_path), *tiny_flags(tiny_model_path, runs),
                                 "--grader", "judge", "--judge-model", "m", "--judge-url", "http://127.0.0.1:9/v1"])
    assert code == 2
    assert_one_clear_line(err, "LLM judge request to http://127.0.0.1:9/v1/chat/completions failed")
    assert not runs.exists() or not any(runs.iterdir())


# 9. oversized self-edits are capped, and say so --------------------------------------------------------------------

def test_an_oversized_self_edit_is_cut_and_says_so(tiny, fast_inner, passage, capsys):
    import dataclasses

    from seal.domains.base import Trial
    from seal.domains.knowledge.grading import Grader
    from seal.domains.knowledge.trials import KnowledgeTrials

    cfg = dataclasses.replace(fast_inner, max_sequences=16, max_seq_len=32)
    huge = "\n".join(f"Fact {i} about the town." for i in range(2601)) + "\n" + "word " * 500
    prepared = KnowledgeTrials(tiny.tokenizer, cfg, Grader("contains")).prepare(Trial("model", passage, 0, 0, 0, huge))
    assert len(prepared.job.token_ids) == 16 and prepared.record["dropped_sequences"] == 2603 - 16
    assert prepared.record["cut_sequences"] >= 1  # the passage itself is longer than 32 tokens
    err = capsys.readouterr().err
    assert "2603 training sequences, cut to the first 16" in err and "cut to inner.max_seq_len=32" in err


# 10. SQuAD F1 as the official script -------------------------------------------------------------------------------

def test_squad_grading_takes_the_best_gold_answer_as_the_official_script():
    from seal.domains.knowledge.grading import Grader, token_f1
    from seal.domains.knowledge.passages import parse_passages

    squad = {"data": [{"title": "Super_Bowl", "paragraphs": [{"context": "The Broncos won.", "qas": [
        {"question": "Who won?", "answers": [{"text": "Denver Broncos", "answer_start": 0},
                                             {"text": "Broncos", "answer_start": 4},
                                             {"text": "Broncos", "answer_start": 4}]}]}]}]}
    [q] = parse_passages(squad)[0].questions
    assert q.golds == ("Denver Broncos", "Broncos")
    assert Grader("exact")([q.question], [q.golds], ["Broncos"]) == [1.0]
    assert Grader("f1")([q.question], [q.golds], ["the Broncos team"]) == [pytest.approx(2 / 3)]
    assert token_f1("a", "the") == 0.0  # both normalise to nothing: 0, as the official v1.1 script


# fault injection: SIGKILL at random moments, every resume ends equal to an uninterrupted run ------------------

def test_seal_train_killed_at_random_moments_resumes_to_the_uninterrupted_run(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "kill_resume.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), "--kills", "3", "--seed", "1", "--workdir", str(tmp_path),
                           "--out", str(tmp_path / "counts.json")], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    counts = json.loads((tmp_path / "counts.json").read_text())
    assert counts["kills"] >= 3 and counts["different"] == 0


# 6. a stopped table is complete on its first inputs (inner.input_blocks) ------------------------------------------

@pytest.mark.parametrize("blocks", [0, 2])
def test_input_blocks_finish_every_row_of_the_first_inputs_first(tiny, fast_inner, blocks):
    import dataclasses

    from seal.domains.base import Trial
    from seal.domains.knowledge.fictional import generate_passages
    from seal.domains.knowledge.grading import Grader
    from seal.domains.knowledge.trials import KnowledgeTrials
    from seal.engines import make_engine
    from seal.loops.inner import run_trials

    cfg = dataclasses.replace(fast_inner, adapters_per_pass=2, epochs=1)
    passages = generate_passages(4, seed=3)
    trials = [Trial(c, p, i, 0, 0) for c in ("passage", "passage-twice") for i, p in enumerate(passages)]
    domain = KnowledgeTrials(tiny.tokenizer, cfg, Grader("contains"))
    order = [trials[i].key for i, _ in run_trials(make_engine(tiny, cfg), domain, trials, desc=None,
                                                  input_blocks=blocks)]
    assert sorted(order) == sorted(t.key for t in trials)  # every trial once, whatever the order
    first_inputs = [k[1] in {passages[0].id, passages[1].id} for k in order]
    if blocks:  # both rows of passages 0-1 before any trial of passages 2-3
        assert first_inputs == [True] * 4 + [False] * 4
    else:  # by size: every passage-only trial before the passage-twice ones, across all passages
        assert [k[0] for k in order] == ["passage"] * 4 + ["passage-twice"] * 4 and first_inputs != [True] * 4 + [False] * 4


# 11. self-edits sampled side by side are logged as one process logs them ------------------------------------------

def test_sampling_batches_finished_out_of_order_are_logged_in_batch_order(tmp_path, tiny_model_path):
    """An executor whose workers finish the batches last first: the log is still the in-process log, line for
    line, and a resume after it samples nothing."""
    from seal.domains.knowledge.self_edits import generate_into
    from seal.domains.knowledge.trials import passages_for
    from seal.engines import make_engine
    from seal.executors.base import LocalExecutor
    from seal.models import load_model
    from test_rest_em import tiny_train_config

    config = tiny_train_config(tiny_model_path)
    config.sampling.batch_size = 1
    passages = passages_for(config)[:4]
    loaded = load_model(config.model)

    class LastFirst:
        order = None

        def on_model_each(self, fn, calls):
            finished = list(LocalExecutor(make_engine(loaded, config.inner)).on_model_each(fn, calls))
            self.order = [c for c, _ in finished[::-1]]
            yield from finished[::-1]

    executor = LastFirst()
    for where in ("here", "workers"):
        (tmp_path / where).mkdir()
    here = generate_into(tmp_path / "here", loaded, passages, config)
    workers = generate_into(tmp_path / "workers", loaded, passages, config, executor=executor)
    assert executor.order == [3, 2, 1, 0]
    assert workers == here
    assert (tmp_path / "workers" / "self_edits.jsonl").read_text() == (tmp_path / "here" / "self_edits.jsonl").read_text()
    executor.order = None
    assert generate_into(tmp_path / "workers", loaded, passages, config, executor=executor) == here
    assert executor.order is None  # nothing left to sample

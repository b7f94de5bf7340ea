"""`seal report`: the HTML page of real runs made by the tiny model, rendered in headless Chromium where it exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from seal.cli import main
from seal.domains.knowledge.grading import Grader
from seal.domains.knowledge.domain import KnowledgeDomain
from seal.loops.rest_em import train
from seal.reporting.html import esc
from seal.reporting.read import RunView
from test_cli import assert_one_clear_line, data_file, run_cli, tiny_flags
from test_rest_em import length_grader, tiny_train_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def adapt_run(tmp_path_factory, tiny_model_path):
    tmp = tmp_path_factory.mktemp("adapt")
    runs = tmp / "runs"
    assert main(["adapt", "--data", data_file(tmp), "--condition", "passage", "--condition", "data",
                 *tiny_flags(tiny_model_path, runs)]) == 0
    [run_dir] = list(runs.iterdir())
    return run_dir


def files(run_dir) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_the_page_of_a_finished_run_has_its_tables_plots_and_self_edits(adapt_run, capsys):
    code, err = run_cli(capsys, ["report", str(adapt_run)])
    assert code == 0, err
    page = (adapt_run / "report.html").read_text()
    summary = json.loads((adapt_run / "summary.json").read_text())
    assert "finished" in page and "resolved config" in page
    data_row = f"data: {Path(summary['data_source']).name}"  # the data row is named by its file
    for name, c in summary["conditions"].items():  # the recomputed table is the run's own
        row = data_row if name == "data" else name
        assert re.search(rf"<td>{re.escape(row)}</td><td class=\"num\">{100 * c['accuracy']:.1f} %</td>", page), name
    assert page.count('src="data:image/png;base64,') >= 1
    trial = json.loads((adapt_run / "trials.jsonl").read_text().splitlines()[-1])
    assert trial["self_edit"].splitlines()[0] in page and trial["answers"][0]["question"] in page
    assert "http://" not in page and "https://" not in page  # nothing fetched when opened
    sources = page[page.index("Self-edits by source"):page.index("Per passage")]
    edits = {(t["passage_id"], t["self_edit_index"]) for t in map(json.loads, (adapt_run / "trials.jsonl")
                                                                   .read_text().splitlines()) if t["condition"] == "data"}
    assert re.search(rf"<td>{re.escape(data_row)}</td><td class=\"num\">{len(edits)}</td>", sources)
    assert "passage</td>" not in sources  # the passage-only row trains on no self-edit
    assert re.search(r"<td class=\"num\">[01]\.\d\d</td></tr>", sources)  # a copied share was computed


def test_a_killed_run_shows_what_exists_and_is_not_written_to(adapt_run, tmp_path, capsys):
    run_dir = tmp_path / "killed"
    shutil.copytree(adapt_run, run_dir)
    (run_dir / "summary.json").unlink()
    (run_dir / "report.html").unlink(missing_ok=True)
    lines = (run_dir / "trials.jsonl").read_text().splitlines()
    (run_dir / "trials.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])  # torn mid-write
    before = files(run_dir)
    code, err = run_cli(capsys, ["report", str(run_dir), "-o", str(tmp_path / "page.html")])
    assert code == 0, err
    assert files(run_dir) == before  # not repaired, not locked, nothing added
    page = (tmp_path / "page.html").read_text()
    assert "stopped before the end" in page and "the last line is torn" in page
    assert page.count("· seed ") == 2  # the two whole trials, not the torn one


def test_two_runs_side_by_side(adapt_run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(adapt_run, other)
    out = tmp_path / "both.html"
    code, err = run_cli(capsys, ["report", str(adapt_run), str(other), "-o", str(out)])
    assert code == 0, err
    page = out.read_text()
    assert "Side by side" in page and page.count("<h1>") == 3  # the page's and each run's


@pytest.mark.parametrize("make, needle", [
    (lambda tmp, run: [str(tmp)], "is not a seal run directory"),
    (lambda tmp, run: [str(tmp / "missing")], "is not a directory"),
    (lambda tmp, run: [str(run), str(continual_like(tmp))], "runs of different commands cannot share a page"),
    (lambda tmp, run: [str(corrupt(tmp, run))], "line 1: not a JSON record"),
])
def test_bad_input_is_one_line_and_writes_nothing(adapt_run, tmp_path, capsys, make, needle):
    out = tmp_path / "page.html"
    code, err = run_cli(capsys, ["report", *make(tmp_path, adapt_run), "-o", str(out)])
    assert code == 2
    assert_one_clear_line(err, needle)
    assert not out.exists()


def continual_like(tmp):
    run = tmp / "continual"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"command": "continual", "model": {"name": "m"}}))
    return run


def corrupt(tmp, run):
    copy = tmp / "corrupt"
    shutil.copytree(run, copy)
    lines = (copy / "trials.jsonl").read_text().splitlines()
    (copy / "trials.jsonl").write_text("\n".join(["{not json", *lines[1:]]) + "\n")
    return copy


def test_a_train_run_shows_rounds_kept_self_edits_and_quality(tmp_path, capsys, tiny_model_path):
    config = tiny_train_config(tiny_model_path, rounds=2)
    train(config, tmp_path, KnowledgeDomain(Grader("judge", length_grader)))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    code, err = run_cli(capsys, ["report", str(tmp_path)])
    assert code == 0, err
    page = (tmp_path / "report.html").read_text()
    assert "Kept and not kept" in page and "grounding" in page and "round 1 (" in page
    kept = [json.loads(line) for line in (tmp_path / "round-0" / "kept.jsonl").read_text().splitlines()]
    assert page.count("· kept") == sum(len((tmp_path / f"round-{r}" / "kept.jsonl").read_text().splitlines())
                                       for r in range(2))
    if kept:
        assert esc(kept[0]["self_edit"]) in page
    assert page.count('src="data:image/png;base64,') >= 2  # reward per round, every self-edit's reward
    (tmp_path / "round-1" / "round.json").unlink()  # round 1 as if still running: no selection yet
    (tmp_path / "round-1" / "kept.jsonl").unlink()
    assert run_cli(capsys, ["report", str(tmp_path)])[0] == 0
    page = (tmp_path / "report.html").read_text()
    assert "1 (in progress: all so far, none selected yet)" in page and page.count("· kept") == len(kept)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium; "
                                             "scripts/test.sh installs it where it can)")
def test_the_page_renders_in_headless_chromium(adapt_run, tmp_path, capsys):
    assert run_cli(capsys, ["report", str(adapt_run), "-o", str(tmp_path / "page.html")])[0] == 0
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
                          (tmp_path / "page.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    images = re.search(r'data-images="(\d+)"', dom)
    assert images and int(images.group(1)) >= 1, dom[:500]  # the browser decoded the inline plot
    assert "<table>" in dom and "Per passage" in dom
    trial = json.loads((adapt_run / "trials.jsonl").read_text().splitlines()[-1])
    assert trial["self_edit"].splitlines()[0] in dom


def test_seal_runs_lists_finished_running_and_stopped_runs_and_writes_nothing(adapt_run, tmp_path, capsys):
    from seal.runs import lock_run, release_run

    root = tmp_path / "runs"
    shutil.copytree(adapt_run, root / "a-finished")
    shutil.copytree(adapt_run, root / "b-running")
    (root / "b-running" / "summary.json").unlink()
    stopped = root / "c-train"
    (stopped / "round-0").mkdir(parents=True)
    (stopped / "config.yaml").write_text(yaml.safe_dump({"command": "train", "train": {"rounds": 3}}))
    (stopped / "round-0" / "round.json").write_text("{}")
    (stopped / "round-1").mkdir()
    (stopped / "round-1" / "trials.jsonl").write_text('{"a": 1}\n{"a": 2}\n{"a": 3')  # torn last line
    (stopped / "round-1" / "trials.progress.json").write_text(json.dumps(
        {"trials": 9, "finished": 2, "updated": time.time() - 60, "eta_s": 600}))  # stopped: no time left shown
    (root / "not-a-run").mkdir()
    trials = len((adapt_run / "trials.jsonl").read_text().splitlines())
    status = json.loads((adapt_run / "trials.progress.json").read_text())  # the finished run's own, by run_logged
    assert (status["trials"], status["finished"]) == (trials, trials) and status["eta_s"] == 0
    (root / "b-running" / "trials.progress.json").write_text(json.dumps(
        {"trials": trials + 5, "finished": trials, "updated": time.time() - 600, "eta_s": 4200}))
    lock_run(root / "b-running")
    try:
        before = files(root)
        capsys.readouterr()
        code = main(["runs", str(root)])
        out = capsys.readouterr().out
    finally:
        release_run(root / "b-running")
    assert code == 0
    assert files(root) == before
    table = out.split("\n\n")[0].splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert list(rows) == ["a-finished", "b-running", "c-train"]
    assert rows["a-finished"][:6] == ["adapt", "finished", str(trials), "of", str(trials), "trials"]
    assert " ".join(rows["b-running"][:12]) == f"adapt running {trials} of {trials + 5} trials, about 1 h 0 min left"
    assert " ".join(rows["c-train"][:10]) == "train stopped 1 of 3 rounds, 2 of 9 trials"
    assert f"seal train --resume {stopped}" in out and "not-a-run" not in out
    assert "--resume" not in out.split("c-train")[0]  # only the stopped run gets a resume line
    code, err = run_cli(capsys, ["runs", str(tmp_path / "none")])
    assert code == 2
    assert_one_clear_line(err, "is not a directory of runs")


def test_markdown_tables_of_a_run_match_its_report_md_and_bad_input_is_one_line(adapt_run, tmp_path, capsys):
    before = files(adapt_run)
    capsys.readouterr()
    assert main(["report", "--markdown", str(adapt_run)]) == 0
    out = capsys.readouterr().out
    assert files(adapt_run) == before  # prints, writes nothing
    table = [line for line in (adapt_run / "report.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) > 4 and all(line in out.splitlines() for line in table)
    # A stopped run: one passage lost a trial of one row, so --complete compares on the other passages only.
    partial = tmp_path / "partial"
    shutil.copytree(adapt_run, partial)
    (partial / "summary.json").unlink()
    lines = (partial / "trials.jsonl").read_text().splitlines()
    dropped = json.loads(lines[-1])
    (partial / "trials.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    passages = {json.loads(line)["passage_id"] for line in lines}
    assert main(["report", "--markdown", "--complete", str(partial)]) == 0
    out = capsys.readouterr().out
    assert "stopped before the end" in out and "on the inputs every row has finished" in out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith(("| baseline", "| passage", "| data"))]
    assert rows and all(int(r[-3]) == len(passages) - 1 for r in rows[:3])  # the passages column
    assert dropped["passage_id"] in {json.loads(line)["passage_id"] for line in lines[:-1]}
    code, err = run_cli(capsys, ["report", "--markdown", str(tmp_path)])
    assert code == 2
    assert_one_clear_line(err, "no config.yaml")


def test_markdown_counts_the_self_edits_that_gave_no_training_piece(tiny_model_path, tmp_path, capsys):
    from dataclasses import replace

    from seal.domains.knowledge.fictional import generate_passages
    from seal.domains.knowledge.passages import save_passages

    passages = [replace(p, self_edits=("1. It is old.\n2. It is far.", "**Implications:**\n---"))
                for p in generate_passages(2, seed=4)]
    save_passages(passages, tmp_path / "passages.json")
    assert main(["adapt", "--data", str(tmp_path / "passages.json"), "--condition", "data", "--quiet",
                 *tiny_flags(tiny_model_path, tmp_path / "runs")]) == 0
    [run_dir] = list((tmp_path / "runs").iterdir())
    capsys.readouterr()
    assert main(["report", "--markdown", str(run_dir)]) == 0
    out = capsys.readouterr().out
    section = out[out.index("## Self-edits by source"):]
    [row] = [line.split(" | ") for line in section.splitlines() if line.startswith("| data")]
    assert row[1:4] == ["4", "2", "5"]  # 4 self-edits, the 2 header-only ones empty; mean words (8 + 2) / 2
    scored = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    assert sorted(t["accuracy"] for t in scored if t["status"] == "empty_self_edit") == [0.0, 0.0]


def test_arc_tables_name_a_generator_row_by_its_run_and_round():
    from seal.report import arc_report, summarise_arc
    from seal.reporting.recipes import recipe_profile

    generator = "generator:/w/runs/20261130-003030-train-arc-rest-em-smollm2/round-1/generator"
    recipe = '{"augmentations": [], "learning_rate": 0.001, "epochs": 1, "loss": "all"}'
    trials = [{"condition": c, "task_id": t, "self_edit_index": 0, "solved": s, "status": "ok", "recipe": recipe,
               "timings": {"train_s": 1, "eval_s": 1}}
              for c, t, s in [("icl", "a", False), ("icl", "b", True), (generator, "a", True), (generator, "b", True)]]
    table = arc_report(summarise_arc(trials, ["icl", generator], ["a", "b"]), "t")
    row = next(line for line in table.splitlines() if "round 1" in line)
    assert row.startswith("| generator: 20261130-003030-train-arc-rest-em-smollm2 round 1 | 100.0 % |")
    assert "+50.0 ± 50.0" in row and "/round-1/" not in table
    header, rows = recipe_profile({generator: [t for t in trials if t["condition"] == generator]})
    assert header == ["choice", "generator: 20261130-003030-train-arc-rest-em-smollm2 round 1"] and rows


def test_the_arc_page_names_a_generator_row_by_its_run_and_round_in_every_section(tmp_path):
    from seal.reporting.arc import arc_sections

    generator = "generator:/w/runs/20261130-003030-train-arc-rest-em-smollm2/round-1/generator"
    name = "generator: 20261130-003030-train-arc-rest-em-smollm2 round 1"
    recipe = '{"augmentations": [], "learning_rate": 0.001, "epochs": 1, "loss": "all"}'
    trials = [{"condition": c, "task_id": t, "self_edit_index": 0, "solved": s, "status": "ok", "recipe": recipe,
               "self_edit": recipe, "timings": {"train_s": 1, "eval_s": 1}}
              for c, t, s in [("icl", "a", False), ("icl", "b", True), (generator, "a", True), (generator, "b", False)]]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"command": "eval", "domain": "arc",
                                                           "conditions": ["icl", generator], "reference": "icl"}))
    (tmp_path / "trials.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trials))
    page = arc_sections(RunView(tmp_path))
    assert "/round-1/" not in page
    assert f"<td>{esc(name)}</td>" in page  # the results table's row
    assert f"task a · solved: icl 0 of 1, {esc(name)} 1 of 1" in page  # each task's fold
    assert f"task b · solved: icl 1 of 1, {esc(name)} 0 of 1" in page
    assert page.count(f"{esc(name)} · recipe 0:") == 2  # each trial's fold
    assert f"<th>{esc(name)}</th>" in page  # the recipe table's column


def _claim_summary():
    """Four passages; the round-2 generator scores 0.5 above the base generator on each but the last (0.4), and
    sits around the passage twice."""
    from types import SimpleNamespace

    from seal.report import summarise

    gen = "generator:/w/runs/20261130-030940-train-rest-em-squad-24/round-{}/generator"
    scores = {"model": [0.1, 0.2, 0.0, 0.3], "passage-twice": [0.7, 0.5, 0.6, 0.6],
              gen.format(2): [0.6, 0.7, 0.5, 0.7], gen.format(1): [0.2, 0.2, 0.2, 0.2]}
    passages = [SimpleNamespace(id=f"p{i}", title=f"P{i}", questions=[1]) for i in range(4)]
    trials = [{"condition": c, "passage_id": f"p{i}", "accuracy": a, "timings": {"train_s": 1.0, "eval_s": 1.0}}
              for c, values in scores.items() for i, a in enumerate(values)]
    baselines = {f"p{i}": {"accuracy": 0.0} for i in range(4)}
    config = SimpleNamespace(reference="model", compare_with=[], conditions=list(scores),
                             data=SimpleNamespace(source=None), inner=SimpleNamespace(grader="contains"))
    return summarise(config, passages, baselines, trials), gen


def test_a_claim_compares_one_row_with_every_other_and_says_what_clears_two_standard_errors():
    from seal.errors import SealError
    from seal.reporting.claim import claim_markdown, find_row

    summary, gen = _claim_summary()
    assert find_row(summary, "round 2") == gen.format(2) == find_row(summary, gen.format(2))
    out = claim_markdown(summary, "round 2")
    rows = {r.split(" | ")[0].lstrip("| "): r.split(" | ") for r in out.splitlines() if r.startswith("| ") and "---" not in r}
    # vs the base generator: differences 0.5, 0.5, 0.5, 0.4 -> +47.5 ± 2.5 points, above.
    assert rows["model"][3:] == ["+47.5 ± 2.5", "4", "above", " |"]
    # vs the passage twice: -0.1, +0.2, -0.1, +0.1 -> +2.5 ± 7.5, not decided; at 4 (2.84 x 7.5 / 2.5)^2 = 290.4
    # passages a change of +2.5 with this spread would be decided 4 times in 5.
    assert rows["passage-twice"][3:] == ["+2.5 ± 7.5", "4", "within 2 s.e.", "291 |"]
    assert rows["passage-twice"][1:3] == ["60.0 %", "62.5 %"]
    # vs the base model (every passage 0): +62.5 ± 4.8, above; vs round 1: above.
    assert rows["baseline"][4:] == ["4", "above", " |"] and "round 1" in out
    assert "- Not decided at this n: passage-twice." in out
    for bad, needle in (("round", "matches 2 rows"), ("round 7", "names no row")):
        with pytest.raises(SealError, match=needle):
            find_row(summary, bad)


def test_the_page_shows_every_row_against_every_other_coloured_by_verdict():
    from seal.reporting.claim import claim_matrix_html

    summary, gen = _claim_summary()
    html_text = claim_matrix_html(summary)
    cells = re.findall(r'<span class="(\w+)"[^>]*>([^<]*)</span>', html_text)
    assert len(cells) == 5 * 5  # rows: the base model and the four conditions; the diagonal is empty
    grid = [cells[k:k + 5] for k in range(0, 25, 5)]
    names = ["baseline", "model", "passage-twice", "round 2", "round 1"]  # the summary's order: baseline first
    at = {(names[r], names[c]): grid[r][c] for r in range(5) for c in range(5)}
    assert at["round 2", "model"] == ("right", "+47.5 ± 2.5") and at["model", "round 2"] == ("wrong", "-47.5 ± 2.5")
    assert at["round 2", "passage-twice"] == ("muted", "+2.5 ± 7.5") and at["round 2", "round 2"] == ("muted", "")
    assert "On the 4 passages" in html_text and claim_matrix_html({**summary, "conditions": {"model": {}}}) == ""


def test_claim_on_a_run_prints_after_its_table_and_bad_use_is_one_line(adapt_run, tmp_path, capsys):
    before = files(adapt_run)
    capsys.readouterr()
    assert main(["report", "--markdown", str(adapt_run), "--claim", "data"]) == 0
    out = capsys.readouterr().out
    assert files(adapt_run) == before  # prints, writes nothing
    assert out.index("| condition |") < out.index("## data: passages.json against every other row")
    claim_rows = out.split("against every other row")[1].splitlines()
    assert [r.split(" | ")[0] for r in claim_rows if r.startswith("| ") and "---" not in r][1:] == ["| baseline", "| passage"]
    trained = tmp_path / "train-like"
    shutil.copytree(adapt_run, trained)
    config = yaml.safe_load((trained / "config.yaml").read_text())
    (trained / "config.yaml").write_text(yaml.safe_dump({**config, "command": "train"}))
    for argv, needle in ((["--markdown", str(adapt_run), "--claim", "nothing"], "names no row"),
                         ([str(adapt_run), "--claim", "data"], "--claim goes with --markdown"),
                         (["--markdown", str(adapt_run), str(trained), "--claim", "data"], "compares rows of an evaluation")):
        code = main(["report", *argv])
        captured = capsys.readouterr()
        assert code == 2 and captured.out == ""  # nothing printed, not even the runs that could be read
        assert_one_clear_line(captured.err, needle)
    assert files(adapt_run) == before

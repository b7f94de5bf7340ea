"""Test-time training (TTT) on an ARC task, and augmented inference with voting.

TTT data: from the task's demonstrations only (the test output is never seen), every
leave-one-out sub-task (the other demonstrations as context, the left-out one as query)
and, with three or more demonstrations, every leave-two-out sub-task; each under the
identity and under every transform of the recipe's augmentation groups, with a random
colour permutation and demonstration order per augmented copy (seeded). Copies with a
grid over 30x30 are dropped; the rest are shuffled and capped in count and in tokens.
The loss is on all tokens or on the query's output grid only (`Recipe.loss`).

Inference: the test input is answered greedily under the identity and each geometric
transform, every answer is parsed, mapped back by the inverse transform and voted; the
two most frequent grids are ARC's two attempts (pass@2). A task counts as solved only if
every test input is.

Departures from the paper's code (MARC's TTT): the leave-two-out sub-tasks are added to
the leave-one-out ones (more TTT data from tasks with few demonstrations), and the vote is
flat over the 7 views (MARC votes hierarchically: within each transform first, then across).
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, replace

from seal.domains.arc.augment import GROUPS, INFERENCE, ColourPermutation, Identity, Transform, apply_to_task, permute_examples
from seal.domains.arc.grids import Example, Grid, Task, format_grid, parse_grid
from seal.domains.arc.recipe import Recipe


def task_prompt(demonstrations: tuple[Example, ...], query: Grid) -> str:
    """The demonstrations, then the query input, ending where the output grid should start."""
    shown = [f"Input:\n{format_grid(e.input)}\nOutput:\n{format_grid(e.output)}" for e in demonstrations]
    return "\n\n".join(shown + [f"Input:\n{format_grid(query)}\nOutput:\n"])


@dataclass(frozen=True)
class TTTExample:
    prompt: str
    target: str


def leave_out_subtasks(task: Task, max_left_out: int = 2) -> list[tuple[tuple[Example, ...], Example]]:
    """(context demonstrations, held-out demonstration) pairs; at least one demonstration stays as context.

    >>> from seal.domains.arc.grids import make_grid
    >>> e = [Example(make_grid([[i]]), make_grid([[i]])) for i in range(3)]
    >>> len(leave_out_subtasks(Task("t", tuple(e), ())))   # 3 leave-one-out + 3 x 2 leave-two-out
    9
    """
    out = []
    n = len(task.train)
    for k in range(1, max_left_out + 1):
        if n - k < 1:
            break
        for left_out in itertools.combinations(range(n), k):
            context = tuple(e for i, e in enumerate(task.train) if i not in left_out)
            for i in left_out:  # each left-out demonstration is a query once
                out.append((context, task.train[i]))
    return out


def ttt_examples(task: Task, recipe: Recipe, seed: int, max_examples: int = 64) -> list[TTTExample]:
    """The TTT training set a recipe asks for (before tokenization and length capping)."""
    rng = random.Random(seed)
    demos_only = replace(task, test=())
    transforms: list[Transform] = [Identity()] + [t for g in recipe.augmentations for t in GROUPS[g]]
    examples = []
    for transform in transforms:
        augmented = apply_to_task(demos_only, transform)
        if augmented is None:
            continue
        if not isinstance(transform, Identity):
            augmented = apply_to_task(augmented, ColourPermutation.random(rng)) or augmented
            augmented = permute_examples(augmented, rng)
        for context, query in leave_out_subtasks(augmented):
            examples.append(TTTExample(task_prompt(context, query.input), format_grid(query.output)))
    rng.shuffle(examples)
    return examples[:max_examples]


def encode_ttt(tokenizer, example: TTTExample, loss: str, max_tokens: int) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (-100 outside the output grid when loss == 'output'); None if too long."""
    prompt = tokenizer(example.prompt)["input_ids"]  # with the BOS a raw-text generate() adds too
    target = tokenizer(example.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = prompt + target
    if len(ids) > max_tokens:
        return None
    labels = ([-100] * len(prompt) if loss == "output" else list(prompt)) + target
    return ids, labels


def vote(candidates: list[Grid | None], attempts: int = 2) -> list[Grid]:
    """The `attempts` most frequent parsed grids; ties go to the grid seen first (the identity's answer).

    >>> a, b = ((1,),), ((2,),)
    >>> vote([None, b, a, a, b, None, b])
    [((2,),), ((1,),)]
    >>> vote([None, None])
    []
    """
    counts = Counter(c for c in candidates if c is not None)
    return [grid for grid, _ in counts.most_common(attempts)]


def inference_prompts(task: Task, test_index: int, transforms=INFERENCE) -> list[tuple[Transform, str]]:
    """One prompt per transform under which the whole task still fits in 30x30."""
    out = []
    for transform in transforms:
        augmented = apply_to_task(task, transform)
        if augmented is not None:
            out.append((transform, task_prompt(augmented.train, augmented.test[test_index].input)))
    return out


def answer_max_tokens(task: Task) -> int:
    """Enough new tokens for an output grid as large as the largest grid of the task (one per cell and row end)."""
    h = max(len(g) for g in task.grids())
    w = max(len(g[0]) for g in task.grids())
    return min(2 * max(h, w) * (2 * max(h, w) + 1), 31 * 30) + 2


def vote_answers(task: Task, replies: list[str], attempts: int = 2, transforms=INFERENCE) -> list[list[Grid]]:
    """Voted attempts per test input from the replies to every test input's `inference_prompts`, in order."""
    results, r = [], 0
    for i in range(len(task.test)):
        pairs = inference_prompts(task, i, transforms)
        candidates = []
        for (transform, _), reply in zip(pairs, replies[r:r + len(pairs)]):
            grid = parse_grid(reply)
            try:
                candidates.append(None if grid is None else transform.inverse(grid))
            except (IndexError, ZeroDivisionError):  # a malformed answer the inverse cannot map back
                candidates.append(None)
        r += len(pairs)
        results.append(vote(candidates, attempts))
    return results


def solve(generate_fn, task: Task, attempts: int = 2, transforms=INFERENCE) -> list[list[Grid]]:
    """Voted attempts per test input; `generate_fn(prompts, max_new_tokens) -> list[str]` decodes greedily."""
    prompts = [p for i in range(len(task.test)) for _, p in inference_prompts(task, i, transforms)]
    return vote_answers(task, generate_fn(prompts, answer_max_tokens(task)), attempts, transforms)


def is_solved(task: Task, attempts: list[list[Grid]]) -> bool:
    """Every test input's true output is among its attempts (a test input without attempts is not solved)."""
    return len(attempts) == len(task.test) and all(e.output is not None and e.output in a
                                                   for e, a in zip(task.test, attempts))

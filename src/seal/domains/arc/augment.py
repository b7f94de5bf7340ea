"""Composable ARC augmentations: each maps a grid to a grid, and most can be undone.

Geometric (`basic`): rotations, flips, transpose. Size (`size`): resolution, height and
width doubling. Chains (`chain`): a geometric transform followed by a size transform.
Repetition (`repeat`): tiling, mirror reflection, cyclic translation. Colour permutations
(0, the background, stays fixed) and demonstration-order permutations apply to whole
tasks. `apply_to_task` applies one transform to every grid of a task and returns None
when a grid would exceed 30x30 (such augmented tasks are dropped, as ARC allows no larger).

Every transform in `GROUPS` is invertible (`inverse(apply(g)) == g`), so all of them can be
used at inference time, where answers are mapped back before voting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Protocol

from seal.domains.arc.grids import MAX_SIDE, Example, Grid, Task, shape


class Transform(Protocol):
    name: str

    def apply(self, grid: Grid) -> Grid: ...

    def inverse(self, grid: Grid) -> Grid: ...


def _rot90(g: Grid) -> Grid:  # clockwise
    return tuple(zip(*g[::-1]))


def _transpose(g: Grid) -> Grid:
    return tuple(zip(*g))


@dataclass(frozen=True)
class Identity:
    name: str = "identity"

    def apply(self, grid: Grid) -> Grid:
        return grid

    def inverse(self, grid: Grid) -> Grid:
        return grid


@dataclass(frozen=True)
class Rotate:
    quarter_turns: int

    @property
    def name(self) -> str:
        return f"rotate{90 * self.quarter_turns}"

    def apply(self, grid: Grid) -> Grid:
        for _ in range(self.quarter_turns % 4):
            grid = _rot90(grid)
        return grid

    def inverse(self, grid: Grid) -> Grid:
        return Rotate(4 - self.quarter_turns % 4).apply(grid)


@dataclass(frozen=True)
class Flip:
    axis: int  # 0: upside down, 1: left-right

    @property
    def name(self) -> str:
        return "flip_vertical" if self.axis == 0 else "flip_horizontal"

    def apply(self, grid: Grid) -> Grid:
        return grid[::-1] if self.axis == 0 else tuple(row[::-1] for row in grid)

    inverse = apply


@dataclass(frozen=True)
class Transpose:
    name: str = "transpose"

    def apply(self, grid: Grid) -> Grid:
        return _transpose(grid)

    inverse = apply


@dataclass(frozen=True)
class Upscale:
    """Each cell becomes a `rows` x `cols` block (resolution: 2x2; height: 2x1; width: 1x2)."""

    rows: int = 2
    cols: int = 2

    @property
    def name(self) -> str:
        return f"upscale{self.rows}x{self.cols}"

    def apply(self, grid: Grid) -> Grid:
        return tuple(tuple(c for c in row for _ in range(self.cols)) for row in grid for _ in range(self.rows))

    def inverse(self, grid: Grid) -> Grid:
        return tuple(row[:: self.cols] for row in grid[:: self.rows])


@dataclass(frozen=True)
class Tile:
    """The grid repeated `rows` x `cols` times."""

    rows: int = 1
    cols: int = 2

    @property
    def name(self) -> str:
        return f"tile{self.rows}x{self.cols}"

    def apply(self, grid: Grid) -> Grid:
        return tuple(row * self.cols for _ in range(self.rows) for row in grid)

    def inverse(self, grid: Grid) -> Grid:
        h, w = shape(grid)
        return tuple(row[: w // self.cols] for row in grid[: h // self.rows])


@dataclass(frozen=True)
class Reflect:
    """The grid followed by its mirror image (axis 0: below, 1: to the right)."""

    axis: int = 1

    @property
    def name(self) -> str:
        return f"reflect{'_down' if self.axis == 0 else '_right'}"

    def apply(self, grid: Grid) -> Grid:
        return grid + grid[::-1] if self.axis == 0 else tuple(row + row[::-1] for row in grid)

    def inverse(self, grid: Grid) -> Grid:
        h, w = shape(grid)
        return grid[: h // 2] if self.axis == 0 else tuple(row[: w // 2] for row in grid)


@dataclass(frozen=True)
class Translate:
    """A cyclic shift by (dy, dx) cells."""

    dy: int = 1
    dx: int = 1

    @property
    def name(self) -> str:
        return f"translate{self.dy}_{self.dx}"

    def apply(self, grid: Grid) -> Grid:
        h, w = shape(grid)
        return tuple(tuple(grid[(i - self.dy) % h][(j - self.dx) % w] for j in range(w)) for i in range(h))

    def inverse(self, grid: Grid) -> Grid:
        return Translate(-self.dy, -self.dx).apply(grid)


@dataclass(frozen=True)
class Chain:
    steps: tuple

    @property
    def name(self) -> str:
        return "+".join(s.name for s in self.steps)

    def apply(self, grid: Grid) -> Grid:
        for step in self.steps:
            grid = step.apply(grid)
        return grid

    def inverse(self, grid: Grid) -> Grid:
        for step in reversed(self.steps):
            grid = step.inverse(grid)
        return grid


@dataclass(frozen=True)
class ColourPermutation:
    """Colours 1-9 permuted; 0 (background) fixed."""

    mapping: tuple[int, ...]

    @property
    def name(self) -> str:
        return "colours" + "".join(map(str, self.mapping))

    @staticmethod
    def random(rng: random.Random) -> "ColourPermutation":
        rest = list(range(1, 10))
        rng.shuffle(rest)
        return ColourPermutation(tuple([0] + rest))

    def apply(self, grid: Grid) -> Grid:
        return tuple(tuple(self.mapping[c] for c in row) for row in grid)

    def inverse(self, grid: Grid) -> Grid:
        back = [0] * 10
        for src, dst in enumerate(self.mapping):
            back[dst] = src
        return tuple(tuple(back[c] for c in row) for row in grid)


BASIC = (Rotate(1), Rotate(2), Rotate(3), Flip(0), Flip(1), Transpose())
SIZE = (Upscale(2, 2), Upscale(2, 1), Upscale(1, 2))
CHAIN = tuple(Chain((g, s)) for g in (Rotate(1), Flip(0), Transpose()) for s in SIZE)
REPEAT = (Tile(1, 2), Tile(2, 1), Reflect(0), Reflect(1), Translate(1, 1))
GROUPS = {"basic": BASIC, "size": SIZE, "chain": CHAIN, "repeat": REPEAT}
INFERENCE = (Identity(),) + BASIC


def fits(grid: Grid) -> bool:
    h, w = shape(grid)
    return h <= MAX_SIDE and w <= MAX_SIDE


def apply_to_task(task: Task, transform: Transform) -> Task | None:
    """`transform` on every grid of `task`; None if any result is larger than 30x30."""
    def ex(e: Example) -> Example:
        return Example(transform.apply(e.input), None if e.output is None else transform.apply(e.output))

    out = replace(task, train=tuple(ex(e) for e in task.train), test=tuple(ex(e) for e in task.test))
    return out if all(fits(g) for g in out.grids()) else None


def permute_examples(task: Task, rng: random.Random) -> Task:
    order = list(range(len(task.train)))
    rng.shuffle(order)
    return replace(task, train=tuple(task.train[i] for i in order))

"""Means, standard errors and paired differences over inputs (passages or tasks).

Every figure in a table is a mean over inputs of each input's own mean over its trials
(self-edits x seeds), so the standard error over inputs accounts for several self-edits and
seeds per input (they are not counted as independent samples).
"""

from __future__ import annotations

import math

TIE = 1e-9
"""Rewards closer than this are equal: a mean of seeds' accuracies carries float rounding (0.4 and 0.2
average to 0.30000000000000004, which must not beat a baseline of 0.3)."""


def mean_and_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean.

    >>> mean_and_stderr([0.0, 1.0, 0.5, 0.5])
    (0.5, 0.2041241452319315)
    >>> mean_and_stderr([0.25])
    (0.25, 0.0)
    """
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def paired_difference(values: dict[str, float], reference: dict[str, float]) -> tuple[float, float, int] | None:
    """Mean of values[i] - reference[i] over the inputs both have, its standard error, and how many; None under 2.

    >>> [round(x, 3) for x in paired_difference({"a": 0.3, "b": 0.6, "c": 1.0}, {"a": 0.1, "b": 0.5})]
    [0.15, 0.05, 2]
    """
    shared = sorted(set(values) & set(reference))
    if len(shared) < 2:  # no standard error from one input
        return None
    mean, stderr = mean_and_stderr([values[i] - reference[i] for i in shared])
    return mean, stderr, len(shared)

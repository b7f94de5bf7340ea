"""Helpers the benchmarks share: device synchronisation, timing, and the dense matmul peak that MFU figures divide by."""

from __future__ import annotations

import time

import torch


def sync(device: str) -> None:
    """Wait for queued GPU work, so that a wall-clock reading covers it (a no-op on CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, fn):
    """`fn()` and its wall-clock seconds, with the device's queued work inside the reading."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def matmul_peak(device: str, dtype: torch.dtype, seconds: float = 3.0) -> float:
    """Best dense matmul FLOP/s over a few square sizes, each timed for `seconds` / 3."""
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        torch.mm(a, b)
        sync(device)
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            torch.mm(a, b)
            reps += 1
        sync(device)
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - start))
    return best

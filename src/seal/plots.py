"""Plots written into run directories (matplotlib is optional: without it, no plot and no error)."""

from __future__ import annotations

from pathlib import Path


def plot_conditions(summary: dict, path: Path, title: str = "") -> Path | None:
    """Bar chart of accuracy per condition with standard-error bars."""
    import textwrap

    from seal.report import label

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = list(summary["conditions"])
    means = [100 * summary["conditions"][n]["accuracy"] for n in names]
    errors = [100 * summary["conditions"][n]["stderr"] for n in names]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(names), 4.2))
    ticks = [textwrap.fill(label(n, summary.get("data_source")), 16) for n in names]  # long run and file names wrap at hyphens and spaces
    bars = ax.bar(range(len(names)), means, yerr=errors, capsize=4, color="#4878a8")
    ax.set_xticks(range(len(names)), ticks, fontsize=8)
    ax.bar_label(bars, labels=[f"{m:.1f}" for m in means], padding=3)
    ax.set_ylabel(f"no-context accuracy, % ({summary['grader']})")
    ax.set_ylim(0, max(100.0, max(m + e for m, e in zip(means, errors)) + 10) if means else 100)
    ax.set_title(title, fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_rewards(history: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rounds = [h["round"] for h in history]
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    ax.errorbar(rounds, [100 * h["mean_reward"] for h in history], yerr=[100 * h["reward_stderr"] for h in history],
                marker="o", capsize=4, label="sampled self-edits")
    baseline = history[0].get("baseline", "no-adaptation") if history else "no-adaptation"  # what rewards beat
    ax.plot(rounds, [100 * h["mean_baseline"] for h in history], "--", color="grey",
            label=f"baseline: {baseline.replace('-', ' ')}")
    ax.set_xlabel("ReST-EM round")
    ax.set_ylabel("reward: no-context accuracy, %")
    ax.set_xticks(rounds)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_forgetting(summary: dict, path: Path) -> Path | None:
    """Heat-map of the mean accuracy matrix per condition (rows: after step t; columns: passage j)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        return None
    conditions = summary["conditions"]
    top = max([1.0] + [100 * v for c in conditions.values() for row in c["matrix"] for v in row])  # one scale for all
    fig, axes = plt.subplots(1, len(conditions), figsize=(0.6 + 3.6 * len(conditions), 3.6), squeeze=False)
    for ax, (name, c) in zip(axes[0], conditions.items()):
        n = c["steps"]
        grid = np.full((n, n), np.nan)
        for t, row in enumerate(c["matrix"]):
            grid[t, :len(row)] = [100 * v for v in row]
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=top)
        for t in range(n):
            for j in range(n):
                if not np.isnan(grid[t, j]):
                    ax.text(j, t, f"{grid[t, j]:.0f}", ha="center", va="center", fontsize=7, color="white")
        ax.set_title(f"{name} ({c['sequences']} seq.)", fontsize=9)
        ax.set_xlabel("passage")
        ax.set_ylabel("after step")
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        fig.colorbar(image, ax=ax, fraction=0.046, label="accuracy, %")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

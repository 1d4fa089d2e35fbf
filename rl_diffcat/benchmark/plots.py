"""Learning-curve figures: mean evaluation return across seeds with a 95% bootstrap band."""

from __future__ import annotations

from typing import Optional

import pandas as pd

from rl_diffcat.benchmark.stats import bootstrap_ci


def curve_with_band(curves: pd.DataFrame, confidence: float = 0.95, n_resamples: int = 2000) -> pd.DataFrame:
    """Mean return across seeds at each evaluation step, with a percentile-bootstrap band.

    :param curves: rows ``(seed, step, mean_return)`` of one (env, algo).
    :param confidence: coverage of the band.
    :param n_resamples: bootstrap resamples per step.
    :return: columns ``step, mean, low, high, n_seeds``.
    """
    rows = []
    for step, group in curves.groupby("step", sort=True):
        values = group["mean_return"].to_numpy()
        mean, low, high = bootstrap_ci(values, "mean", confidence, n_resamples, seed=int(step))
        rows.append({"step": step, "mean": mean, "low": low, "high": high, "n_seeds": len(values)})
    return pd.DataFrame(rows)


def _format_steps(value: float, _position: int) -> str:
    """Tick labels 0, 500, 10k, 1.5M."""
    for threshold, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:g}{suffix}"
    return f"{value:g}"


def plot_learning_curves(curves: pd.DataFrame, env_id: str, path: str, title: Optional[str] = None) -> str:
    """Write one PNG with a line per algo (mean across seeds) and its 95% bootstrap band.

    :param curves: the compare's evaluation rows (``env, algo, seed, step, mean_return, ...``).
    :param env_id: the env to plot; other envs' rows are ignored.
    :param path: the PNG file to write.
    :param title: the title; by default the env id and the number of seeds.
    :return: ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    env_curves = curves[curves["env"] == env_id]
    if env_curves.empty:
        raise ValueError(f"No evaluation rows for {env_id!r}; envs present: {sorted(curves['env'].unique())}")
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    seed_counts = set()
    # Distinct dash patterns keep identical curves (e.g. two algos with the same result) visible.
    styles = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
    for index, (algo, group) in enumerate(env_curves.groupby("algo", sort=True)):
        band = curve_with_band(group)
        n_seeds = group["seed"].nunique()
        seed_counts.add(n_seeds)
        (line,) = ax.plot(
            band["step"], band["mean"], linewidth=2, linestyle=styles[index % len(styles)], label=f"{algo} ({n_seeds} seeds)"
        )
        ax.fill_between(band["step"], band["low"], band["high"], color=line.get_color(), alpha=0.2, linewidth=0)
    seeds_text = f"{seed_counts.pop()} seeds" if len(seed_counts) == 1 else "seeds per algo in legend"
    ax.set_title(title or f"{env_id}: mean deterministic eval return, 95% bootstrap CI ({seeds_text})", fontsize=10)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_format_steps))
    ax.legend(loc="best", fontsize=9, frameon=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["curve_with_band", "plot_learning_curves"]

"""Learning-curve figures: mean evaluation return across seeds with a 95% bootstrap band."""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Tuple

import numpy as np
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
        values = group["mean_return"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]  # a diverged run's NaN evaluation is no point on the curve
        if values.size == 0:
            continue
        mean, low, high = bootstrap_ci(values, "mean", confidence, n_resamples, seed=int(step))
        rows.append({"step": step, "mean": mean, "low": low, "high": high, "n_seeds": len(values)})
    return pd.DataFrame(rows)


def _format_steps(value: float, _position: int) -> str:
    """Tick labels 0, 500, 10k, 1.5M."""
    for threshold, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:g}{suffix}"
    return f"{value:g}"


def _stops_short(groups, budgets: Optional[Mapping[Tuple[str, str], int]]) -> Callable[[pd.DataFrame], bool]:
    """Which lines get ``to <step>`` in the legend: those that end before their runs' budget, when
    the caller knows the budgets; else (curves read back from a CSV) those that end before the
    figure's last step."""
    if budgets is not None:
        return lambda group: group["step"].max() < budgets.get((group["env"].iloc[0], group["algo"].iloc[0]), 0)
    last_step = max(group["step"].max() for _, group in groups)
    return lambda group: group["step"].max() < last_step


def _draw_curves(ax, groups, in_progress: Callable[[pd.DataFrame], bool]) -> set:
    """One line per ``(name, rows)`` of ``groups`` with its band; :return: the seed counts seen."""
    seed_counts = set()
    # Distinct dash patterns keep identical curves (e.g. two algos with the same result) visible.
    styles = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1))]
    for index, (name, group) in enumerate(groups):
        # The mean and band average the seeds that got furthest, the same seeds at every step: a seed
        # that stopped short (in progress) joining only the early steps would move the mean by itself.
        # Those seeds are drawn alone, thin and dotted.
        reach = group.groupby("seed")["step"].transform("max")
        furthest, shorter = group[reach == reach.max()], group[reach < reach.max()]
        band = curve_with_band(furthest)
        n_seeds = furthest["seed"].nunique()
        seed_counts.add(n_seeds)
        label = f"{name} ({n_seeds} seed{'s' if n_seeds > 1 else ''}"
        if in_progress(group):  # runs still in progress stop short of where they are going
            label += f", to {_format_steps(group['step'].max(), 0)}"
        n_shorter = shorter["seed"].nunique()
        label += f"; {n_shorter} shorter, dotted)" if n_shorter else ")"
        (line,) = ax.plot(band["step"], band["mean"], linewidth=2, linestyle=styles[index % len(styles)], label=label)
        ax.fill_between(band["step"], band["low"], band["high"], color=line.get_color(), alpha=0.2, linewidth=0)
        for _, seed_rows in shorter.groupby("seed"):
            ax.plot(seed_rows["step"], seed_rows["mean_return"], linewidth=0.8, linestyle=":", alpha=0.7, color=line.get_color())
    return seed_counts


def _figure(draw, title_prefix: str, title: Optional[str], path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    seed_counts = draw(ax)
    seeds_text = f"{seed_counts.pop()} seeds" if len(seed_counts) == 1 else "seeds per line in legend"
    separator = ":\n" if len(title_prefix) > 30 else ": "
    ax.set_title(title or f"{title_prefix}{separator}mean deterministic eval return, 95% bootstrap CI ({seeds_text})", fontsize=10)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_format_steps))
    ax.legend(loc="best", fontsize=9, frameon=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_learning_curves(
    curves: pd.DataFrame, env_id: str, path: str, title: Optional[str] = None, budgets: Optional[Mapping[Tuple[str, str], int]] = None
) -> str:
    """Write one PNG with a line per algo (mean across seeds) and its 95% bootstrap band.

    :param curves: the compare's evaluation rows (``env, algo, seed, step, mean_return, ...``).
    :param env_id: the env to plot; other envs' rows are ignored.
    :param path: the PNG file to write.
    :param title: the title; by default the env id and the number of seeds.
    :param budgets: env steps planned per ``(env, algo)``: a line that ends before its budget
        (runs in progress) says in the legend how far it got. ``None``: a line that ends before
        the others says so (then a finished run can too, next to PPO, which ends on a whole
        rollout past its budget).
    :return: ``path``.
    """
    env_curves = curves[curves["env"] == env_id]
    if env_curves.empty:
        raise ValueError(f"No evaluation rows for {env_id!r}; envs present: {sorted(curves['env'].unique())}")
    groups = list(env_curves.groupby("algo", sort=True))
    return _figure(lambda ax: _draw_curves(ax, groups, _stops_short(groups, budgets)), env_id, title, path)


def plot_overlay(curves: pd.DataFrame, path: str, title: Optional[str] = None, budgets: Optional[Mapping[Tuple[str, str], int]] = None) -> str:
    """Write one PNG with a line per (env, algo): for tasks that share a return scale, such as a
    discretized env next to its continuous original (``rl_diffcat/Pendulum-Discrete-v0`` and
    ``Pendulum-v1``), where each algo can run on only one of them.

    :param curves: the compare's evaluation rows.
    :param path: the PNG file to write.
    :param title: the title; by default the envs and the number of seeds.
    :param budgets: as in :func:`plot_learning_curves`.
    :return: ``path``.
    """
    if curves.empty:
        raise ValueError("No evaluation rows to plot")
    groups = [(f"{algo} on {env}", group) for (env, algo), group in curves.groupby(["env", "algo"], sort=True)]
    envs = " vs ".join(str(env) for env in curves["env"].unique())
    return _figure(lambda ax: _draw_curves(ax, groups, _stops_short(groups, budgets)), envs, title, path)


__all__ = ["curve_with_band", "plot_learning_curves", "plot_overlay"]

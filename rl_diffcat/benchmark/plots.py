"""Figures of a compare: learning curves (mean evaluation return across seeds with a 95% bootstrap
band) and final scores (IQM with its 95% stratified-bootstrap interval, and every seed)."""

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


def _default_title(title_prefix: str, seed_counts: set) -> str:
    """``ENV: mean deterministic eval return, 95% bootstrap CI (5 seeds)``; with one seed per line
    there is no band to name. A long env id is followed by a line break, so the title fits."""
    separator = ":\n" if len(title_prefix) > 30 else ": "
    if seed_counts == {1}:
        return f"{title_prefix}{separator}deterministic eval return (1 seed: no band)"
    seeds_text = f"{next(iter(seed_counts))} seeds" if len(seed_counts) == 1 else "seeds per line in legend"
    return f"{title_prefix}{separator}mean deterministic eval return, 95% bootstrap CI ({seeds_text})"


def _figure(draw, title_prefix: str, title: Optional[str], path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    seed_counts = draw(ax)
    ax.set_title(title or _default_title(title_prefix, seed_counts), fontsize=10)
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


FINAL_COLUMNS = ("env", "algo", "seed", "final_return")


def _draw_final_scores(ax, env_rows: pd.DataFrame, n_resamples: int) -> None:
    """One env's panel: a row per algo with its CI bar, IQM diamond and seed dots."""
    rng = np.random.default_rng(0)  # vertical jitter of the seed dots, the same on every redraw
    algos = list(dict.fromkeys(env_rows["algo"]))
    for position, algo in enumerate(algos):
        scores = env_rows.loc[env_rows["algo"] == algo, "final_return"].to_numpy(dtype=float)
        estimate, low, high = bootstrap_ci(scores, "iqm", n_resamples=n_resamples)
        color = f"C{position % 10}"
        ax.plot([low, high], [position, position], color=color, linewidth=6, alpha=0.35, solid_capstyle="butt")
        ax.plot([estimate], [position], marker="D", color=color, markersize=7)
        jitter = rng.uniform(-0.18, 0.18, size=scores.size)
        ax.scatter(scores, position + jitter, s=12, color="black", alpha=0.6, zorder=3, linewidths=0)
    ax.set_yticks(range(len(algos)))
    ax.set_yticklabels([f"{algo} ({int((env_rows['algo'] == algo).sum())})" for algo in algos], fontsize=8)
    ax.set_ylim(len(algos) - 0.5, -0.5)
    ax.set_xlabel("final return", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)


def plot_final_scores(finals: pd.DataFrame, path: str, title: Optional[str] = None, n_resamples: int = 10_000) -> str:
    """Write one PNG with a panel per env, in the style of rliable's interval estimates: per algo its
    IQM across seeds (diamond) with the 95% stratified-bootstrap interval (bar), the same figures as
    the compare's ``summary.md``, and each seed's final return (dot), so a lone bad seed shows.

    :param finals: rows ``env, algo, seed, final_return`` of finished runs with a finite return.
    :param path: the PNG file to write.
    :param title: the title; by default what the marks mean.
    :param n_resamples: bootstrap resamples per interval.
    :return: ``path``.
    """
    missing = [column for column in FINAL_COLUMNS if column not in finals.columns]
    if missing:
        raise ValueError(f"final scores need the columns {list(FINAL_COLUMNS)}; missing {missing}")
    if finals.empty:
        raise ValueError("No final returns to plot")
    if not np.isfinite(finals["final_return"].to_numpy(dtype=float)).all():
        raise ValueError("final returns must be finite: leave out diverged runs (the summary lists them)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(finals["env"]))
    n_cols = min(len(envs), 3)
    n_rows = -(-len(envs) // n_cols)
    n_algos = max(finals.groupby("env")["algo"].nunique())
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(max(4.2 * n_cols, 6.0), 0.9 + n_rows * (0.55 * n_algos + 0.9)), dpi=120, squeeze=False
    )
    rows_of = {env: finals[finals["env"] == env] for env in envs}
    # the same algos (and seed counts) in every panel: their names only once per row of panels
    labels_once = len({tuple(rows.groupby("algo", sort=False).size().items()) for rows in rows_of.values()}) == 1
    for index, (ax, env) in enumerate(zip(axes.flat, envs)):
        _draw_final_scores(ax, rows_of[env], n_resamples)
        ax.set_title(str(env), fontsize=9)
        if labels_once and index % n_cols:
            ax.tick_params(axis="y", labelleft=False)
    for ax in list(axes.flat)[len(envs):]:
        ax.set_visible(False)
    fig.suptitle(
        title or "Final return: IQM (diamond), 95% stratified-bootstrap CI (bar),"
        + ("\n" if n_cols == 1 else " ")
        + "seeds (dots; count after the algo)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["FINAL_COLUMNS", "curve_with_band", "plot_final_scores", "plot_learning_curves", "plot_overlay"]

"""Turn the finished runs of a compare into the results folder: curves CSV, runs CSV, PNGs, Markdown."""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from rl_diffcat.benchmark.callbacks import EVAL_COLUMNS
from rl_diffcat.benchmark.plots import plot_final_scores, plot_learning_curves, plot_overlay
from rl_diffcat.benchmark.progress import return_decimals
from rl_diffcat.compare.grid import run_dir
from rl_diffcat.benchmark.stats import bootstrap_ci

FINISHED = ("done", "skipped")
# Runs whose evaluations are plotted and written: the finished ones and those with a checkpoint.
WITH_CURVES = FINISHED + ("in progress",)
RUN_COLUMNS = (
    "env", "algo", "seed", "status", "steps", "final_mean_return", "mean_eval_return", "wall_clock_s", "env_steps_per_s",
    "resumed_at", "evaluated_to", "last_eval_return", "log",
)


def collect_curves(statuses: Sequence[Dict[str, Any]], results_dir: str) -> pd.DataFrame:
    """Concatenate the ``eval.csv`` of every finished or in-progress run (failed runs are left out).

    :param statuses: the output of :func:`~rl_diffcat.compare.engine.run_compare`.
    :param results_dir: the results folder.
    :return: the rows ``env, algo, seed, step, mean_return, std_return, wall_clock``.
    """
    paths = [os.path.join(run_dir(results_dir, status["spec"]), "eval.csv") for status in statuses if status["status"] in WITH_CURVES]
    frames = [
        # a row cut short while another process writes it has empty fields: left out, not read as a value
        pd.read_csv(path).dropna(subset=["step", "mean_return", "wall_clock"])
        for path in paths
        if os.path.exists(path)  # a run copied without its curve still has its row in the tables
    ]
    if not frames:
        return pd.DataFrame(columns=list(EVAL_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(EVAL_COLUMNS)]


def runs_table(statuses: Sequence[Dict[str, Any]], curves: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """One row per run with its status (done, failed, in progress or missing), final return, mean
    return over all its evaluations (each counted once: with evenly spaced evaluations, about the area
    under its learning curve / steps; it tells a run that learned fast and stayed there from one that
    got there at the end, or dipped), wall-clock,
    env-steps/second, the steps at which it went on from a checkpoint (empty for a run trained in one
    go) and the step and return of its last evaluation. An in-progress run has no final return and no mean of
    evaluations: over a shorter horizon they do not compare with the finished runs'.

    :param statuses: the output of :func:`~rl_diffcat.compare.engine.run_compare`.
    :param curves: the output of :func:`collect_curves` (None: no mean over evaluations).
    """
    mean_eval: Dict[Any, float] = {}
    evaluated_to: Dict[Any, float] = {}
    last_eval: Dict[Any, float] = {}
    if curves is not None and not curves.empty:
        per_run = curves.sort_values("step").groupby(["env", "algo", "seed"])
        mean_eval = per_run["mean_return"].agg(lambda returns: returns.mean(skipna=False)).to_dict()  # a NaN return shows
        evaluated_to = per_run["step"].last().to_dict()
        last_eval = per_run["mean_return"].last().to_dict()
    rows = []
    for status in statuses:
        spec, summary = status["spec"], status["summary"] or {}
        key = (spec.env_id, spec.algo, spec.seed)
        finished = status["status"] in FINISHED
        rows.append(
            {
                "env": spec.env_id,
                "algo": spec.algo,
                "seed": spec.seed,
                "status": "done" if finished else status["status"],
                "steps": spec.steps,
                "final_mean_return": summary.get("final_mean_return", float("nan")),
                "mean_eval_return": mean_eval.get(key, float("nan")) if finished else float("nan"),
                "wall_clock_s": summary.get("wall_clock_s", float("nan")),
                "env_steps_per_s": summary.get("env_steps_per_s", float("nan")),
                "resumed_at": " ".join(str(step) for step in summary.get("resumed_at", [])),
                "evaluated_to": evaluated_to.get(key, float("nan")),
                "last_eval_return": last_eval.get(key, float("nan")),
                "log": status["log"],
            }
        )
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def _finite_returns(finished: pd.DataFrame) -> Tuple[pd.DataFrame, int]:
    """The finished runs whose final return is finite (a diverged run is left out of every aggregate),
    and how many were left out (the summary says so)."""
    finite = np.isfinite(finished["final_mean_return"].to_numpy(dtype=float))
    return finished[finite], int((~finite).sum())


def final_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """The final returns the summary aggregates: finished runs whose return is finite.

    :param runs: the output of :func:`runs_table`.
    :return: rows ``env, algo, seed, final_return`` (the input to
        :func:`~rl_diffcat.benchmark.plots.plot_final_scores`).
    """
    finished, _ = _finite_returns(runs[runs["status"].isin(FINISHED)])
    return finished.rename(columns={"final_mean_return": "final_return"})[["env", "algo", "seed", "final_return"]]


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if pd.isna(value) else f"{value:.{digits}f}"


def markdown_summary(runs: pd.DataFrame, n_resamples: int = 10_000) -> str:
    """Per env: final return (mean +/- std over seeds) and IQM with its 95% stratified-bootstrap CI
    per algo, then every (algo, seed) with its wall-clock and env-steps/second.

    :param runs: the output of :func:`runs_table`.
    :param n_resamples: bootstrap resamples for the IQM intervals.
    :return: Markdown text.
    """
    lines = [
        "# Comparison results",
        "",
        "Final return = mean return of the last deterministic evaluation of a run. IQM = interquartile mean",
        "across seeds (rliable's definition) with a 95% percentile stratified-bootstrap CI"
        f" ({n_resamples} resamples, `rl_diffcat.benchmark.stats`). Wall-clock = duration of `learn()` including"
        " evaluations; env-steps/s excludes evaluation time. Mean of evaluations = a run's mean return over all its"
        " evaluations, each counted once (with evenly spaced evaluations, about the area under its learning curve /"
        " steps), averaged over seeds. A final return that is NaN or inf (a diverged run) is shown and left out of"
        " the aggregates; with one seed there is no spread (n/a)."
        " Failed, missing and in-progress runs are listed but not aggregated; an in-progress run (one that left a"
        " checkpoint: it spans sessions, or is still going) shows its last evaluation so far, and its curve is plotted"
        " as far as it got. A run marked resumed was interrupted and went on"
        " from a checkpoint at the steps shown (reseeded there; its wall-clock is the sum of its segments).",
    ]
    for env_id, env_runs in runs.groupby("env", sort=False):
        finished = env_runs[env_runs["status"].isin(FINISHED)]
        d = return_decimals(list(env_runs["final_mean_return"]) + list(env_runs["mean_eval_return"]))
        lines += ["", f"## {env_id}", "", "| algo | seeds | steps | final return (mean ± std) | IQM [95% CI] | mean of evaluations | wall-clock s (mean) | env-steps/s (mean) |"]
        lines.append("|---|---|---|---|---|---|---|---|")
        for algo, group in env_runs.groupby("algo", sort=False):
            done = finished[finished["algo"] == algo]
            if done.empty:
                lines.append(f"| {algo} | 0 of {len(group)} | {group['steps'].iloc[0]} | no finished run | n/a | n/a | n/a | n/a |")
                continue
            done, n_diverged = _finite_returns(done)
            diverged = f" ({n_diverged} NaN/inf left out)" if n_diverged else ""
            if done.empty:
                lines.append(f"| {algo} | 0 of {len(group)}{diverged} | {group['steps'].iloc[0]} | no finite final return | n/a | n/a | n/a | n/a |")
                continue
            scores = done["final_mean_return"].to_numpy(dtype=float)
            seeds = (f"{len(done)}" if len(done) == len(group) else f"{len(done)} of {len(group)}") + diverged
            if len(scores) > 1:
                estimate, low, high = bootstrap_ci(scores, "iqm", n_resamples=n_resamples)
                spread, iqm = f"{scores.mean():.{d}f} ± {scores.std(ddof=1):.{d}f}", f"{estimate:.{d}f} [{low:.{d}f}, {high:.{d}f}]"
            else:  # one seed: no spread and no interval to report
                spread, iqm = f"{scores[0]:.{d}f} ± n/a", f"{scores[0]:.{d}f} [n/a]"
            lines.append(
                f"| {algo} | {seeds} | {done['steps'].iloc[0]} | {spread} | {iqm} | {_fmt(done['mean_eval_return'].mean(skipna=False), d)} | "
                f"{done['wall_clock_s'].mean():.1f} | {done['env_steps_per_s'].mean():.0f} |"
            )
        lines += ["", "| algo | seed | status | final return | mean of evaluations | wall-clock s | env-steps/s |", "|---|---|---|---|---|---|---|"]
        for row in env_runs.itertuples():
            status = f"{row.status} (resumed at {row.resumed_at})" if row.resumed_at else row.status
            if row.status == "in progress" and not pd.isna(row.evaluated_to):
                status += f": last evaluation {_fmt(row.last_eval_return, d)} at step {int(row.evaluated_to)} of {row.steps}"
            diverged = row.status == "done" and pd.isna(row.final_mean_return)  # finished, with a NaN return
            final = "NaN" if diverged else _fmt(row.final_mean_return, d)
            lines.append(
                f"| {row.algo} | {row.seed} | {status} | {final} | {_fmt(row.mean_eval_return, d)} | "
                f"{_fmt(row.wall_clock_s)} | {_fmt(row.env_steps_per_s, 0)} |"
            )
    return "\n".join(lines) + "\n"


def write_results(statuses: Sequence[Dict[str, Any]], results_dir: str, overlay: bool = False) -> Dict[str, List[str]]:
    """Write ``eval_curves.csv``, ``runs.csv``, ``summary.md``, ``learning_curves_<env>.png`` and
    ``final_scores.png`` (every env; once a run has finished with a finite return).

    :param statuses: the output of :func:`~rl_diffcat.compare.engine.run_compare`.
    :param results_dir: the results folder.
    :param overlay: also draw every (env, algo) in one ``learning_curves_overlay.png`` (envs on one
        return scale, e.g. a discretized task next to its continuous original).
    :return: ``{"csv": [...], "markdown": [...], "png": [...]}`` paths written.
    """
    os.makedirs(results_dir, exist_ok=True)
    curves = collect_curves(statuses, results_dir)
    runs = runs_table(statuses, curves)
    written: Dict[str, List[str]] = {"csv": [], "markdown": [], "png": []}
    for name, frame in (("eval_curves.csv", curves), ("runs.csv", runs)):
        path = os.path.join(results_dir, name)
        frame.to_csv(path, index=False)
        written["csv"].append(path)
    path = os.path.join(results_dir, "summary.md")
    summary = markdown_summary(runs)  # before opening: an error must not leave the previous summary empty
    with open(path, "w") as file:
        file.write(summary)
    written["markdown"].append(path)
    budgets: Dict[Tuple[str, str], int] = {}
    for status in statuses:
        key = (status["spec"].env_id, status["spec"].algo)
        budgets[key] = max(budgets.get(key, 0), status["spec"].steps)
    for env_id in curves["env"].unique():
        png = os.path.join(results_dir, f"learning_curves_{str(env_id).replace('/', '-')}.png")
        written["png"].append(plot_learning_curves(curves, env_id, png, budgets=budgets))
    if overlay and curves["env"].nunique() > 1:
        written["png"].append(plot_overlay(curves, os.path.join(results_dir, "learning_curves_overlay.png"), budgets=budgets))
    finals = final_scores(runs)
    if not finals.empty:
        written["png"].append(plot_final_scores(finals, os.path.join(results_dir, "final_scores.png")))
    for stale in glob.glob(os.path.join(results_dir, "learning_curves_*.png")) + glob.glob(os.path.join(results_dir, "final_scores.png")):
        if stale not in written["png"]:  # an earlier report's figure of runs this one does not show
            os.remove(stale)
    return written

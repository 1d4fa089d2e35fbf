"""Aggregate statistics across seeds: interquartile mean (IQM) and stratified-bootstrap intervals.

This follows rliable (Agarwal et al., 2021, "Deep RL at the Edge of the Statistical Precipice"):
the IQM is the mean of the middle 50% of all runs (``scipy.stats.trim_mean(x, 0.25)``), and its
95% interval comes from a *stratified* bootstrap, i.e. runs are resampled with replacement
separately inside each task so every resample keeps the same number of runs per task. The
interval is the percentile interval of the bootstrap distribution (rliable's default).

We implement it in a few lines of numpy instead of depending on ``rliable``: rliable pulls in
``arch``, ``seaborn`` and ``statsmodels`` for what is here one vectorised resampling step (and
rliable 1.2.0 does not even import next to pandas 3, through ``arch``). The tests check this
implementation against hand-computed cases, exact enumeration of the bootstrap distribution,
``scipy.stats.trim_mean`` and ``scipy.stats.bootstrap``.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple, Union

import numpy as np

ArrayLike = Union[np.ndarray, list, tuple]


def iqm(scores: ArrayLike, axis: Optional[int] = None) -> Union[float, np.ndarray]:
    """Interquartile mean: the mean of the scores that remain after dropping the lowest and the
    highest 25% (``int(0.25 * n)`` values on each side, as ``scipy.stats.trim_mean``).

    It is robust to one outlier seed yet uses half of the runs, unlike the median.

    :param scores: the scores; flattened when ``axis`` is None.
    :param axis: the axis holding the runs; None flattens all values (rliable's convention for a
        ``(n_runs, n_tasks)`` score matrix).
    :return: the IQM (a float when ``axis`` is None).
    """
    values = np.asarray(scores, dtype=np.float64)
    if axis is None:
        values = values.reshape(-1)
        axis = 0
    n = values.shape[axis]
    if n == 0:
        raise ValueError("iqm() needs at least one score, got an empty array")
    cut = int(0.25 * n)
    ordered = np.sort(values, axis=axis)
    middle = np.take(ordered, np.arange(cut, n - cut), axis=axis)
    result = middle.mean(axis=axis)
    return float(result) if np.ndim(result) == 0 else result


def _as_score_matrix(scores: ArrayLike) -> np.ndarray:
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError(
            f"scores must have shape (n_runs,) or (n_runs, n_tasks) with n_runs >= 1, got shape {matrix.shape}"
        )
    if not np.all(np.isfinite(matrix)):
        raise ValueError("scores contain NaN or inf; drop the failed runs before aggregating")
    return matrix


def stratified_bootstrap(
    scores: ArrayLike,
    statistic: Callable[[np.ndarray], np.ndarray] = lambda m: iqm(m, axis=1),
    n_resamples: int = 10_000,
    seed: Optional[int] = 0,
) -> np.ndarray:
    """Bootstrap distribution of ``statistic``, resampling runs with replacement within each task.

    :param scores: ``(n_runs,)`` for one task or ``(n_runs, n_tasks)``.
    :param statistic: maps a batch of resampled score sets, shape ``(n_resamples, n_runs * n_tasks)``,
        to ``(n_resamples,)``. The default is the IQM of each set.
    :param n_resamples: number of bootstrap resamples.
    :param seed: seed of the numpy generator, for reproducible intervals.
    :return: the ``(n_resamples,)`` bootstrap statistics.
    """
    matrix = _as_score_matrix(scores)
    n_runs, n_tasks = matrix.shape
    rng = np.random.default_rng(seed)
    # Resampled run index per (resample, run slot, task): strata never mix.
    idx = rng.integers(0, n_runs, size=(n_resamples, n_runs, n_tasks))
    resampled = matrix[idx, np.arange(n_tasks)]
    return np.asarray(statistic(resampled.reshape(n_resamples, n_runs * n_tasks)), dtype=np.float64)


def bootstrap_ci(
    scores: ArrayLike,
    statistic: str = "iqm",
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: Optional[int] = 0,
) -> Tuple[float, float, float]:
    """Point estimate and percentile stratified-bootstrap interval of the IQM or the mean.

    :param scores: ``(n_runs,)`` for one task or ``(n_runs, n_tasks)``.
    :param statistic: ``"iqm"`` or ``"mean"``.
    :param confidence: coverage of the interval, in (0, 1).
    :param n_resamples: number of bootstrap resamples.
    :param seed: seed of the resampling, so a table is reproducible.
    :return: ``(estimate, low, high)``. With a single run the interval collapses to the estimate.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    functions = {"iqm": lambda m: iqm(m, axis=1), "mean": lambda m: m.mean(axis=1)}
    if statistic not in functions:
        raise ValueError(f"Unknown statistic {statistic!r}; choose one of {sorted(functions)}")
    matrix = _as_score_matrix(scores)
    estimate = float(functions[statistic](matrix.reshape(1, -1))[0])
    distribution = stratified_bootstrap(matrix, functions[statistic], n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(distribution, [100 * alpha, 100 * (1 - alpha)])
    return estimate, float(low), float(high)

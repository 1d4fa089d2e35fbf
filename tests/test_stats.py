"""IQM and stratified-bootstrap intervals against hand computation and exact enumeration."""

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from rl_diffcat.benchmark.stats import bootstrap_ci, iqm, stratified_bootstrap


@pytest.mark.parametrize(
    "scores, expected",
    [
        ([1.0, 2.0, 3.0, 4.0], 2.5),  # drop 1 and 4
        ([5.0, 1.0, 100.0, 2.0, 3.0], 10.0 / 3.0),  # drop 1 and 100: mean(2, 3, 5)
        ([7.0], 7.0),
        ([0.0, 10.0], 5.0),  # int(0.25 * 2) = 0: nothing dropped
    ],
)
def test_iqm_hand_computed(scores, expected):
    assert iqm(scores) == pytest.approx(expected)


def test_iqm_matches_scipy_trim_mean_on_score_matrix():
    scores = np.random.default_rng(0).normal(size=(7, 3))
    assert iqm(scores) == pytest.approx(scipy.stats.trim_mean(scores, 0.25, axis=None))


def _exact_bootstrap_iqm(scores):
    """All n^n equally likely resamples of one task, enumerated."""
    return np.array([iqm([scores[i] for i in index]) for index in itertools.product(range(len(scores)), repeat=len(scores))])


def test_bootstrap_distribution_matches_exact_enumeration():
    scores = [0.0, 1.0, 2.0, 10.0]  # 4^4 = 256 resamples
    exact = _exact_bootstrap_iqm(scores)
    sampled = stratified_bootstrap(scores, n_resamples=100_000, seed=1)
    values = np.unique(exact)
    exact_freq = np.array([(exact == v).mean() for v in values])
    sampled_freq = np.array([np.isclose(sampled, v).mean() for v in values])
    assert np.isclose(sampled, values[:, None]).any(axis=0).all(), "a bootstrap IQM is not a possible resample IQM"
    # 100k draws: the standard error of each frequency is <= 0.0016.
    np.testing.assert_allclose(sampled_freq, exact_freq, atol=0.01)


def test_ci_hand_computed_two_point_case():
    # Resamples of [0, 10]: (0,0)->0 w.p. 1/4, mixed->5 w.p. 1/2, (10,10)->10 w.p. 1/4.
    # The 2.5% and 97.5% percentiles are therefore 0 and 10, and the estimate is 5.
    estimate, low, high = bootstrap_ci([0.0, 10.0], "iqm", n_resamples=20_000, seed=0)
    assert (estimate, low, high) == (5.0, 0.0, 10.0)


def test_ci_contains_estimate_and_shrinks_with_more_runs():
    rng = np.random.default_rng(3)
    few, many = rng.normal(size=5), rng.normal(size=200)
    est_few, low_few, high_few = bootstrap_ci(few)
    est_many, low_many, high_many = bootstrap_ci(many)
    assert low_few <= est_few <= high_few and low_many <= est_many <= high_many
    assert high_many - low_many < high_few - low_few


def test_stratified_bootstrap_keeps_runs_per_task():
    # Task 0 always scores 0 and task 1 always 100: any stratified resample holds 3 of each, so the
    # mean is exactly 50 every time (an unstratified bootstrap over the 6 values would vary).
    scores = np.array([[0.0, 100.0]] * 3)
    distribution = stratified_bootstrap(scores, statistic=lambda m: m.mean(axis=1), n_resamples=500, seed=0)
    np.testing.assert_array_equal(distribution, 50.0)


def test_mean_ci_is_reproducible_with_seed_and_matches_scipy():
    scores = np.array([3.0, 8.0, 1.0, 9.0, 4.0, 7.0])
    assert bootstrap_ci(scores, "mean", seed=5) == bootstrap_ci(scores, "mean", seed=5)
    _, low, high = bootstrap_ci(scores, "mean", n_resamples=50_000, seed=5)
    reference = scipy.stats.bootstrap((scores,), np.mean, n_resamples=50_000, method="percentile", random_state=0)
    assert low == pytest.approx(reference.confidence_interval.low, abs=0.1)
    assert high == pytest.approx(reference.confidence_interval.high, abs=0.1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: bootstrap_ci([1.0, np.nan]), "NaN"),
        (lambda: bootstrap_ci([1.0], "median"), "Unknown statistic"),
        (lambda: bootstrap_ci([1.0], confidence=1.5), "confidence"),
        (lambda: iqm([]), "at least one"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_learning_curve_band_is_the_mean_over_seeds_with_its_bootstrap_interval():
    from rl_diffcat.benchmark.plots import curve_with_band

    curves = pd.DataFrame(
        {
            "seed": [0, 1, 2, 0, 1, 2],
            "step": [0, 0, 0, 100, 100, 100],
            "mean_return": [10.0, 10.0, 10.0, 0.0, 30.0, 60.0],
        }
    )
    band = curve_with_band(curves).set_index("step")
    assert band.loc[0, ["mean", "low", "high"]].tolist() == [10.0, 10.0, 10.0]  # all seeds agree
    assert band.loc[100, "mean"] == 30.0 and band.loc[100, "n_seeds"] == 3
    # Resampled means of {0, 30, 60} lie in [0, 60]; the 95% interval is strictly inside the range.
    assert 0.0 <= band.loc[100, "low"] < 30.0 < band.loc[100, "high"] <= 60.0


def _summary_run(env, algo, seed, final):
    return dict(env=env, algo=algo, seed=seed, status="done", steps=100, final_mean_return=final, mean_eval_return=final - 0.1,
                wall_clock_s=1.0, env_steps_per_s=100.0, resumed_at="", evaluated_to=float("nan"), last_eval_return=float("nan"), log="")


def test_summary_tables_show_small_returns_with_enough_decimals():
    import pandas as pd

    from rl_diffcat.benchmark.report import RUN_COLUMNS, markdown_summary

    run = _summary_run
    runs = pd.DataFrame(
        [run("Bandit", "a", 0, -0.1458), run("Bandit", "a", 1, -0.1512), run("CartPole", "a", 0, 500.0), run("CartPole", "a", 1, 480.0)],
        columns=list(RUN_COLUMNS),
    )
    table = markdown_summary(runs, n_resamples=200)
    assert "| a | 0 | done | -0.1458 | -0.2458 |" in table  # a one-step task: 4 decimals
    assert "| a | 0 | done | 500.0 | 499.9 |" in table  # CartPole keeps its one decimal
    assert "| -0.1485 ± 0.0038 |" in table


def test_summary_leaves_out_a_diverged_run_and_gives_one_seed_no_spread(tmp_path):
    """A NaN final return (a diverged run) raised in the bootstrap and emptied summary.md."""
    import pandas as pd

    from rl_diffcat.benchmark.report import RUN_COLUMNS, markdown_summary

    runs = pd.DataFrame(
        [_summary_run("E", "a", 0, 100.0), _summary_run("E", "a", 1, float("nan")), _summary_run("E", "a", 2, 300.0),
         _summary_run("E", "b", 0, 7.0), _summary_run("E", "c", 0, float("inf"))],
        columns=list(RUN_COLUMNS),
    )  # fmt: skip
    table = markdown_summary(runs, n_resamples=200)
    assert "| a | 2 of 3 (1 NaN/inf left out) | 100 | 200.0 ± 141.4 |" in table
    assert "| a | 1 | done | NaN |" in table, "the diverged run is still listed"
    assert "| b | 1 | 100 | 7.0 ± n/a | 7.0 [n/a] |" in table, "one seed: no spread, no interval"
    assert "| c | 0 of 1 (1 NaN/inf left out) | 100 | no finite final return |" in table

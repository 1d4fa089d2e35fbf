"""Learning-curve figures: legends say how many seeds each line averages and where runs in
progress stop; the overlay puts a discretized task next to its continuous original. Final-score
figures: the IQM and interval of the summary, and every seed."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rl_diffcat.benchmark.plots import _default_title, _draw_curves, _stops_short, curve_with_band
from rl_diffcat.benchmark.report import write_results
from rl_diffcat.compare.grid import RunSpec, run_dir


def _curve(env, algo, seed, last_step, value):
    steps = np.arange(0, last_step + 1, 10_000)
    return pd.DataFrame(
        {"env": env, "algo": algo, "seed": seed, "step": steps, "mean_return": value + steps / 1e4, "std_return": 0.0, "wall_clock": 1.0}
    )


CURVES = pd.concat(
    [
        _curve("Pendulum-v1", "sac", 0, 50_000, -1000.0),
        _curve("Pendulum-v1", "sac", 1, 50_000, -900.0),
        _curve("Pendulum-v1", "sac", 2, 20_000, -800.0),  # in progress
        _curve("rl_diffcat/Pendulum-Discrete-v0", "diffcat-sac", 0, 30_000, -950.0),  # in progress
    ],
    ignore_index=True,
)


def test_band_counts_the_seeds_at_each_step():
    band = curve_with_band(CURVES[CURVES["algo"] == "sac"], n_resamples=200)
    assert band["n_seeds"].tolist() == [3, 3, 3, 2, 2, 2]
    at_end = CURVES[(CURVES["algo"] == "sac") & (CURVES["step"] == 50_000)]["mean_return"]
    assert band["mean"].iloc[-1] == at_end.mean()


def test_the_mean_line_averages_the_same_seeds_at_every_step():
    """A seed in progress that stopped at 20k joined the mean only up to there: the line jumped."""
    fig, ax = plt.subplots()
    _draw_curves(ax, list(CURVES[CURVES["algo"] == "sac"].groupby("algo")), lambda group: False)
    mean_line, dotted = ax.get_lines()
    plt.close(fig)
    furthest = CURVES[(CURVES["algo"] == "sac") & (CURVES["seed"] < 2)].groupby("step")["mean_return"].mean()
    np.testing.assert_allclose(mean_line.get_ydata(), furthest.to_numpy())
    assert dotted.get_linestyle() == ":" and list(dotted.get_xdata()) == [0, 10_000, 20_000]


def test_band_skips_non_finite_returns():
    curves = _curve("E", "a", 0, 20_000, 0.0)
    curves = pd.concat([curves, _curve("E", "a", 1, 20_000, 10.0)], ignore_index=True)
    curves.loc[(curves["seed"] == 1) & (curves["step"] == 10_000), "mean_return"] = np.nan
    curves.loc[(curves["seed"] == 0) & (curves["step"] == 20_000), "mean_return"] = np.inf
    band = curve_with_band(curves, n_resamples=50)
    assert band["n_seeds"].tolist() == [2, 1, 1] and np.isfinite(band[["mean", "low", "high"]].to_numpy()).all()


def _legend(groups, budgets=None):
    fig, ax = plt.subplots()
    _draw_curves(ax, groups, _stops_short(groups, budgets))
    _, labels = ax.get_legend_handles_labels()
    plt.close(fig)
    return labels


def test_overlay_legend_names_env_seeds_and_where_a_run_stops():
    groups = [(f"{algo} on {env}", group) for (env, algo), group in CURVES.groupby(["env", "algo"], sort=True)]
    labels = _legend(groups)
    assert labels == [
        "sac on Pendulum-v1 (2 seeds; 1 shorter, dotted)",  # the mean keeps the same seeds at every step
        "diffcat-sac on rl_diffcat/Pendulum-Discrete-v0 (1 seed, to 30k)",
    ]


def test_legend_marks_only_runs_short_of_their_budget_when_budgets_are_known():
    # PPO ends on a whole rollout, past the 50k budget; the SAC agent stops on it; one run is in progress
    curves = pd.concat([_curve("E", "ppo", 0, 60_000, 0.0), _curve("E", "diffcat-sac", 0, 50_000, 0.0), _curve("E", "sac", 0, 20_000, 0.0)])
    groups = list(curves.groupby("algo", sort=True))
    budgets = {("E", algo): 50_000 for algo in ("ppo", "diffcat-sac", "sac")}
    assert _legend(groups, budgets) == ["diffcat-sac (1 seed)", "ppo (1 seed)", "sac (1 seed, to 20k)"]
    assert _legend(groups)[0] == "diffcat-sac (1 seed, to 50k)"  # from the curves alone it looks unfinished


def test_title_names_the_seed_count_and_no_band_for_one_seed():
    assert _default_title("CartPole-v1", {5}) == "CartPole-v1: mean deterministic eval return, 95% bootstrap CI (5 seeds)"
    assert _default_title("CartPole-v1", {2, 5}).endswith("(seeds per line in legend)")
    assert _default_title("rl_diffcat/MinAtar-SpaceInvaders-v0", {1}) == (
        "rl_diffcat/MinAtar-SpaceInvaders-v0:\ndeterministic eval return (1 seed: no band)"
    )


def _statuses(results):
    statuses = []
    for (env, algo, seed), rows in CURVES.groupby(["env", "algo", "seed"], sort=False):
        spec = RunSpec(env, algo, seed, steps=50_000, eval_freq=10_000, n_eval_episodes=2)
        os.makedirs(run_dir(results, spec), exist_ok=True)
        rows.to_csv(os.path.join(run_dir(results, spec), "eval.csv"), index=False)
        finished = rows["step"].max() == 50_000
        summary = {"final_mean_return": rows["mean_return"].iloc[-1]} if finished else {"checkpoint_step": 20_000}
        statuses.append({"spec": spec, "status": "done" if finished else "in progress", "summary": summary, "log": ""})
    return statuses


def test_write_results_draws_the_overlay_only_when_asked(tmp_path):
    for overlay in (False, True):
        results = str(tmp_path / f"overlay_{overlay}")
        written = write_results(_statuses(results), results, overlay=overlay)
        names = sorted(os.path.basename(path) for path in written["png"])
        per_env = ["final_scores.png", "learning_curves_Pendulum-v1.png", "learning_curves_rl_diffcat-Pendulum-Discrete-v0.png"]
        assert names == sorted(per_env + (["learning_curves_overlay.png"] if overlay else []))
        for path in written["png"]:
            with open(path, "rb") as file:
                assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_row_cut_short_while_being_written_is_left_out(tmp_path):
    """--report-only may read an eval.csv whose last row another process is still writing."""
    from rl_diffcat.benchmark.report import collect_curves

    results = str(tmp_path)
    statuses = _statuses(results)
    in_progress = next(status for status in statuses if status["status"] == "in progress")
    with open(os.path.join(run_dir(results, in_progress["spec"]), "eval.csv"), "a") as file:
        file.write(f"{in_progress['spec'].env_id},{in_progress['spec'].algo},{in_progress['spec'].seed},40000,3")
    curves = collect_curves(statuses, results)
    assert len(curves) == len(CURVES) and 40_000 not in curves[curves["seed"] == in_progress["spec"].seed]["step"].tolist()


def test_a_finished_run_without_its_curve_file_is_still_tabulated(tmp_path):
    from rl_diffcat.benchmark.report import collect_curves, runs_table

    results = str(tmp_path)
    statuses = _statuses(results)
    done = next(status for status in statuses if status["status"] == "done")
    os.remove(os.path.join(run_dir(results, done["spec"]), "eval.csv"))
    curves = collect_curves(statuses, results)
    assert len(curves) == len(CURVES) - 6, "the other runs' curves are read"
    assert len(runs_table(statuses, curves)) == len(statuses)


def _finals():
    returns = {"redge": [10.0, 12.0, 11.0, -50.0, 13.0], "ppo": [5.0, 6.0, 7.0]}
    rows = [("E", algo, seed, value) for algo, values in returns.items() for seed, value in enumerate(values)]
    return pd.DataFrame(rows, columns=["env", "algo", "seed", "final_return"]), returns


def test_final_scores_panel_shows_the_iqm_its_interval_and_every_seed():
    from rl_diffcat.benchmark.plots import _draw_final_scores
    from rl_diffcat.benchmark.stats import bootstrap_ci

    finals, returns = _finals()
    fig, ax = plt.subplots()
    _draw_final_scores(ax, finals, n_resamples=2000)
    bars, diamonds = ax.lines[0::2], ax.lines[1::2]
    for position, (algo, values) in enumerate(returns.items()):
        estimate, low, high = bootstrap_ci(np.array(values), "iqm", n_resamples=2000)
        assert list(bars[position].get_xdata()) == [low, high] and list(bars[position].get_ydata()) == [position] * 2
        assert list(diamonds[position].get_xdata()) == [estimate] and diamonds[position].get_marker() == "D"
        dots = ax.collections[position].get_offsets()
        assert sorted(dots[:, 0]) == sorted(values), "every seed is drawn, the outlier included"
        assert np.all(np.abs(dots[:, 1] - position) < 0.2)
    assert diamonds[0].get_xdata()[0] == 11.0  # the IQM drops the -50 seed, the mean (-0.8) would not
    assert [label.get_text() for label in ax.get_yticklabels()] == ["redge (5)", "ppo (3)"]
    plt.close(fig)


def test_final_scores_refuse_nan_and_missing_columns(tmp_path):
    import pytest

    from rl_diffcat.benchmark.plots import plot_final_scores

    finals, _ = _finals()
    finals.loc[0, "final_return"] = float("nan")
    with pytest.raises(ValueError, match="must be finite"):
        plot_final_scores(finals, str(tmp_path / "f.png"))
    with pytest.raises(ValueError, match=r"missing \['final_return'\]"):
        plot_final_scores(finals.drop(columns="final_return"), str(tmp_path / "f.png"))


def test_write_results_draws_final_scores_of_the_finished_runs_the_summary_aggregates(tmp_path):
    from rl_diffcat.benchmark.report import final_scores, runs_table

    results = str(tmp_path)
    statuses = _statuses(results)
    written = write_results(statuses, results)
    assert os.path.join(results, "final_scores.png") in written["png"]
    finals = final_scores(runs_table(statuses))
    assert sorted(zip(finals["env"], finals["seed"])) == [("Pendulum-v1", 0), ("Pendulum-v1", 1)], "in-progress runs are left out"
    # no finished run yet: no final-scores figure
    in_progress = [status for status in statuses if status["status"] == "in progress"]
    written = write_results(in_progress, str(tmp_path / "none_finished"))
    assert not any(path.endswith("final_scores.png") for path in written["png"])


def test_a_report_removes_the_figures_of_an_earlier_report_it_does_not_redraw(tmp_path):
    results = str(tmp_path)
    statuses = _statuses(results)
    write_results(statuses, results)
    in_progress = [status for status in statuses if status["status"] == "in progress"]
    written = write_results(in_progress, results)  # say, --report-only for other seeds: nothing finished
    assert sorted(os.listdir(results)) == sorted(
        ["eval_curves.csv", "runs.csv", "summary.md", "runs"] + [os.path.basename(path) for path in written["png"]]
    )
    assert "final_scores.png" not in os.listdir(results)

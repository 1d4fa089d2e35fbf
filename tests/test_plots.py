"""Learning-curve figures: legends say how many seeds each line averages and where runs in
progress stop; the overlay puts a discretized task next to its continuous original."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from rl_diffcat.benchmark.plots import _draw_curves, _stops_short, curve_with_band
from rl_diffcat.benchmark.report import write_results
from rl_diffcat.benchmark.runner import RunSpec, run_dir


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
        per_env = ["learning_curves_Pendulum-v1.png", "learning_curves_rl_diffcat-Pendulum-Discrete-v0.png"]
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

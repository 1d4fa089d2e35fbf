"""Smoke tests of the benchmark scripts in examples/: each runs with ``--quick`` in a few seconds."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_script(name: str):
    """Import ``examples/<name>.py`` as a module (examples/ is not a package)."""
    if str(EXAMPLES) not in sys.path:  # the scripts import their sibling _tables.py
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_estimator_benchmark_quick(tmp_path):
    script = load_script("estimator_benchmark")
    script.main(["--quick", "--out", str(tmp_path)])
    grads = pd.read_csv(tmp_path / "gradient_quality.csv")
    poly = pd.read_csv(tmp_path / "polynomial.csv")
    assert {"gradient_quality.png", "polynomial.png"} <= {p.name for p in tmp_path.iterdir()}
    # One row per setting; every sampler of the registry plus the score function is measured.
    assert len(grads) == len(script.settings_grid(quick=True))
    assert set(grads["sampler"]) == set(script.DEFAULT_KNOBS)
    assert grads[["bias2_rel", "var_rel", "cosine"]].notna().all().all()
    assert (grads["var_rel"] > 0).all()
    # The score function is unbiased: its bias² sits at the Monte-Carlo floor (var / N), far below
    # straight-through's, which is biased on this nonlinear objective.
    score = grads[grads["sampler"] == "score_function"]
    straight = grads[grads["sampler"] == "straight_through"].iloc[0]
    assert (score["bias2_rel"] < 5 * score["mc_floor"]).all()
    assert (score["bias2_rel"] < straight["bias2_rel"]).all()
    # The exact gradient learns (quick mode's few steps leave the estimators near the uniform 0.2525).
    reference = poly[poly["sampler"] == "exact_gradient"].iloc[0]
    assert reference["exact_loss"] < 0.5 * (0.45**2 + 0.55**2) - 0.02


def test_estimator_benchmark_exact_gradient_matches_finite_differences():
    script = load_script("estimator_benchmark")
    import torch

    objective = script.RandomMLPObjective(n_vars=2, n_values=3, seed=1)
    logits = torch.randn(2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    objective.w1, objective.b1, objective.w2 = (w.double() for w in (objective.w1, objective.b1, objective.w2))
    joint = objective.joint_actions()

    def expected(lg):
        log_pi = (joint * lg.log_softmax(-1)).sum((-2, -1))
        return float((log_pi.exp() * objective(joint)).sum())

    grad = objective.exact_gradient(logits)
    step = 1e-6
    for index in [(0, 0), (1, 2)]:
        bump = torch.zeros_like(logits)
        bump[index] = step
        numeric = (expected(logits + bump) - expected(logits - bump)) / (2 * step)
        assert math.isclose(float(grad[index]), numeric, rel_tol=1e-5, abs_tol=1e-9)


def test_sample_law_table_quick(tmp_path):
    script = load_script("sample_law_table")
    script.main(["--quick", "--out", str(tmp_path)])
    frame = pd.read_csv(tmp_path / "sample_law_tv.csv")
    assert set(frame["sampler"]) == set(script.SAMPLERS)
    assert frame[["tv_hard", "tv_law", "tv_floor"]].apply(lambda c: c.between(0, 1)).all().all()
    # At t_1 = 0.9 the hard samples follow pi up to noise; at n_steps = 2, t_1 = 0.1 they do not.
    redge = frame[frame["sampler"] == "redge"].set_index(["n_steps", "t_1"])
    assert redge.loc[(2, 0.9), "tv_hard"] < 3 * redge.loc[(2, 0.9), "tv_floor"]
    assert redge.loc[(2, 0.1), "tv_hard"] > 10 * redge.loc[(2, 0.1), "tv_floor"]


@pytest.mark.parametrize("name", ["estimator_benchmark", "sample_law_table"])
def test_scripts_document_quick_flag(name):
    parser_args = load_script(name).parse_args(["--quick"])
    assert parser_args.quick


def run_speed_script(name: str, args: list, tmp_path) -> pd.DataFrame:
    """Run a table-writing script in a subprocess (it imports examples/_tables.py as a script would)."""
    import subprocess

    out = tmp_path / f"{name}.csv"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args, "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| " in proc.stdout  # the Markdown table
    return pd.read_csv(out)


def test_sampler_speed_reports_ratios(tmp_path):
    table = run_speed_script(
        "sampler_speed", ["--device", "cpu", "--sizes", "64x6", "--paths", "off", "eager", "--min-run-time", "0.05"], tmp_path
    )
    assert list(table["size"]) == ["64x6"]
    assert (table[["gumbel_softmax_ms", "redge_off_ms", "redge_eager_ms", "redge_off_ratio"]] > 0).all().all()


def test_agent_speed_reports_both_agents(tmp_path):
    table = run_speed_script(
        "agent_speed",
        ["--device", "cpu", "--env-steps", "20", "--grad-steps", "10", "--batch-size", "16", "--net-arch", "16", "--repeats", "1"],
        tmp_path,
    )
    assert list(table["agent"]) == ["DiffCatSAC[neighbours]", "DiffCatSAC[autograd]", "SAC"]
    assert (table[["env_steps_per_s", "grad_steps_per_s"]] > 0).all().all()
    assert table.loc[2, "grad_steps_per_s_ratio"] == 1.0


def test_agent_speed_only_keeps_references_and_reports_failed_agents(tmp_path):
    """--only times the named agents plus their references; an agent that cannot be built (here a
    compile mode torch does not know) is reported and skipped, and the others are still timed."""
    out = tmp_path / "agent_speed.csv"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_speed.py"), "--device", "cpu", "--env-steps", "10", "--grad-steps", "5",
         "--batch-size", "16", "--net-arch", "16", "--repeats", "1", "--compile", "--compile-mode", "no-such-mode",
         "--only", "DiffCatSAC[autograd]", "DiffCatSAC[autograd, compiled:no-such-mode]", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DiffCatSAC[autograd, compiled:no-such-mode]: FAILED" in proc.stdout
    assert list(pd.read_csv(out)["agent"]) == ["DiffCatSAC[autograd]", "SAC"]


def test_agent_speed_prints_each_repeat_and_stops_at_its_budget(tmp_path):
    """Figures are printed as they are measured (a run cut short by a time limit keeps them), and
    --budget starts no repeat after it is spent but still writes the table."""
    out = tmp_path / "agent_speed.csv"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_speed.py"), "--device", "cpu", "--env-steps", "10", "--grad-steps", "5",
         "--batch-size", "16", "--net-arch", "16", "--repeats", "5", "--budget", "0", "--only", "DiffCatSAC[autograd]",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DiffCatSAC[autograd] (repeat 1):" in proc.stdout and "SAC (repeat 1):" in proc.stdout
    assert "(repeat 2)" not in proc.stdout and "stopping after 1 repeat(s)" in proc.stdout
    assert list(pd.read_csv(out)["agent"]) == ["DiffCatSAC[autograd]", "SAC"]


def test_agent_speed_cuda_graph_rows():
    """--cuda-graph adds the cuda_graph=True agents (with --compile also compiled losses inside the
    graph, in torch.compile's default mode), each timed against its eager reference."""
    speed = load_script("agent_speed")
    args = speed.argparse.Namespace(compile=True, compile_mode=None, cuda_graph=True, minatar=True, halfcheetah=False, net_arch=[16])
    table = speed.agent_table(args)
    row = table["DiffCatSAC[autograd, cuda-graph]"]
    assert row["kwargs"] == dict(q_gradient="autograd", cuda_graph=True) and row["ref"] == "SAC"
    compiled = table["DiffCatSAC[neighbours, compiled, cuda-graph]"]["kwargs"]
    assert compiled["cuda_graph"] and compiled["compile_update"] and compiled["compile_kwargs"] is None
    for algo in ("DiffCatSAC", "DiscreteSAC"):
        minatar = table[f"{algo}[MinAtar CNN, cuda-graph]"]
        assert minatar["kwargs"]["cuda_graph"] and minatar["ref"] == "DiscreteSAC[MinAtar CNN]"
    args.cuda_graph = False
    assert not any("cuda-graph" in name for name in speed.agent_table(args))


def test_agent_speed_halfcheetah_rows():
    """--halfcheetah times DiffCatSAC with both q_gradients on the discretized task against SB3's SAC."""
    speed = load_script("agent_speed")
    args = speed.argparse.Namespace(compile=False, compile_mode=None, cuda_graph=False, minatar=False, halfcheetah=True, net_arch=[16])
    table = speed.agent_table(args)
    for mode in ("neighbours", "autograd"):
        row = table[f"DiffCatSAC[HalfCheetah, {mode}]"]
        assert row["env"] == "rl_diffcat/HalfCheetah-Discrete-v0" and row["kwargs"] == dict(q_gradient=mode)
        assert row["ref"] == "SAC[HalfCheetah]"
    assert table["SAC[HalfCheetah]"]["env"] == "HalfCheetah-v5"


def test_agent_speed_only_rejects_unknown_names():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_speed.py"), "--only", "DiffCatSAC[nope]"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "unknown agents" in proc.stderr


def test_sampler_speed_checks_its_paths(capsys):
    sampler_speed = load_script("sampler_speed")
    from rl_diffcat import samplers

    with pytest.raises(SystemExit):
        sampler_speed.main(["--device", "cpu", "--paths", "fastest"])
    assert "unknown path 'fastest'" in capsys.readouterr().err
    if not samplers.triton_available():
        with pytest.raises(SystemExit):
            sampler_speed.main(["--device", "cpu", "--paths", "triton@256:2"])
        assert "needs the triton package" in capsys.readouterr().err


def test_agent_speed_minatar_rows_compare_to_discrete_sac(tmp_path):
    pytest.importorskip("minatar")
    table = run_speed_script(
        "agent_speed",
        ["--device", "cpu", "--env-steps", "20", "--grad-steps", "5", "--batch-size", "16", "--net-arch", "16",
         "--repeats", "1", "--minatar"],
        tmp_path,
    ).set_index("agent")
    assert table.loc["DiffCatSAC[MinAtar CNN]", "reference"] == "DiscreteSAC[MinAtar CNN]"
    assert table.loc["DiscreteSAC[MinAtar CNN]", "grad_steps_per_s_ratio"] == 1.0
    assert (table["grad_steps_per_s"] > 0).all()


def test_critic_gradient_check_runs_on_a_saved_model(tmp_path):
    from rl_diffcat.agents import DiffCatSAC

    model = DiffCatSAC("MlpPolicy", "CartPole-v1", learning_starts=50, batch_size=16, seed=0,
                       policy_kwargs=dict(net_arch=[16, 16])).learn(200)
    model.save(tmp_path / "model.zip")
    row = run_speed_script("critic_gradient_check", [str(tmp_path / "model.zip"), "--states", "64"], tmp_path).iloc[0]
    for column in ("sign_agreement", "policy_mode_is_critic_best"):
        assert 0.0 <= row[column] <= 1.0
    assert row["derivative_to_difference_scale"] > 0


def test_critic_gradient_check_matches_a_brute_force_recomputation():
    """Each figure recomputed with one critic call per neighbour and a central difference of the
    network along each edge ``e_k - e_{a_i}`` instead of autograd."""
    import torch as th

    import rl_diffcat.envs  # noqa: F401
    from rl_diffcat.agents import DiffCatSAC

    script = load_script("critic_gradient_check")
    model = DiffCatSAC("MlpPolicy", "rl_diffcat/PolyProg-D4-v0", policy_kwargs={"net_arch": [16]}, seed=0).learn(150)
    obs = script.visited_states(model, "rl_diffcat/PolyProg-D4-v0", 40, seed=0)
    th.manual_seed(1)
    check = script.gradient_check(model, obs)
    th.manual_seed(1)
    q = lambda a: model.reduce_twin(model.critic(obs, a)).squeeze(-1).double()  # noqa: E731
    with th.no_grad():
        dist = model.actor.distribution(obs)
        action = dist.sample()  # the draw inside gradient_check
        agree, derivative_sizes, difference_sizes, best = [], [], [], []
        for factor in range(4):
            values = []
            for category in range(2):
                column = 2 * factor + category
                neighbour = action.clone()
                neighbour[:, 2 * factor : 2 * factor + 2] = 0.0
                neighbour[:, column] = 1.0
                values.append(q(neighbour))
                differs = action[:, column] == 0
                edge = neighbour - action
                derivative = (q(action + 1e-3 * edge) - q(action - 1e-3 * edge)) / 2e-3
                difference = values[-1] - q(action)
                agree.append((derivative * difference > 0)[differs])
                derivative_sizes.append(derivative[differs].abs())
                difference_sizes.append(difference[differs].abs())
            probs = dist.probs[:, 2 * factor : 2 * factor + 2]
            best.append(th.stack(values, -1).argmax(-1) == probs.argmax(-1))
    assert check["sign_agreement"] == pytest.approx(th.cat(agree).float().mean().item(), abs=1e-9)
    scale = th.cat(derivative_sizes).mean() / th.cat(difference_sizes).mean()
    assert check["derivative_to_difference_scale"] == pytest.approx(scale.item(), rel=1e-3)
    assert check["policy_mode_is_critic_best"] == pytest.approx(th.cat(best).float().mean().item(), abs=1e-9)


def test_curve_stats_on_a_hand_built_curve():
    script = load_script("curve_stats")
    curves = pd.DataFrame(
        [("E", "a", 0, step, ret) for step, ret in [(0, 0), (1, 500), (2, 100), (3, 500)]]
        + [("E", "a", 1, step, ret) for step, ret in [(0, 0), (1, 10), (2, 480), (3, 490)]]
        + [("E", "b", 0, step, ret) for step, ret in [(0, 0), (1, 10), (2, 20), (3, 30)]],
        columns=["env", "algo", "seed", "step", "mean_return"],
    )
    a, b = script.curve_stats(curves, threshold=475)
    assert a["mean_of_evaluations"] == round((275 + 245) / 2, 1)
    assert a["first_step_at_threshold_mean"] == 2 and a["first_step_at_threshold_worst"] == 2
    assert a["evaluations_below_after_first"] == 1 and a["seeds_never_at_threshold"] == 0
    assert b["first_step_at_threshold_mean"] == "never" and b["seeds_never_at_threshold"] == 1


def test_merge_curves_tabulates_finished_seeds_and_refuses_a_seed_twice(tmp_path, capsys):
    script = load_script("merge_curves")

    def curve(algo, seed, returns):
        return [("E", algo, seed, step, ret) for step, ret in enumerate(returns)]

    columns = ["env", "algo", "seed", "step", "mean_return"]
    first = pd.DataFrame(curve("a", 0, [0, 1]) + curve("a", 1, [0, 2]), columns=columns)
    second = pd.DataFrame(
        curve("a", 2, [0, 3]) + curve("a", 3, [0, 4]) + curve("a", 4, [0, 100]) + curve("a", 5, [7]), columns=columns
    )
    paths = [tmp_path / "first.csv", tmp_path / "second.csv"]
    first.to_csv(paths[0], index=False)
    second.to_csv(paths[1], index=False)
    out, table = tmp_path / "merged.csv", tmp_path / "table.csv"
    png = tmp_path / "figures" / "finals.png"  # folders that do not exist yet are made
    script.main([str(paths[0]), str(paths[1]), "--out", str(out), "--table", str(table), "--png", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finished = script.seed_finals(pd.read_csv(out))
    assert finished.loc[finished["finished"], "seed"].tolist() == [0, 1, 2, 3, 4], "the figure's seeds: seed 5 stopped short"
    merged = pd.read_csv(out)
    assert len(merged) == len(first) + len(second) and sorted(merged["seed"].unique()) == [0, 1, 2, 3, 4, 5]
    (row,) = pd.read_csv(table).to_dict("records")
    # seed 5 stopped at step 0: listed, not aggregated; IQM of 1, 2, 3, 4, 100 drops one value a side
    assert row["seeds_finished"] == "5 of 6" and row["final_per_seed"].endswith("5: to 0")
    assert row["final_mean"] == 22.0 and row["iqm"] == 3.0 and row["mean_of_evaluations"] == 11.0
    low, high = (float(x) for x in row["iqm_ci95"].strip("[]").split(","))
    assert 1.0 <= low <= 3.0 <= high <= 100.0
    with pytest.raises(ValueError, match=r"run \('E', 'a', 1\) is in input 1 and input 2"):
        script.merge_curves([first, first[first["seed"] == 1]])


def test_neighbour_q_spread_matches_the_enumerated_critic(tmp_path, capsys):
    """The spreads come from the critic's values at every category of each factor, with the other
    factors at the sampled action: checked against one critic call per neighbour."""
    import torch as th

    import rl_diffcat.envs  # noqa: F401
    from rl_diffcat.agents import DiffCatSAC

    script = load_script("neighbour_q_spread")
    env_id = "rl_diffcat/PolyProg-D4-v0"
    model = DiffCatSAC("MlpPolicy", env_id, policy_kwargs={"net_arch": [16]}, seed=0)
    obs = script.visited_states(model, env_id, steps=12, seed=0)
    th.manual_seed(1)
    value_range, value_std, scale = script.factor_spreads(model, obs)
    th.manual_seed(1)
    hard = model.actor.distribution(obs).sample()  # the same draw as inside factor_spreads
    n_factors, n_categories = len(model.action_dims), model.action_dims[0]
    values = th.empty(len(obs), n_factors, n_categories)
    with th.no_grad():
        for factor in range(n_factors):
            for category in range(n_categories):
                action = hard.clone().view(len(obs), n_factors, n_categories)
                action[:, factor] = th.nn.functional.one_hot(th.tensor(category), n_categories).float()
                values[:, factor, category] = model.reduce_twin(model.critic(obs, action.flatten(1))).squeeze(-1)
        expected_scale = model.reduce_twin(model.critic(obs, hard)).abs().mean()
    assert value_range.shape == (len(obs), n_factors)
    assert math.isclose(scale, float(expected_scale), rel_tol=1e-5)
    th.testing.assert_close(th.as_tensor(value_range), (values.max(-1).values - values.min(-1).values) / expected_scale, rtol=1e-4, atol=1e-6)
    th.testing.assert_close(th.as_tensor(value_std), values.std(-1) / expected_scale, rtol=1e-4, atol=1e-6)

    model.save(tmp_path / "model.zip")
    script.main([str(tmp_path / "model.zip"), env_id, "--steps", "8"])
    printed = capsys.readouterr().out
    assert "4 states x 4 factors of 2 categories" in printed and printed.count("quartiles") == 2


def test_neighbour_values_speed_times_versions_that_agree(tmp_path, capsys):
    script = load_script("neighbour_values_speed")
    rows = script.measure([3, 1, 4], batch=5, hidden=8, repeats=2, compile_=False, against=None)
    assert [row["version"] for row in rows] == ["current", "plain"]
    assert all(float(row["max abs difference"]) < 1e-5 and row["ms per call"] >= 0 for row in rows)
    assert rows[0]["rows per state (current)"] == 1 + 2 + 0 + 3
    if (EXAMPLES.parent / ".git").exists():  # --against reads an older policies.py from git
        script.main(["--nvec", "2,3", "--batch", "4", "--hidden", "8", "--repeats", "1", "--against", "HEAD", "--out", str(tmp_path / "t.csv")])
        assert "| 2x3 | cpu | at HEAD | False |" in capsys.readouterr().out
        table = pd.read_csv(tmp_path / "t.csv")
        assert len(table) == 3 and (table["max abs difference"] < 1e-5).all()
    # or from a copy of the file (how the device machine, which has no git history, runs it)
    copy = tmp_path / "old_neighbours.py"
    copy.write_text((EXAMPLES.parent / "agents" / "diffcat_sac" / "neighbours.py").read_text())
    script.main(["--nvec", "2,3", "--batch", "4", "--hidden", "8", "--repeats", "1", "--against", str(copy), "--out", str(tmp_path / "f.csv")])
    table = pd.read_csv(tmp_path / "f.csv")
    assert list(table["version"]) == ["current", "plain", f"at {copy}"] and (table["max abs difference"] < 1e-5).all()
    # --compile traces the older module's functions, and dynamo re-imports a module by its name
    module = script.critic_module_at(str(copy))
    assert sys.modules[module.__name__] is module


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.sh")))
def test_shell_scripts_parse(script):
    """The device and benchmark scripts run where a syntax error costs a lent GPU's minutes."""
    result = subprocess.run(["bash", "-n", str(EXAMPLES / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_masked_polyprog_reference_orders_the_policies(tmp_path):
    script = load_script("masked_polyprog_reference")
    means = script.main(["--episodes", "300", "--out", str(tmp_path / "reference.csv")])
    assert means["optimal"] > means["uniform valid"] > means["greedy ignoring masks"] >= -1.0
    table = pd.read_csv(tmp_path / "reference.csv")
    assert list(table["policy"]) == list(means) and (table["std"] > 0).all()
    assert table["standard_error"].tolist() == pytest.approx((table["std"] / 300**0.5).tolist(), abs=1e-4)
    for bad in (["--episodes", "1"], ["--env-id", "rl_diffcat/PolyProg-D16-v0"]):
        with pytest.raises(SystemExit):
            script.main([*bad, "--out", str(tmp_path / "bad.csv")])
    assert not (tmp_path / "bad.csv").exists()


def test_benchmark_scripts_refuse_bad_arguments(tmp_path, capsys):
    out = str(tmp_path / "x.csv")
    cases = [
        ("sampler_speed", ["--sizes", "256", "--out", out], "BATCHxK"),
        ("agent_speed", ["--repeats", "0", "--out", out], "--repeats must be >= 1"),
        ("sample_law_table", ["--quick", "--n-samples", "0", "--out", str(tmp_path)], "--n-samples"),
        ("sample_law_table", ["--quick", "--logit-scale", "nan", "--out", str(tmp_path)], "--logit-scale"),
    ]
    for name, argv, message in cases:
        with pytest.raises(SystemExit):
            load_script(name).main(argv)
        assert message in capsys.readouterr().err, name
    with pytest.raises(SystemExit, match="no rows were measured"):
        load_script("_tables").write_rows([], out)
    assert not (tmp_path / "x.csv").exists()


def test_soak_records_its_checks_and_flags_a_nonfinite_parameter(tmp_path):
    soak = load_script("soak")
    from rl_diffcat.agents import DiffCatSAC

    model = DiffCatSAC("MlpPolicy", "CartPole-v1", learning_starts=50, batch_size=16, policy_kwargs=dict(net_arch=[8]), seed=0)
    recorder = soak.SoakRecorder(every=100, out=str(tmp_path / "soak.csv"))
    model.learn(200, callback=recorder)
    assert [row["step"] for row in recorder.rows] == [100, 200]
    assert all(row["nonfinite_params"] == 0 and row["alpha_in_bounds"] for row in recorder.rows)
    # SB3 calls the callback before it stores the step's transition
    assert [row["buffer_size"] for row in recorder.rows] == [99, 199]
    assert pd.read_csv(tmp_path / "soak.csv")["step"].tolist() == [100, 200]
    with __import__("torch").no_grad():
        next(model.actor.parameters())[0, 0] = float("nan")
    assert recorder.record()["nonfinite_params"] == 1


def load_tutorial(name: str):
    """Import ``examples/tutorials/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / "tutorials" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tutorial_train_diffcat_sac_trains_saves_and_loads(tmp_path):
    mean_return = load_tutorial("train_diffcat_sac").main(steps=200, path=str(tmp_path / "model.zip"))
    assert mean_return >= 8.0  # CartPole pays 1 per step and no greedy episode ends before step 8
    assert (tmp_path / "model.zip").is_file()


def test_tutorial_sb3_drop_in_gives_a_pathwise_gradient():
    gradient = load_tutorial("sb3_drop_in").main(steps=64)
    assert gradient is not None and bool(gradient.abs().sum() > 0)


def test_examples_readme_lists_every_script():
    listed = (EXAMPLES / "README.md").read_text()
    scripts = [p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*") if p.suffix in (".py", ".sh") and not p.name.startswith("_")]
    assert scripts and all(f"({script})" in listed for script in scripts), [s for s in scripts if f"({s})" not in listed]

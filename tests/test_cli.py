"""The rl-diffcat command line: train, compare's plan and usage errors (compare on Ray: test_compare.py).

Budgets are tiny (a few hundred steps): these tests check the plumbing, not learning.
"""

import json
import os

import pandas as pd
import pytest
import torch

from rl_diffcat.benchmark.algos import ALGOS, load_hyperparams
from rl_diffcat.benchmark.presets import PRESETS
from rl_diffcat.compare import engine
from rl_diffcat.compare.grid import RunSpec, plan_runs
from rl_diffcat.cli import main

ENV = "CartPole-v1"
# Let the off-policy agents do a few gradient steps inside a 300-step budget.
SMOKE_OVERRIDES = {
    "diffcat-sac": ["learning_starts=100", "batch_size=32"],
    "discrete-sac": ["learning_starts=100", "batch_size=32"],
    "sac": ["learning_starts=100", "batch_size=32"],
}
# sac needs continuous actions: it trains on Pendulum; maskable-ppo needs action masks; every
# other algo trains on CartPole.
TRAIN_ENV = {"sac": "Pendulum-v1", "maskable-ppo": "rl_diffcat/PolyProg-Masked-D4-v0"}


# Only an optional extra may be missing (sb3-contrib, for maskable-ppo); any other algo whose
# class fails to load is a failure, not a skip.
OPTIONAL_EXTRA = {"maskable-ppo": "sb3_contrib"}


def _has_extra(algo: str) -> bool:
    try:
        __import__(OPTIONAL_EXTRA[algo])
    except ImportError:
        return False
    return True


ALGO_PARAMS = [
    pytest.param(algo, marks=pytest.mark.skipif(not _has_extra(algo), reason=f"needs {OPTIONAL_EXTRA[algo]}"))
    if algo in OPTIONAL_EXTRA
    else algo
    for algo in ALGOS
]


@pytest.mark.parametrize("algo", ALGO_PARAMS)
def test_train_saves_model_curve_and_prints_final_eval(algo, tmp_path, capsys):
    paths = {name: str(tmp_path / name) for name in ("model.zip", "eval.csv", "done.json", "tb")}
    argv = ["train", TRAIN_ENV.get(algo, ENV), "--algo", algo, "--steps", "300", "--seed", "1", "--device", "cpu", "--threads", "1"]
    argv += ["--eval-freq", "150", "--eval-episodes", "2", "--no-progress", "--save-path", paths["model.zip"]]
    argv += ["--eval-csv", paths["eval.csv"], "--done-json", paths["done.json"], "--tensorboard-log", paths["tb"]]
    if algo in SMOKE_OVERRIDES:
        argv += ["--hyperparams", *SMOKE_OVERRIDES[algo]]
    assert main(argv) == 0
    assert "final evaluation" in capsys.readouterr().out
    curve = pd.read_csv(paths["eval.csv"])
    assert list(curve.columns) == ["env", "algo", "seed", "step", "mean_return", "std_return", "wall_clock"]
    assert curve["step"].iloc[0] == 0 and curve["step"].iloc[-1] >= 300 and curve["step"].is_monotonic_increasing
    assert (curve["algo"] == algo).all() and (curve["seed"] == 1).all()
    done = json.loads(open(paths["done.json"]).read())
    assert done["overrides"] == {key: int(value) for key, value in (item.split("=") for item in SMOKE_OVERRIDES.get(algo, []))}
    assert done["hyperparams"]["n_timesteps"] == 300
    assert done["final_mean_return"] == curve["mean_return"].iloc[-1] and done["env_steps_per_s"] > 0
    assert os.listdir(paths["tb"]), "no TensorBoard run was written"
    model = ALGOS[algo].load_class().load(paths["model.zip"], device="cpu")
    assert model.num_timesteps >= 300


def test_train_names_the_file_sb3_wrote_for_a_save_path_without_extension(tmp_path, capsys):
    argv = ["train", ENV, "--algo", "ppo", "--steps", "64", "--eval-freq", "64", "--eval-episodes", "1", "--device", "cpu", "--threads", "1", "--no-progress",
            "--save-path", str(tmp_path / "mymodel"), "--done-json", str(tmp_path / "done.json"), "--hyperparams", "n_steps=64", "n_envs=1"]
    assert main(argv) == 0
    assert f"model saved to {tmp_path / 'mymodel.zip'};" in capsys.readouterr().out
    assert json.loads((tmp_path / "done.json").read_text())["model"] == str(tmp_path / "mymodel.zip")
    assert (tmp_path / "mymodel.zip").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", ENV, "--algo", "sacc"], "valid algos are: diffcat-sac, discrete-sac, ppo, sac, ppo-diffcat"),
        (["train", ENV, "--algo", "sac"], "sac supports only Box"),
        (["train", ENV, "--algo", "maskable-ppo"], "maskable-ppo needs an env with action_masks()"),
        (["train", "CartPole-v9", "--algo", "ppo"], "Unknown env id 'CartPole-v9'; did you mean"),
        (["train", ENV, "--algo", "ppo", "--sampler", "redge"], "only valid for"),
        (["train", ENV, "--algo", "diffcat-sac", "--sampler", "nope"], "valid samplers are"),
        (["compare", "--envs", "rl_diffcat/PolyProg-D4-v0", "--algos", "discrete-sac"], "discrete-sac supports only Discrete"),
        (["compare", "--envs", "Pendulum-v1", "--algos", "ppo", "discrete-sac"], "discrete-sac supports only Discrete"),
        (["train", "Pendulum-v1", "--algo", "diffcat-sac"], "or train diffcat-sac on its discretized version rl_diffcat/Pendulum-Discrete-v0"),
        (["compare", "--algos", "ppo", "--seeds", "0"], "--seeds must be >= 1"),
        (["compare", "--algos", "ppo", "--first-seed", "-1"], "--first-seed must be >= 0, got -1"),
        (["compare", "--algos", "ppo", "--checkpoint-freq", "-5"], "--checkpoint-freq must be >= 0"),
        (["train", ENV, "--algo", "ppo", "--steps", "10", "--checkpoint-freq", "-5"], "--checkpoint-freq must be >= 0"),
        # zero counts are refused, not replaced by the defaults
        (["train", ENV, "--algo", "ppo", "--steps", "10", "--eval-episodes", "0"], "--eval-episodes must be >= 1, got 0"),
        (["train", ENV, "--algo", "ppo", "--steps", "10", "--eval-freq", "0"], "--eval-freq must be >= 1, got 0"),
        (["train", ENV, "--algo", "ppo", "--steps", "10", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["train", ENV, "--algo", "ppo", "--steps", "0"], "--steps must be >= 1, got 0"),
        (["compare", "--algos", "ppo", "--jobs", "0"], "--jobs must be >= 1, got 0"),
        (["compare", "--algos", "ppo", "--eval-freq", "0"], "--eval-freq must be >= 1, got 0"),
        (["train", ENV, "--algo", "ppo", "--hyperparams", "oops"], "KEY=VALUE"),
        (["train", ENV, "--algo", "ppo", "--steps", "10", "--hyperparams", "lerning_rate=0.001"],
         "PPO has no hyperparameter 'lerning_rate' (did you mean 'learning_rate'?)"),
        (["train", ENV, "--algo", "diffcat-sac", "--steps", "10", "--hyperparams", "learnin_rate=0.001"],
         "DiffCatSAC has no hyperparameter 'learnin_rate' (did you mean 'learning_rate'?)"),  # its __init__ passes **kwargs on
        (["compare", "--algos", "ppo", "--report-only", "--hyperparams", "policy_kwargs.net_arch=[64,"], "is not valid YAML"),
        pytest.param(
            ["train", ENV, "--algo", "ppo", "--device", "cuda"],
            "no CUDA device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available"),
        ),
    ],
)
def test_usage_errors_are_clear(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_hyperparameter_values_are_read_as_yaml_1_2_numbers_and_reach_compare_runs_unchanged():
    from rl_diffcat.cli import _parse_overrides, _split_list

    items = ["learning_rate=1e-3", "ent_coef=1e-05", "tau=.5e-2", "schedule=lin_1e-3", "policy_kwargs.net_arch=[64, 64]"]
    overrides = _parse_overrides(items)
    assert overrides == {"learning_rate": 0.001, "ent_coef": 1e-05, "tau": 0.005, "schedule": "lin_1e-3",
                         "policy_kwargs.net_arch": [64, 64]}  # PyYAML alone reads '1e-3' as a string
    # a compare hands each run its overrides in its Tune trial's configuration
    spec = RunSpec(ENV, "ppo", 0, 100, 50, 2, overrides)
    assert RunSpec.from_config(json.loads(json.dumps(spec.config()))).overrides == overrides
    assert _split_list(["ppo,diffcat-sac", "ppo", "diffcat-sac:gumbel_softmax"]) == ["ppo", "diffcat-sac", "diffcat-sac:gumbel_softmax"]


def test_compare_leaves_out_pairs_an_algo_does_not_support():
    lines = []
    specs = plan_runs(
        [ENV, "Pendulum-v1"], ["sac", "ppo", "diffcat-sac"], [0], steps=100, eval_freq=50, log=lines.append
    )
    assert [(spec.env_id, spec.algo) for spec in specs] == [
        (ENV, "ppo"), (ENV, "diffcat-sac"), ("Pendulum-v1", "sac"), ("Pendulum-v1", "ppo")
    ]
    assert len(lines) == 2 and "leaving out sac on CartPole-v1: sac supports only Box" in lines[0]
    assert lines[0].endswith("algos that support it: diffcat-sac, discrete-sac, ppo, ppo-diffcat")  # not maskable-ppo: no masks
    assert "diffcat-sac on Pendulum-v1: diffcat-sac supports only Discrete" in lines[1]
    lines.clear()
    specs = plan_runs([ENV, "rl_diffcat/PolyProg-Masked-D4-v0"], ["maskable-ppo", "diffcat-sac"], [0], steps=100, eval_freq=50,
                      log=lines.append)
    assert [(spec.env_id, spec.algo) for spec in specs] == [
        (ENV, "diffcat-sac"), ("rl_diffcat/PolyProg-Masked-D4-v0", "maskable-ppo"), ("rl_diffcat/PolyProg-Masked-D4-v0", "diffcat-sac")
    ]
    assert lines == ["leaving out maskable-ppo on CartPole-v1: maskable-ppo needs an env with action_masks() "
                     "(such as rl_diffcat/PolyProg-Masked-D16-v0); CartPole-v1 has none"]


def test_the_run_count_says_how_many_pairs_were_left_out(tmp_path, capsys):
    argv = ["compare", "--envs", ENV, "Pendulum-v1", "--algos", "ppo", "sac", "--seeds", "2", "--report-only", "--results", str(tmp_path)]
    assert main(argv) == 0
    assert "compare: 6 runs (2 envs x 2 algos x 2 seeds, less the 1 (env, algo) pair left out above)" in capsys.readouterr().out


def test_hyperparams_files_have_defaults_and_env_entries():
    for algo in ALGOS:
        params = load_hyperparams(algo, ENV)
        assert params["n_timesteps"] > 0 and "policy" in params
    sac = load_hyperparams("diffcat-sac:gumbel_softmax", ENV, overrides={"sampler_kwargs.t_1": 0.3})
    assert sac["sampler"] == "gumbel_softmax" and sac["sampler_kwargs"] == {"n_steps": 5, "t_1": 0.3}
    assert load_hyperparams("ppo-diffcat", ENV, sampler="reinmax")["policy_kwargs"]["sampler"] == "reinmax"
    assert load_hyperparams("ppo", "Acrobot-v1")["n_envs"] == 16  # env entry over default


@pytest.mark.parametrize("algo", ["diffcat-sac", "discrete-sac", "ppo", "ppo-diffcat"])
def test_minatar_entries_build_cnn_models(algo):
    """The MinAtar entries name their features extractor as a string (MinAtarCNN) in the data file;
    every algo builds its model with it."""
    from rl_diffcat.benchmark.algos import make_model
    from rl_diffcat.envs import MinAtarCNN

    env_id = "rl_diffcat/MinAtar-Breakout-v0"
    params = load_hyperparams(algo, env_id)
    assert params["policy_kwargs"]["features_extractor_class"] == "MinAtarCNN"
    model = make_model(algo, env_id, params, seed=0, device="cpu")
    extractors = [m for m in model.policy.modules() if isinstance(m, MinAtarCNN)]
    assert extractors and extractors[0].features_dim == 128


def test_unknown_features_extractor_name_is_a_clear_error():
    from rl_diffcat.benchmark.algos import make_model

    params = load_hyperparams("ppo", ENV, overrides={"policy_kwargs.features_extractor_class": "NoSuchCNN"})
    with pytest.raises(ValueError, match="NoSuchCNN.*is not a features extractor"):
        make_model("ppo", ENV, params, seed=0, device="cpu")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_plans_its_runs(name):
    preset = PRESETS[name]
    specs = plan_runs(preset["envs"], preset["algos"], range(preset["seeds"]), steps=preset["steps"],
                      eval_freq=preset["eval_freq"], n_eval_episodes=preset["eval_episodes"], log=lambda line: None)
    planned = {(spec.env_id, spec.algo) for spec in specs}
    assert {algo for _, algo in planned} == set(preset["algos"])  # every algo runs on some env
    assert len(specs) == len(planned) * preset["seeds"]


def test_maskable_ppo_takes_the_maskable_diffcat_policy_by_name():
    pytest.importorskip("sb3_contrib")
    from rl_diffcat.benchmark.algos import make_model
    from rl_diffcat.sb3.maskable import MaskableDiffCatActorCriticPolicy

    env_id = "rl_diffcat/PolyProg-Masked-D4-v0"
    params = load_hyperparams("maskable-ppo", env_id, overrides={"policy": "MaskableDiffCatActorCriticPolicy", "n_envs": 1})
    model = make_model("maskable-ppo", env_id, params, seed=0, device="cpu")
    assert isinstance(model.policy, MaskableDiffCatActorCriticPolicy)
    with pytest.raises(ValueError, match="nor a class in rl_diffcat.sb3 or rl_diffcat.sb3.maskable"):
        make_model("maskable-ppo", env_id, {**params, "policy": "NoSuchPolicy"}, seed=0, device="cpu")


def test_envs_lists_every_id_with_its_space_masks_and_extra(monkeypatch, capsys):
    from rl_diffcat.envs import list_envs

    assert main(["envs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line for line in lines if line.startswith("rl_diffcat/")}
    assert set(listed) == set(list_envs())
    assert listed["rl_diffcat/PolyProg-Masked-D16-v0"].endswith("MultiDiscrete([2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2])  action_masks()")
    assert "action_masks()" not in listed["rl_diffcat/PolyProg-D16-v0"]
    # a missing extra is named with its pip command, and such an env is not built
    import rl_diffcat.envs

    monkeypatch.setattr(rl_diffcat.envs, "extra_installed", lambda extra: extra != "mujoco")
    assert main(["envs", "--no-spaces"]) == 0
    out = capsys.readouterr().out
    assert "rl_diffcat/HalfCheetah-Discrete-v0  [extra mujoco: not installed, pip install 'rl-diffcat[mujoco]']" in out
    assert "rl_diffcat/PolyProg-D4-v0\n" in out  # --no-spaces: ids only


@pytest.mark.parametrize("command, hint", [("compare", "finished runs are skipped"), ("train", "--resume")])
def test_ctrl_c_ends_with_a_line_saying_how_to_go_on(command, hint, monkeypatch, capsys):
    import rl_diffcat.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli._COMMANDS, command, interrupted)
    argv = [command, "--algos", "ppo"] if command == "compare" else [command, ENV, "--algo", "ppo"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"rl-diffcat {command}: interrupted; ") and hint in err and "Traceback" not in err


def test_a_missing_module_behind_an_env_is_a_usage_error(monkeypatch, capsys):
    import gymnasium as gym

    def make(env_id, **kwargs):
        raise ModuleNotFoundError("No module named 'jax'")

    monkeypatch.setattr(gym, "make", make)
    assert main(["train", ENV, "--algo", "ppo", "--steps", "10"]) == 2
    assert f"{ENV} needs an optional dependency: No module named 'jax'" in capsys.readouterr().err


def test_compare_refuses_an_override_one_of_its_algos_does_not_take_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(engine, "run_compare", lambda *args, **kwargs: pytest.fail("nothing may train"))
    argv = ["compare", "--algos", "diffcat-sac", "ppo", "--steps", "300", "--results", str(tmp_path)]
    assert main(argv + ["--hyperparams", "target_entropy_scale=0.3"]) == 2
    err = capsys.readouterr().err
    assert "ppo on CartPole-v1: PPO has no hyperparameter 'target_entropy_scale'" in err
    assert "--hyperparams apply to every algo of a compare" in err

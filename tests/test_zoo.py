"""rl-zoo3 registration: our agents train and replay through rl-zoo3's own scripts."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("rl_zoo3")

from rl_diffcat.benchmark.algos import ALGOS as CLI_ALGOS, load_hyperparams  # noqa: E402
from rl_diffcat.zoo import ZOO_ALGOS, zoo_hyperparams  # noqa: E402


def test_zoo_entries_are_our_merged_hyperparameters():
    for zoo_name, cli_name in ZOO_ALGOS.items():
        table = zoo_hyperparams(cli_name)
        assert "default" in table and "CartPole-v1" in table
        ours = load_hyperparams(cli_name, "CartPole-v1")
        for key in ("n_timesteps", "learning_rate", "batch_size"):
            assert table["CartPole-v1"].get(key) == ours.get(key), (zoo_name, key)
    assert zoo_hyperparams("ppo-diffcat")["CartPole-v1"]["policy"] == "rl_diffcat.sb3.DiffCatActorCriticPolicy"


def zoo(*args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "rl_diffcat.zoo", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_train_and_enjoy_through_rl_zoo3(tmp_path):
    logs = str(tmp_path / "logs")
    # --algo=NAME, as rl-zoo3 reads it too: our hyperparameter file must still be the one used
    zoo("train", "--algo=diffcat_sac", "--env", "CartPole-v1", "-n", "400", "--eval-freq", "200",
        "--eval-episodes", "2", "-f", logs, "--seed", "0", "--num-threads", "1",
        "-params", "learning_starts:100", "batch_size:32", cwd=tmp_path)
    run = os.path.join(logs, "diffcat_sac", "CartPole-v1_1")
    assert {"CartPole-v1.zip", "best_model.zip", "evaluations.npz"} <= set(os.listdir(run))
    out = zoo("enjoy", "--algo", "diffcat_sac", "--env", "CartPole-v1", "-f", logs, "--no-render", "-n", "50",
              "--deterministic", cwd=tmp_path)
    assert "Loading" in out
    zoo("record_video", "--algo", "diffcat_sac", "--env", "CartPole-v1", "-f", logs, "-n", "60", "-o", "videos", cwd=tmp_path)
    assert [name for name in os.listdir(tmp_path / "videos") if name.endswith(".mp4")], "record_video writes an MP4"


def test_unknown_subcommand_explains_usage_and_help_is_no_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rl_diffcat.zoo", "fit"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and "usage: python -m rl_diffcat.zoo" in proc.stderr
    assert zoo("--help", cwd=tmp_path).startswith("usage: python -m rl_diffcat.zoo")


def test_zoo_entries_name_classes_not_strings():
    """rl-zoo3 passes policy_kwargs on as they are: a class name left a string failed in SB3."""
    from rl_diffcat.envs import MinAtarCNN

    for cli_name in ZOO_ALGOS.values():
        policy_kwargs = zoo_hyperparams(cli_name)["rl_diffcat/MinAtar-Breakout-v0"]["policy_kwargs"]
        assert policy_kwargs["features_extractor_class"] is MinAtarCNN, cli_name


# One trial's raw parameters per algorithm, as optuna stores them.
OFF_POLICY_TRIAL = {"one_minus_gamma": 0.01, "batch_size_pow": 5, "learning_rate": 1e-3, "train_freq": 2, "tau": 0.02,
                    "net_arch": "small", "target_entropy_scale": 0.3, "twin_q": "mean"}  # fmt: skip
TRIALS = {
    "discrete_sac": OFF_POLICY_TRIAL,
    "diffcat_sac": {**OFF_POLICY_TRIAL, "redge_n_steps": 3, "redge_t_1": 0.7},
    "ppo_diffcat": {"batch_size_pow": 5, "n_steps_pow": 6, "one_minus_gamma": 0.01, "one_minus_gae_lambda": 0.05,
                    "learning_rate": 3e-4, "ent_coef": 1e-3, "clip_range": 0.2, "n_epochs": 5, "max_grad_norm": 0.5,
                    "net_arch": "tiny", "activation_fn": "tanh"},  # fmt: skip
}


@pytest.mark.parametrize("zoo_name", sorted(ZOO_ALGOS))
def test_search_space_samples_what_its_converter_rebuilds_and_the_algo_accepts(zoo_name):
    """-optimize's sampler and the converter that --trial-id uses agree, and the result builds a model."""
    optuna = pytest.importorskip("optuna")
    from rl_zoo3 import hyperparams_opt
    from rl_zoo3.utils import get_class_by_name

    from rl_diffcat.zoo import register

    register()
    raw = TRIALS[zoo_name]
    sampled = hyperparams_opt.HYPERPARAMS_SAMPLER[zoo_name](optuna.trial.FixedTrial(raw), 0, 1, {"using_her_replay_buffer": False})
    assert sampled == hyperparams_opt.HYPERPARAMS_CONVERTER[zoo_name](raw)
    if zoo_name != "ppo_diffcat":
        assert sampled["gamma"] == pytest.approx(0.99) and sampled["twin_q"] == "mean"
        assert sampled["target_entropy_scale"] == 0.3 and sampled["gradient_steps"] == 2
    if zoo_name == "diffcat_sac":
        assert sampled["sampler"] == "redge" and sampled["sampler_kwargs"] == {"n_steps": 3, "t_1": 0.7}
    params = zoo_hyperparams(ZOO_ALGOS[zoo_name])["CartPole-v1"]
    kwargs = {key: value for key, value in params.items() if key not in ("n_timesteps", "n_envs", "policy")}
    policy = get_class_by_name(params["policy"]) if "." in params["policy"] else params["policy"]  # as rl-zoo3 reads it
    model = CLI_ALGOS[ZOO_ALGOS[zoo_name]].load_class()(policy, "CartPole-v1", **{**kwargs, **sampled})
    assert model.gamma == pytest.approx(0.99) and model.batch_size == 32


@pytest.mark.slow  # about 20 s; the FixedTrial test above covers the lookup that failed, this the whole search
def test_optimize_through_rl_zoo3(tmp_path):
    """rl-zoo3 looks the search space up by the algorithm's name: ours were missing (a KeyError)."""
    pytest.importorskip("optuna")
    out = zoo("train", "--algo", "diffcat_sac", "--env", "CartPole-v1", "-f", str(tmp_path / "logs"), "-optimize",
              "--n-trials", "1", "-n", "200", "--n-jobs", "1", "--num-threads", "1", "--eval-episodes", "1",
              "--seed", "0", "-params", "learning_starts:100", cwd=tmp_path)  # fmt: skip
    assert "Number of finished trials:  1" in out and "redge_t_1:" in out

"""rl-zoo3 registration: our agents train and replay through rl-zoo3's own scripts."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("rl_zoo3")

from rl_diffcat.benchmark.algos import load_hyperparams  # noqa: E402
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

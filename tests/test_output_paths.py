"""No work lost to a path: outputs are checked before training, and a failed save falls back."""

import glob
import os
import tempfile

import pytest

from rl_diffcat.cli import main
from rl_diffcat.output_paths import check_writable_file, check_writable_folder, save_with_fallback


def test_a_path_inside_a_file_is_refused_with_the_flag_and_the_file(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    with pytest.raises(ValueError, match=rf"--save-path {blocker}/model.zip: {blocker} is a file, not a folder"):
        check_writable_file(str(blocker / "model.zip"), "--save-path")
    with pytest.raises(ValueError, match=rf"--results {blocker}: {blocker} is a file, not a folder"):
        check_writable_folder(str(blocker), "--results")
    with pytest.raises(ValueError, match="is a folder: give a file path"):
        check_writable_file(str(tmp_path), "--eval-csv")
    check_writable_file(str(tmp_path / "new" / "deeper" / "model.zip"), "--save-path")  # folders yet to be made are fine
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_train_refuses_an_unwritable_save_path_before_training(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    runs = tmp_path / "tb"
    code = main(["train", "CartPole-v1", "--algo", "ppo", "--steps", "64", "--save-path", str(blocker / "model.zip"),
                 "--tensorboard-log", str(runs), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rl-diffcat train: error: --save-path {blocker}/model.zip: {blocker} is a file, not a folder"]
    assert not runs.exists()  # nothing trained


def test_a_failed_save_falls_back_to_a_printed_path(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    lines = []

    def save(path):
        with open(path, "w") as file:
            file.write("weights")

    saved = save_with_fallback(save, str(blocker / "model.zip"), log=lines.append)
    try:
        assert saved != str(blocker / "model.zip") and saved.endswith("-model.zip")
        assert open(saved).read() == "weights"
        assert len(lines) == 1 and lines[0].startswith(f"could not save to {blocker}/model.zip (")
        assert lines[0].endswith(f"); saved to {saved} instead")
    finally:
        os.remove(saved)
    assert save_with_fallback(save, str(tmp_path / "ok" / "model.zip"), log=lines.append) == str(tmp_path / "ok" / "model.zip")


def test_when_the_fallback_fails_too_both_errors_are_named(tmp_path, monkeypatch):
    def full_disk(path):
        raise OSError(28, "No space left on device")

    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "rl-diffcat-rescued-*")))
    with pytest.raises(OSError, match=r"could not save to .*model.zip \(.*No space left on device\) nor to the fallback"):
        save_with_fallback(full_disk, str(tmp_path / "model.zip"), log=None)
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "rl-diffcat-rescued-*"))) == before  # no empty file left


def test_a_trained_model_whose_save_path_fails_is_saved_to_the_printed_fallback(tmp_path):
    from rl_diffcat.benchmark.runner import train_run
    from rl_diffcat.serialization import safe_load
    from stable_baselines3 import PPO

    blocker = tmp_path / "afile"
    blocker.write_text("")  # the folder the model should go to is a file by the time training ends
    lines = []
    summary = train_run("CartPole-v1", "ppo", steps=64, eval_freq=64, n_eval_episodes=1, save_path=str(blocker / "model.zip"),
                        overrides={"n_steps": 64, "batch_size": 32}, log=lines.append)
    saved = summary["model"]
    try:
        assert saved != str(blocker / "model.zip") and os.path.isfile(saved)
        assert any(line.endswith(f"saved to {saved} instead") for line in lines)
        assert safe_load(PPO, saved).num_timesteps == summary["env_steps"] >= 64  # the trained model, whole
    finally:
        os.remove(saved)

"""rl-zoo3's ``normalize`` key: a run trains on VecNormalize, evaluates with the training
statistics on raw rewards, and keeps its statistics through a checkpoint, a resume and ``evaluate``."""

import os
import shutil

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from rl_diffcat.benchmark import checkpoint as checkpoint_module
from rl_diffcat.benchmark import evaluation, runner
from rl_diffcat.benchmark.callbacks import EvalCurveCallback
from rl_diffcat.benchmark.checkpoint import read_checkpoint, write_checkpoint
from rl_diffcat.benchmark.evaluation import evaluate_saved_model
from rl_diffcat.benchmark.normalization import make_eval_env, normalize_kwargs, stats_path
from rl_diffcat.benchmark.runner import train_run
from rl_diffcat.cli import main
from rl_diffcat.serialization import load_vec_normalize, save_vec_normalize

ENV = "CartPole-v1"
SAC = {"learning_starts": 100, "batch_size": 32, "policy_kwargs.net_arch": [32, 32], "normalize": True}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, None),
        ({"normalize": False}, None),
        ({"normalize": "False"}, None),
        ({"normalize": True}, {}),
        ({"normalize": True, "gamma": 0.98}, {"gamma": 0.98}),
        ({"normalize": {"norm_reward": False, "gamma": 0.9}}, {"norm_reward": False, "gamma": 0.9}),
        ({"normalize": {"gamma": 0.98}, "gamma": 0.98}, {"gamma": 0.98}),
        # rl-zoo3's string spellings
        ({"normalize": "{'norm_obs': True, 'norm_reward': False}"}, {"norm_obs": True, "norm_reward": False}),
        ({"normalize": "dict(norm_obs=False, norm_reward=True)", "gamma": 0.9}, {"norm_obs": False, "norm_reward": True, "gamma": 0.9}),
    ],
)
def test_normalize_values(params, expected):
    assert normalize_kwargs(params) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        (3, "expected true/false or a mapping"),
        ("__import__('os').getcwd()", "expected true/false or a mapping"),  # read as a literal, never run
        ("dict(norm_obs=bool(1))", "expected true/false or a mapping"),
        ("dict(norm_obs=False, norm_obs=True)", "expected true/false or a mapping"),  # Python refuses a repeated keyword
        ({1: True}, "keys should be VecNormalize argument names"),
        ({"norm_ob": True}, "did you mean 'norm_obs'"),
        ({"training": False}, "has no argument 'training'"),
        ({"clip_obs": "abc"}, "clip_obs='abc' should be a number"),
        ({"norm_reward": 1}, "norm_reward=1 should be true or false"),
        ({"gamma": 0.9}, "differs from the entry's gamma=0.98"),
    ],
)
def test_bad_normalize_values_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        normalize_kwargs({"normalize": value, "gamma": 0.98})


def test_cli_names_a_bad_normalize_argument(tmp_path, capsys):
    argv = ["train", ENV, "--algo", "ppo", "--steps", "64", "--save-path", str(tmp_path / "m.zip"), "--no-progress"]
    assert main(argv + ["--hyperparams", "normalize={clip_ob: 5}"]) == 2
    assert "did you mean 'clip_obs'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "m.zip")


def _spy_on_observations(model, eval_env, seen):
    """Record, at each of the model's predictions, the observation it gets and the one the eval
    env's normalizer makes of the raw observation with its current statistics."""
    predict = model.predict

    def recording(observation, *args, **kwargs):
        seen.append((np.array(observation), eval_env.normalize_obs(eval_env.get_original_obs())))
        return predict(observation, *args, **kwargs)

    model.predict = recording
    return model


def test_evaluations_see_observations_normalized_with_the_training_statistics():
    train_env = VecNormalize(make_vec_env(ENV, n_envs=2, seed=0))
    model = PPO("MlpPolicy", train_env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    eval_env = make_eval_env(ENV, {}, seed=10_000)
    seen = []
    _spy_on_observations(model, eval_env, seen)
    callback = EvalCurveCallback(eval_env, eval_freq=128, n_eval_episodes=2)
    model.learn(256, callback=callback)
    assert len(callback.rows) == 3 and seen
    assert all(np.array_equal(given, expected) for given, expected in seen)
    # The last evaluation came after the last training step: both hold the same statistics, as copies.
    assert np.array_equal(eval_env.obs_rms.mean, train_env.obs_rms.mean) and eval_env.obs_rms is not train_env.obs_rms
    assert eval_env.obs_rms.count == train_env.obs_rms.count > 256
    # Returns are the env's own (CartPole: 1 per step), not scaled rewards.
    assert all(float(2 * row["mean_return"]).is_integer() and row["mean_return"] >= 8 for row in callback.rows)  # 2 episodes

    bare = EvalCurveCallback(make_vec_env(ENV, n_envs=1), eval_freq=128)
    with pytest.raises(ValueError, match="eval env must be wrapped in VecNormalize"):
        model.learn(64, callback=bare)


def test_a_normalized_run_saves_its_statistics_and_evaluate_uses_them(tmp_path, monkeypatch):
    save_path = str(tmp_path / "model.zip")
    summary = train_run(
        ENV, "ppo", steps=256, overrides={"normalize": True, "n_envs": 2, "n_steps": 64, "batch_size": 64, "policy_kwargs.net_arch": [16]},
        device="cpu", eval_freq=128, n_eval_episodes=2, eval_csv=str(tmp_path / "eval.csv"), save_path=save_path,
    )  # fmt: skip
    assert summary["vecnormalize"] == stats_path(save_path) == str(tmp_path / "model_vecnormalize.npz")
    saved = load_vec_normalize(summary["vecnormalize"], make_vec_env(ENV))
    assert saved.obs_rms.count > 256 and saved.gamma == summary["hyperparams"]["gamma"] == 0.98  # ppo.yml's CartPole gamma

    env, seen, made = evaluation.make_eval_env(ENV, {}, 5, summary["vecnormalize"]), [], []
    load = evaluation.load_saved_model
    monkeypatch.setattr(evaluation, "load_saved_model", lambda *args, **kwargs: _spy_on_observations(load(*args, **kwargs), env, seen))
    monkeypatch.setattr(evaluation, "make_eval_env", lambda *args, **kwargs: made.append(args) or env)
    result = evaluate_saved_model(ENV, "ppo", save_path, n_episodes=2, seed=5)
    assert made == [(ENV, {}, 5, summary["vecnormalize"])], "evaluate loads the statistics saved beside the model"
    assert result["vecnormalize"] == summary["vecnormalize"] and seen
    assert all(np.array_equal(given, expected) for given, expected in seen)
    assert np.array_equal(env.obs_rms.mean, saved.obs_rms.mean) and not env.training
    assert all(float(value).is_integer() for value in result["returns"])

    plain = train_run(ENV, "ppo", steps=64, overrides={"n_envs": 2, "n_steps": 32, "batch_size": 64}, device="cpu", eval_freq=64, n_eval_episodes=1,
                      save_path=str(tmp_path / "plain.zip"))  # fmt: skip
    assert "vecnormalize" not in plain and not os.path.exists(stats_path(str(tmp_path / "plain.zip")))


def test_a_normalized_model_records_video_with_its_statistics(tmp_path):
    """``--video`` goes through the VecNormalize env too: the same returns as without it, one file per episode."""
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    save_path = str(tmp_path / "model.zip")
    overrides = {"normalize": True, "n_envs": 2, "n_steps": 64, "batch_size": 64, "policy_kwargs.net_arch": [16]}
    train_run(ENV, "ppo", steps=128, overrides=overrides, device="cpu", eval_freq=128, n_eval_episodes=1, save_path=save_path)
    plain = evaluate_saved_model(ENV, "ppo", save_path, n_episodes=2, seed=3, deterministic=False)
    recorded = evaluate_saved_model(ENV, "ppo", save_path, n_episodes=2, seed=3, deterministic=False, video_folder=str(tmp_path / "videos"))
    assert recorded["vecnormalize"] == plain["vecnormalize"] == stats_path(save_path)
    assert recorded["returns"] == plain["returns"] and len(recorded["videos"]) == 2
    assert all(os.path.getsize(video) > 0 for video in recorded["videos"])


class Killed(Exception):
    """Stands in for the process being killed right after a checkpoint was written."""


def test_a_resumed_run_goes_on_with_the_statistics_of_its_checkpoint(tmp_path, monkeypatch):
    def train(resume):
        return train_run(
            ENV, "diffcat-sac", seed=1, steps=400, overrides=SAC, device="cpu", eval_freq=200, n_eval_episodes=1,
            save_path=str(tmp_path / "model.zip"), checkpoint_dir=str(tmp_path / "checkpoint"), checkpoint_freq=200, resume=resume,
        )  # fmt: skip

    def write_then_die(folder, model, state):
        write_checkpoint(folder, model, state)
        raise Killed

    monkeypatch.setattr(checkpoint_module, "write_checkpoint", write_then_die)
    with pytest.raises(Killed):
        train(resume=False)
    monkeypatch.undo()
    state = read_checkpoint(str(tmp_path / "checkpoint"))
    assert state["vecnormalize"] == str(tmp_path / "checkpoint" / f"model_{state['step']}_vecnormalize.npz")
    # evaluate finds a checkpoint's statistics beside its model, as beside a finished run's
    assert evaluate_saved_model(ENV, "diffcat-sac", state["model"], n_episodes=1)["vecnormalize"] == state["vecnormalize"]
    at_checkpoint = load_vec_normalize(state["vecnormalize"], make_vec_env(ENV))

    loaded = {}

    def load_and_keep(*args, **kwargs):
        model = load_model(*args, **kwargs)
        normalizer = model.get_vec_normalize_env()
        loaded.update(count=normalizer.obs_rms.count, mean=normalizer.obs_rms.mean.copy(), training=normalizer.training)
        return model

    load_model = runner.load_model
    monkeypatch.setattr(runner, "load_model", load_and_keep)
    summary = train(resume=True)
    assert summary["resumed_at"] == [state["step"]]
    assert loaded["count"] == at_checkpoint.obs_rms.count > state["step"] and loaded["training"]
    assert np.array_equal(loaded["mean"], at_checkpoint.obs_rms.mean)
    final = load_vec_normalize(summary["vecnormalize"], make_vec_env(ENV))
    assert final.obs_rms.count > at_checkpoint.obs_rms.count, "the statistics went on updating after the resume"


def test_observation_normalization_can_be_off():
    """rl-zoo3's spelling for image tasks: rewards normalized, observations not (no obs statistics to copy)."""
    summary = train_run(
        ENV, "ppo", steps=128, overrides={"normalize": "{'norm_obs': False, 'norm_reward': True}", "n_envs": 2, "n_steps": 32, "batch_size": 64},
        device="cpu", eval_freq=64, n_eval_episodes=2,
    )  # fmt: skip
    assert summary["env_steps"] == 128 and float(2 * summary["final_mean_return"]).is_integer()


def test_a_plain_run_removes_the_statistics_an_earlier_run_left_at_its_path(tmp_path):
    save_path = str(tmp_path / "model.zip")
    common = dict(steps=64, device="cpu", eval_freq=64, n_eval_episodes=1, save_path=save_path)
    train_run(ENV, "ppo", overrides={"normalize": True, "n_envs": 2, "n_steps": 32, "batch_size": 64}, **common)
    assert os.path.exists(stats_path(save_path))
    train_run(ENV, "ppo", overrides={"n_envs": 2, "n_steps": 32, "batch_size": 64}, **common)
    assert not os.path.exists(stats_path(save_path)), "evaluate would normalize the new raw-observation model with them"
    assert evaluate_saved_model(ENV, "ppo", save_path, n_episodes=1)["vecnormalize"] is None


def test_evaluate_refuses_a_normalized_run_whose_statistics_are_missing(tmp_path, capsys):
    folder = tmp_path / "run"
    summary = train_run(
        ENV, "ppo", steps=64, overrides={"normalize": True, "n_envs": 2, "n_steps": 32, "batch_size": 64}, device="cpu",
        eval_freq=64, n_eval_episodes=1, save_path=str(folder / "model.zip"), done_json=str(folder / "done.json"),
    )  # fmt: skip
    moved = str(tmp_path / "vecnormalize.pkl")  # where rl-zoo3 keeps them
    os.replace(summary["vecnormalize"], moved)
    assert main(["evaluate", "--model", str(folder / "model.zip"), "--episodes", "1"]) == 2
    assert "was trained with normalize" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(folder / "model.zip"), "--episodes", "1", "--vecnormalize", moved]) == 0
    assert f"observations normalized with {moved}" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(folder / "model.zip"), "--vecnormalize", str(tmp_path / "nothing.pkl")]) == 2
    assert "no VecNormalize statistics at" in capsys.readouterr().err

    # The done.json speaks only for the model it names: another model in that folder is evaluated as it is.
    shutil.copy(folder / "model.zip", folder / "other.zip")
    assert evaluate_saved_model(ENV, "ppo", str(folder / "other.zip"), n_episodes=1)["vecnormalize"] is None


def test_statistics_beside_a_model_that_trained_without_normalize_are_not_applied(tmp_path):
    """A file left by an older version, or by a run killed between saving the model and its statistics."""
    folder = tmp_path / "run"
    train_run(ENV, "ppo", steps=64, overrides={"n_envs": 2, "n_steps": 32, "batch_size": 64}, device="cpu", eval_freq=64,
              n_eval_episodes=1, save_path=str(folder / "model.zip"), done_json=str(folder / "done.json"))  # fmt: skip
    save_vec_normalize(VecNormalize(make_vec_env(ENV)), stats_path(str(folder / "model.zip")))
    assert evaluate_saved_model(ENV, "ppo", str(folder / "model.zip"), n_episodes=1)["vecnormalize"] is None
    os.remove(folder / "done.json")  # without a done.json the file beside the model is all there is to go by
    assert evaluate_saved_model(ENV, "ppo", str(folder / "model.zip"), n_episodes=1)["vecnormalize"] == stats_path(str(folder / "model.zip"))


def test_a_checkpoint_without_statistics_is_not_resumed_with_fresh_ones(tmp_path):
    folder = str(tmp_path / "checkpoint")
    overrides = {"n_envs": 2, "n_steps": 32, "batch_size": 64}
    summary = train_run(ENV, "ppo", steps=64, overrides=overrides, device="cpu", eval_freq=64, n_eval_episodes=1,
                        save_path=str(tmp_path / "model.zip"))  # fmt: skip
    model = PPO.load(summary["model"], env=make_vec_env(ENV, n_envs=2))
    config = runner.run_config(ENV, "ppo", 0, 128, 64, 1, {**summary["hyperparams"], "normalize": True, "n_timesteps": 128})
    write_checkpoint(folder, model, {"config": config, "resumed_at": [], "eval": {}})
    with pytest.raises(ValueError, match="holds no VecNormalize statistics"):
        train_run(ENV, "ppo", steps=128, overrides={**overrides, "normalize": True}, device="cpu", eval_freq=64, n_eval_episodes=1,
                  checkpoint_dir=folder, resume=True)  # fmt: skip


class ChannelLastImages(gym.Env):
    """Random 36x36x3 uint8 frames, 2 actions, 8 steps: SB3 puts VecTransposeImage over it."""

    observation_space = gym.spaces.Box(0, 255, (36, 36, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 255, (36, 36, 3), dtype=np.uint8), {}

    def step(self, action):
        self.t += 1
        return self.np_random.integers(0, 255, (36, 36, 3), dtype=np.uint8), float(action), False, self.t >= 8, {}


@pytest.fixture
def channel_last_env():
    gym.register("ChannelLastImages-v0", entry_point=ChannelLastImages)
    yield "ChannelLastImages-v0"
    del gym.registry["ChannelLastImages-v0"]


def test_channel_last_images(channel_last_env, tmp_path):
    """evaluate transposes images as training did, and off-policy agents refuse normalize on them
    (their replay buffer would get untransposed frames) before anything trains."""
    overrides = {"policy": "CnnPolicy", "n_envs": 1, "n_steps": 32, "batch_size": 32}
    summary = train_run(channel_last_env, "ppo", steps=32, overrides=overrides, device="cpu", eval_freq=32, n_eval_episodes=1,
                        save_path=str(tmp_path / "model.zip"))  # fmt: skip
    result = evaluate_saved_model(channel_last_env, "ppo", summary["model"], n_episodes=2)
    assert result["lengths"] == [8, 8] and result["vecnormalize"] is None
    with pytest.raises(ValueError, match="channel-last images"):
        train_run(channel_last_env, "discrete-sac", steps=32, overrides={"policy": "CnnPolicy", "normalize": {"norm_obs": False}}, device="cpu")

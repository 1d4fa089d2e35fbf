"""Mid-run checkpoints: a run killed after a checkpoint goes on from it, with its curve, replay
buffer, step counters and entropy coefficient (a compare's runs, through Ray Tune: test_compare.py)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from rl_diffcat.benchmark import checkpoint as checkpoint_module
from rl_diffcat.benchmark import runner
from rl_diffcat.benchmark.algos import ALGOS
from rl_diffcat.benchmark.checkpoint import read_checkpoint, write_checkpoint
from rl_diffcat.benchmark.runner import default_checkpoint_freq, train_run
from rl_diffcat.cli import main

ENV = "CartPole-v1"
STEPS, EVAL_FREQ, CHECKPOINT_FREQ = 600, 200, 200
OVERRIDES = {
    "diffcat-sac": {"learning_starts": 100, "batch_size": 32, "policy_kwargs.net_arch": [32, 32]},
    "discrete-sac": {"learning_starts": 100, "batch_size": 32, "policy_kwargs.net_arch": [32, 32]},
    "ppo": {"policy_kwargs.net_arch": [32, 32]},
}


class Killed(Exception):
    """Stands in for the process being killed right after a checkpoint was written."""


def _kill_after_first_checkpoint(monkeypatch):
    written = []

    def write_then_die(folder, model, state):
        written.append(write_checkpoint(folder, model, state))
        raise Killed

    monkeypatch.setattr(checkpoint_module, "write_checkpoint", write_then_die)
    return written


def _train(tmp_path, algo, resume, log=print):
    return train_run(
        ENV, algo, seed=3, steps=STEPS, overrides=OVERRIDES[algo], device="cpu", eval_freq=EVAL_FREQ, n_eval_episodes=2,
        eval_csv=str(tmp_path / "eval.csv"), save_path=str(tmp_path / "model.zip"), tensorboard_log=None,
        done_json=str(tmp_path / "done.json"), checkpoint_dir=str(tmp_path / "checkpoint"), checkpoint_freq=CHECKPOINT_FREQ,
        resume=resume, log=log,
    )  # fmt: skip


def _capture_resumed_model(monkeypatch):
    """Record the model the resumed run loads, with its weights and entropy coefficient before it trains on."""
    loaded = {}

    def load_and_keep(*args, **kwargs):
        model = original(*args, **kwargs)
        loaded["model"] = model
        loaded["log_ent_coef"] = getattr(model, "log_ent_coef", None)
        loaded["log_ent_coef"] = None if loaded["log_ent_coef"] is None else loaded["log_ent_coef"].detach().clone()
        loaded["policy"] = {name: tensor.clone() for name, tensor in model.policy.state_dict().items()}
        return model

    original = runner.load_model
    monkeypatch.setattr(runner, "load_model", load_and_keep)
    return loaded


@pytest.mark.parametrize("algo", ["diffcat-sac", "discrete-sac", "ppo"])
def test_killed_run_resumes_from_its_checkpoint(algo, tmp_path, monkeypatch):
    written = _kill_after_first_checkpoint(monkeypatch)
    with pytest.raises(Killed):
        _train(tmp_path, algo, resume=False)
    monkeypatch.undo()
    (state,) = written
    step = state["step"]
    assert CHECKPOINT_FREQ <= step < STEPS and not os.path.exists(tmp_path / "done.json")
    before = pd.read_csv(tmp_path / "eval.csv")
    algo_class = ALGOS[algo].load_class()
    at_checkpoint = algo_class.load(os.path.join(tmp_path, "checkpoint", state["model"]), device="cpu")
    assert at_checkpoint.num_timesteps == step

    loaded = _capture_resumed_model(monkeypatch)
    lines = []
    summary = _train(tmp_path, algo, resume=True, log=lines.append)
    assert lines == [f"resuming {algo} on {ENV} (seed 3) from its checkpoint at step {step} of {STEPS}"]
    assert summary["resumed_at"] == [step] and summary["env_steps"] >= STEPS
    assert json.load(open(tmp_path / "done.json"))["resumed_at"] == [step]
    assert not os.path.exists(tmp_path / "checkpoint"), "a finished run leaves no checkpoint behind"

    # The curve goes on: the rows up to the checkpoint are kept as they were, the later ones of
    # the killed run are replaced, and the clock counts both segments.
    curve = pd.read_csv(tmp_path / "eval.csv")
    kept = before[before["step"] <= step].reset_index(drop=True)
    pd.testing.assert_frame_equal(curve.iloc[: len(kept)].reset_index(drop=True), kept)
    assert curve["step"].is_unique and curve["step"].is_monotonic_increasing and curve["step"].iloc[-1] == summary["env_steps"]
    assert set(range(0, STEPS + 1, EVAL_FREQ)) <= set(curve["step"])
    assert (curve["wall_clock"].diff().dropna() > 0).all()

    # The model goes on from the checkpoint, not from scratch.
    model = loaded["model"]
    assert model.num_timesteps == summary["env_steps"] and model._n_updates > at_checkpoint._n_updates > 0
    start = loaded["policy"]
    assert start.keys() == at_checkpoint.policy.state_dict().keys()
    assert all(torch.equal(start[name], tensor) for name, tensor in at_checkpoint.policy.state_dict().items())
    if algo != "ppo":
        assert torch.equal(loaded["log_ent_coef"], at_checkpoint.log_ent_coef.detach())
        # The replay buffer holds the transitions of both segments, not only of the second one.
        assert model.replay_buffer.size() == summary["env_steps"]


def test_resume_refuses_a_checkpoint_of_another_configuration(tmp_path, monkeypatch):
    _kill_after_first_checkpoint(monkeypatch)
    with pytest.raises(Killed):
        _train(tmp_path, "diffcat-sac", resume=False)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"another run \(it differs in hyperparams, steps\)"):
        train_run(
            ENV, "diffcat-sac", seed=3, steps=STEPS + 100, overrides=OVERRIDES["diffcat-sac"], device="cpu",
            eval_freq=EVAL_FREQ, n_eval_episodes=2, checkpoint_dir=str(tmp_path / "checkpoint"), resume=True,
        )  # fmt: skip
    with pytest.raises(ValueError, match="need a checkpoint_dir"):
        train_run(ENV, "ppo", steps=10, resume=True)


def test_checkpoint_files_are_replaced_only_once_the_new_state_is_written(tmp_path):
    from rl_diffcat.benchmark.algos import load_hyperparams, make_model

    model = make_model("diffcat-sac", ENV, load_hyperparams("diffcat-sac", ENV, overrides=OVERRIDES["diffcat-sac"]), seed=0, device="cpu")
    folder = str(tmp_path / "checkpoint")
    assert read_checkpoint(folder) is None
    model.learn(50)
    first = write_checkpoint(folder, model, {"config": {"a": 1}})
    model.learn(30, reset_num_timesteps=False)
    second = write_checkpoint(folder, model, {"config": {"a": 1}})
    assert (first["step"], second["step"]) == (50, 80)
    assert sorted(os.listdir(folder)) == ["model_80.zip", "replay_buffer_80.npz", "state.json"]
    state = read_checkpoint(folder)
    assert state["step"] == 80 and state["model"] == os.path.join(folder, "model_80.zip")
    os.remove(state["replay_buffer"])
    assert read_checkpoint(folder) is None, "a checkpoint with a file missing is not one"


def test_default_checkpoint_freq_is_a_multiple_of_the_eval_freq():
    assert default_checkpoint_freq(300_000, 10_000) == 30_000
    assert default_checkpoint_freq(50_000, 2_500) == 5_000
    assert default_checkpoint_freq(300, 150) == 150


def test_train_cli_checkpoints_and_resumes(tmp_path, monkeypatch, capsys):
    save = str(tmp_path / "model.zip")
    argv = ["train", ENV, "--algo", "ppo", "--steps", "600", "--eval-freq", "200", "--eval-episodes", "2", "--device", "cpu"]
    argv += ["--save-path", save, "--tensorboard-log", str(tmp_path / "tb"), "--no-progress", "--threads", "1"]
    argv += ["--checkpoint-freq", "200", "--hyperparams", "policy_kwargs.net_arch=[32, 32]"]
    written = _kill_after_first_checkpoint(monkeypatch)
    with pytest.raises(Killed):
        main(argv)
    monkeypatch.undo()
    (state,) = written
    assert os.path.exists(os.path.join(tmp_path, "model_checkpoint", "state.json")), "default folder: next to the model"
    assert main(argv + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert f"from its checkpoint at step {state['step']} of 600" in out and f"resumed at steps [{state['step']}]" in out
    assert not os.path.exists(os.path.join(tmp_path, "model_checkpoint")), "the checkpoint is gone once the run finished"
    assert main(argv + ["--resume"]) == 0, "--resume without a checkpoint starts from scratch"
    assert "resumed" not in capsys.readouterr().out


def test_a_resumed_run_on_our_own_env_registers_it_first():
    """Resume loads the model without the checks that import rl_diffcat.envs, in a fresh process:
    building the training env must register the ``rl_diffcat/`` ids itself."""
    code = (
        "from rl_diffcat.benchmark.algos import make_training_env\n"
        "print(make_training_env('rl_diffcat/PolyProg-D4-v0', {'n_envs': 2}, seed=0).num_envs)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "2"


class _BufferHolder:
    """The part of an off-policy SB3 model that saves and loads its replay buffer."""

    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    save_replay_buffer = OffPolicyAlgorithm.save_replay_buffer
    load_replay_buffer = OffPolicyAlgorithm.load_replay_buffer

    def __init__(self, buffer, spaces_from=None):
        self.replay_buffer, self.verbose, self.device = buffer, 0, "cpu"
        source = buffer if spaces_from is None else spaces_from  # a model's spaces, which the data-only format takes on load
        self.observation_space, self.action_space = source.observation_space, source.action_space


def _filled_buffer(kind, n_transitions, capacity=500, optimize_memory_usage=False):
    import numpy as np
    from gymnasium import spaces
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

    box = spaces.Box(-1, 1, (3,), dtype=np.float32)
    if kind == "dict":
        buffer = DictReplayBuffer(capacity, spaces.Dict({"a": box, "b": spaces.Discrete(4)}), spaces.MultiDiscrete([3, 5]), device="cpu")
    else:
        buffer = ReplayBuffer(
            capacity, box, spaces.MultiDiscrete([3, 5]), device="cpu",
            optimize_memory_usage=optimize_memory_usage, handle_timeout_termination=not optimize_memory_usage,
        )
    rng = np.random.default_rng(0)
    space = buffer.observation_space
    for _ in range(n_transitions):
        obs = {key: np.array([sub.sample()]) for key, sub in space.spaces.items()} if kind == "dict" else rng.uniform(-1, 1, (1, 3))
        next_obs = {key: np.array([sub.sample()]) for key, sub in space.spaces.items()} if kind == "dict" else rng.uniform(-1, 1, (1, 3))
        buffer.add(obs, next_obs, rng.integers(0, 3, (1, 2)), rng.normal(size=1), rng.random(1) < 0.1, [{"TimeLimit.truncated": bool(rng.random() < 0.05)}])
    return buffer


def _buffer_arrays(buffer):
    import numpy as np

    arrays = {}
    for name, value in vars(buffer).items():
        if isinstance(value, dict) and all(isinstance(item, np.ndarray) for item in value.values()):
            arrays.update({f"{name}.{key}": item for key, item in value.items()})
        elif hasattr(value, "shape") and getattr(value, "ndim", 0) >= 1:
            arrays[name] = value
    return arrays


@pytest.mark.parametrize("kind, optimize_memory_usage", [("plain", False), ("plain", True), ("dict", False)])
def test_replay_buffer_checkpoint_holds_only_the_filled_rows_and_grows_back(kind, optimize_memory_usage, tmp_path):
    """A buffer 37 transitions into 500 is written cut to its filled rows, and comes back with its
    capacity, every array equal to the original's, and sampling and wrapping as before."""
    import numpy as np

    buffer = _filled_buffer(kind, 37, optimize_memory_usage=optimize_memory_usage)
    checkpoint_module.save_replay_buffer(_BufferHolder(buffer), str(tmp_path / "cut.pkl"))
    _BufferHolder(buffer).save_replay_buffer(str(tmp_path / "whole.pkl"))
    assert os.path.getsize(tmp_path / "cut.pkl") < 0.2 * os.path.getsize(tmp_path / "whole.pkl")

    loaded = _BufferHolder(None, spaces_from=buffer)
    checkpoint_module.load_replay_buffer(loaded, str(tmp_path / "cut.pkl"))
    restored = loaded.replay_buffer
    assert type(restored) is type(buffer) and not hasattr(restored, checkpoint_module.CUT_ATTRIBUTE)
    assert (restored.buffer_size, restored.pos, restored.full) == (500, 37, False)
    original, back = _buffer_arrays(buffer), _buffer_arrays(restored)
    assert original.keys() == back.keys() and len(original) >= 5
    for name, array in original.items():
        assert back[name].shape == array.shape and back[name].dtype == array.dtype, name
        np.testing.assert_array_equal(back[name], array, err_msg=name)
    # The restored buffer fills up and wraps around like one that was never saved.
    assert restored.sample(8).rewards.shape == (8, 1)
    more = _filled_buffer(kind, 500, optimize_memory_usage=optimize_memory_usage)
    for index in range(480):
        source = {key: item[index] for key, item in more.observations.items()} if kind == "dict" else more.observations[index]
        restored.add(source, source, more.actions[index], more.rewards[index], more.dones[index], [{}])
    assert restored.full and restored.pos == (37 + 480) % 500


def test_full_and_sb3_written_buffers_load_unchanged(tmp_path):
    """A full buffer is saved whole, and a buffer SB3's save_replay_buffer wrote (checkpoints from
    before buffers were cut) loads as it is, when trusted (a pickle can run code: test_safe_loading.py)."""
    import numpy as np

    full = _filled_buffer("plain", 520)
    checkpoint_module.save_replay_buffer(_BufferHolder(full), str(tmp_path / "full.pkl"))
    partial = _filled_buffer("plain", 37)
    _BufferHolder(partial).save_replay_buffer(str(tmp_path / "sb3.pkl"))
    for name, buffer in (("full.pkl", full), ("sb3.pkl", partial)):
        loaded = _BufferHolder(None, spaces_from=buffer)
        checkpoint_module.load_replay_buffer(loaded, str(tmp_path / name), trust_file=name == "sb3.pkl")
        assert (loaded.replay_buffer.pos, loaded.replay_buffer.full) == (buffer.pos, buffer.full)
        np.testing.assert_array_equal(loaded.replay_buffer.observations, buffer.observations)

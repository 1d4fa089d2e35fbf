"""Mid-run checkpoints, so that a long run that is interrupted (a crash, a killed job, a machine
taken back) goes on from its last checkpoint instead of from step 0.

A checkpoint is a folder with

* ``model_<step>.zip``: the model, saved with ``model.save`` (weights, optimizers, entropy
  coefficient, step counters, learning-rate schedule);
* ``replay_buffer_<step>.pkl``: the replay buffer of off-policy algos;
* ``state.json``: written last and atomically. It names the two files above and holds the run's
  configuration and the evaluation callback's state (the learning curve so far, its schedule and
  its clocks).

Files carry their step in the name, and the older ones are deleted only once the new
``state.json`` is in place. A crash while a checkpoint is being written therefore leaves the
previous checkpoint whole.

A resumed run is not bit-identical to an uninterrupted one. It reseeds its RNGs and envs
from ``seed + step`` (the states of the RNGs and of the env in mid-episode are not saved), and
the episode that was running when the checkpoint was taken is cut off there.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from typing import Any, Callable, Dict, List, Optional

from stable_baselines3.common.callbacks import BaseCallback

STATE_FILE = "state.json"


def read_checkpoint(folder: str) -> Optional[Dict[str, Any]]:
    """:param folder: a checkpoint folder.
    :return: its state, with ``model`` and ``replay_buffer`` as full paths, or None when the folder
        holds no complete checkpoint.
    """
    path = os.path.join(folder, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        state = json.load(file)
    for key in ("model", "replay_buffer"):
        if state.get(key) is not None:
            state[key] = os.path.join(folder, state[key])
            if not os.path.exists(state[key]):
                return None
    return state


def config_differences(stored: Dict[str, Any], config: Dict[str, Any]) -> List[str]:
    """:return: the keys whose values differ between a checkpoint's configuration and ``config``."""
    return sorted(key for key in set(stored) | set(config) if stored.get(key) != config.get(key))


def remove_checkpoint(folder: str) -> None:
    """Delete a checkpoint folder (no error when there is none)."""
    shutil.rmtree(folder, ignore_errors=True)


def write_checkpoint(folder: str, model: Any, state: Dict[str, Any]) -> Dict[str, Any]:
    """Save ``model`` (and its replay buffer, if any) at ``model.num_timesteps``, then ``state``.

    :param folder: the checkpoint folder (created if needed).
    :param model: an SB3 model.
    :param state: JSON-serialisable run state; ``step``, ``model`` and ``replay_buffer`` are added.
    :return: the state as written.
    """
    os.makedirs(folder, exist_ok=True)
    step = int(model.num_timesteps)
    model_name = f"model_{step}.zip"
    model.save(os.path.join(folder, model_name))
    buffer_name = None
    if getattr(model, "replay_buffer", None) is not None:
        buffer_name = f"replay_buffer_{step}.pkl"
        model.save_replay_buffer(os.path.join(folder, buffer_name))
    state = {**state, "step": step, "model": model_name, "replay_buffer": buffer_name}
    tmp = os.path.join(folder, f"{STATE_FILE}.tmp")
    with open(tmp, "w") as file:
        json.dump(state, file, indent=2)
    os.replace(tmp, os.path.join(folder, STATE_FILE))
    keep = {model_name, buffer_name}
    for pattern in ("model_*.zip", "replay_buffer_*.pkl"):
        for path in glob.glob(os.path.join(folder, pattern)):
            if os.path.basename(path) not in keep:
                os.remove(path)
    return state


class RunCheckpointCallback(BaseCallback):
    """Write a checkpoint every ``save_freq`` env steps, at the start of a rollout.

    At that point everything collected so far has been trained on (PPO) or stored in the replay
    buffer (SAC), so the saved model, buffer and step counter agree.

    :param folder: the checkpoint folder.
    :param save_freq: env steps between checkpoints.
    :param run_state: returns the JSON-serialisable run state to store with each checkpoint.
    :param verbose: 1 prints a line per checkpoint.
    """

    def __init__(self, folder: str, save_freq: int, run_state: Callable[[], Dict[str, Any]], verbose: int = 0) -> None:
        super().__init__(verbose)
        if save_freq < 1:
            raise ValueError(f"save_freq must be >= 1, got {save_freq}")
        self.folder = folder
        self.save_freq = save_freq
        self.run_state = run_state
        self._next_save = 0

    def _on_training_start(self) -> None:
        self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_rollout_start(self) -> None:
        if self.num_timesteps < self._next_save:
            return
        write_checkpoint(self.folder, self.model, self.run_state())
        while self._next_save <= self.num_timesteps:
            self._next_save += self.save_freq
        if self.verbose:
            print(f"checkpoint at step {self.num_timesteps} in {self.folder}", flush=True)

    def _on_step(self) -> bool:
        return True

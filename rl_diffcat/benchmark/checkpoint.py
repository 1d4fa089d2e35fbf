"""Mid-run checkpoints, so that a long run that is interrupted (a crash, a killed job, a machine
taken back) goes on from its last checkpoint instead of from step 0.

A checkpoint is a folder with

* ``model_<step>.zip``: the model, saved with ``model.save`` (weights, optimizers, entropy
  coefficient, step counters, learning-rate schedule);
* ``replay_buffer_<step>.npz``: the replay buffer of off-policy algos in a data-only format
  (:mod:`rl_diffcat.serialization`: arrays and JSON, read without pickle), cut to the transitions
  it holds (a 1M-transition buffer 20k steps into a run is 2% full; SB3's ``save_replay_buffer``
  would write all of it: 332 MB on HalfCheetah) and grown back to its capacity on resume;
* ``model_<step>_vecnormalize.npz``: the ``VecNormalize`` statistics of a run with ``normalize``
  (:mod:`~rl_diffcat.benchmark.normalization`, also data-only), without which its policy's inputs
  change scale; named as ``rl-diffcat evaluate`` looks for them beside a model;
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

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rl_diffcat.benchmark.normalization import STATS_SUFFIX, save_stats, stats_path
from rl_diffcat.serialization import DATA_SUFFIX, load_replay_buffer_into, write_replay_buffer

STATE_FILE = "state.json"
CUT_ATTRIBUTE = "_rl_diffcat_cut"  # on a buffer pickled by rl-diffcat < 0.2 cut to its filled rows: the attributes cut


def save_replay_buffer(model: Any, path: str) -> None:
    """Save ``model.replay_buffer`` in the data-only format (:func:`~rl_diffcat.serialization.write_replay_buffer`:
    no pickle, only the filled rows while it is not full), whatever the algorithm.

    :param model: an off-policy SB3 model.
    :param path: the file to write (``replay_buffer_<step>.npz`` in a checkpoint).
    """
    write_replay_buffer(model.replay_buffer, path)


def load_replay_buffer(model: Any, path: str, trust_file: bool = False) -> None:
    """Load a buffer written by :func:`save_replay_buffer` into ``model``, with its full capacity,
    without pickle (:func:`~rl_diffcat.serialization.load_replay_buffer_into`).

    :param model: an off-policy SB3 model.
    :param path: the buffer file.
    :param trust_file: also load a pickle file (SB3's ``save_replay_buffer``, or a checkpoint
        written before the data-only format), which can run code.
    :raises UnsafeFileError: a pickle file without ``trust_file``.
    """
    load_replay_buffer_into(model, path, trust_file)
    buffer = model.replay_buffer
    cut = getattr(buffer, CUT_ATTRIBUTE, None)  # a trusted pickle of an old checkpoint, cut to its filled rows
    if cut is None:
        return

    def grown(array: np.ndarray) -> np.ndarray:
        full = np.zeros((buffer.buffer_size, *array.shape[1:]), dtype=array.dtype)
        full[: len(array)] = array
        return full

    for name in cut:
        value = getattr(buffer, name)
        setattr(buffer, name, {key: grown(item) for key, item in value.items()} if isinstance(value, dict) else grown(value))
    delattr(buffer, CUT_ATTRIBUTE)


class CheckpointError(Exception):
    """A checkpoint file that cannot be read (truncated, not JSON, missing keys).

    :param path: the file.
    :param reason: what was wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path
        self.reason = reason


def read_checkpoint(folder: str) -> Optional[Dict[str, Any]]:
    """:param folder: a checkpoint folder.
    :return: its state, with ``model``, ``replay_buffer`` and ``vecnormalize`` as full paths (or
        None), or None when the folder holds no complete checkpoint.
    :raises CheckpointError: naming ``state.json`` when it cannot be read.
    """
    path = os.path.join(folder, STATE_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as file:
            state = json.load(file)
        for key in ("config", "step"):
            state[key]  # noqa: B018 - a state without them is damaged
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(path, f"{type(error).__name__}: {error}") from None
    for key in ("model", "replay_buffer", "vecnormalize"):
        state.setdefault(key, None)  # checkpoints written before normalize was supported have no statistics
        if state[key] is not None:
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
    """Save ``model`` (and its replay buffer and ``VecNormalize`` statistics, if any) at
    ``model.num_timesteps``, then ``state``.

    :param folder: the checkpoint folder (created if needed).
    :param model: an SB3 model.
    :param state: JSON-serialisable run state; ``step``, ``model``, ``replay_buffer`` and ``vecnormalize`` are added.
    :return: the state as written.
    """
    os.makedirs(folder, exist_ok=True)
    step = int(model.num_timesteps)
    model_name = f"model_{step}.zip"
    model.save(os.path.join(folder, model_name))
    buffer_name = None
    if getattr(model, "replay_buffer", None) is not None:
        buffer_name = f"replay_buffer_{step}{DATA_SUFFIX}"
        save_replay_buffer(model, os.path.join(folder, buffer_name))
    stats_name = os.path.basename(stats_path(model_name))
    if save_stats(model, os.path.join(folder, stats_name)) is None:
        stats_name = None
    state = {**state, "step": step, "model": model_name, "replay_buffer": buffer_name, "vecnormalize": stats_name}
    tmp = os.path.join(folder, f"{STATE_FILE}.tmp")
    with open(tmp, "w") as file:
        json.dump(state, file, indent=2)
    os.replace(tmp, os.path.join(folder, STATE_FILE))
    keep = {model_name, buffer_name, stats_name}
    # the .pkl patterns: files of checkpoints written before the data-only format
    for pattern in ("model_*.zip", f"replay_buffer_*{DATA_SUFFIX}", f"model_*{STATS_SUFFIX}", "replay_buffer_*.pkl", "model_*_vecnormalize.pkl"):
        for path in glob.glob(os.path.join(folder, pattern)):
            if os.path.basename(path) not in keep:
                os.remove(path)
    return state


class RunCheckpointCallback(BaseCallback):
    """Save a checkpoint every ``save_freq`` env steps, at the start of a rollout.

    At that point everything collected so far has been trained on (PPO) or stored in the replay
    buffer (SAC), so the saved model, buffer and step counter agree.

    :param save_freq: env steps between checkpoints.
    :param save: writes the checkpoint of the model it is given (:func:`write_checkpoint` into a
        folder, or a compare's hand-over to Ray Tune).
    :param verbose: 1 prints a line per checkpoint.
    """

    def __init__(self, save_freq: int, save: Callable[[Any], None], verbose: int = 0) -> None:
        super().__init__(verbose)
        if save_freq < 1:
            raise ValueError(f"save_freq must be >= 1, got {save_freq}")
        self.save_freq = save_freq
        self.save = save
        self._next_save = 0

    def _on_training_start(self) -> None:
        self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_rollout_start(self) -> None:
        if self.num_timesteps < self._next_save:
            return
        self.save(self.model)
        while self._next_save <= self.num_timesteps:
            self._next_save += self.save_freq
        if self.verbose:
            print(f"checkpoint at step {self.num_timesteps}", flush=True)

    def _on_step(self) -> bool:
        return True

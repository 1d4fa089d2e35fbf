"""Evaluate a saved model on its env: what ``rl-diffcat evaluate`` runs.

A model saved by ``rl-diffcat train`` (or by a compare, ``<results>/runs/<run>/model.zip``) is
loaded with the class of its algo and played for a number of episodes on a fresh, seeded,
``Monitor``-wrapped env, so the returns are the env's own episode returns. A model trained with
``normalize`` sees its observations through the statistics saved beside it (``<model>_vecnormalize.npz``)
or given with ``--vecnormalize``. ``--video DIR`` writes every episode played as an MP4 file
(:mod:`rl_diffcat.benchmark.rendering`).

Nothing in the files runs as code (:mod:`rl_diffcat.serialization`): a model whose pickled entries
reach outside the allowlist, and pickled statistics (``VecNormalize.save``'s, rl-zoo3's
``vecnormalize.pkl``, ours before the data-only format), are refused unless ``trust_file``
(``--trust-file``).
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from typing import Any, Callable, Dict, Optional

import numpy as np

from rl_diffcat.benchmark.algos import _algo_class, check_env_id, parse_algo
from rl_diffcat.benchmark.normalization import legacy_stats_path, make_eval_env, normalize_kwargs, stats_path
from rl_diffcat.benchmark.rendering import (
    check_display,
    offscreen_rendering,
    removed_if_left_empty,
    video_make_kwargs,
    video_name_prefix,
    video_recorder,
    written_videos,
)
from rl_diffcat.serialization import UnsafeFileError, safe_load


def _saved_policy_module(path: str) -> Optional[str]:
    """The module of the policy class recorded in an SB3 ``.zip`` (None when unreadable), to name
    the algo a file really holds when it does not load as the one asked for."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
        return data["policy_class"]["__module__"]
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile):
        return None


def policy_evaluator(model: Any) -> Callable[..., Any]:
    """SB3's ``evaluate_policy``, or sb3-contrib's maskable one for a model that masks invalid
    actions (our agents' ``use_action_masks``, or ``MaskablePPO``): it hands ``predict`` the env's
    masks at every step."""
    if getattr(model, "use_action_masks", False) or any(cls.__name__ == "MaskablePPO" for cls in type(model).__mro__):
        try:
            from sb3_contrib.common.maskable.evaluation import evaluate_policy
        except ImportError as error:
            raise ValueError("evaluating a model with action masks needs sb3-contrib: pip install 'rl-diffcat[contrib]'") from error
        return evaluate_policy
    from stable_baselines3.common.evaluation import evaluate_policy

    return evaluate_policy


def _zip_path(path: str) -> str:
    """``path``, or ``path + ".zip"`` when only that exists (SB3 accepts both spellings)."""
    if not os.path.isfile(path) and os.path.isfile(path + ".zip"):
        path += ".zip"
    if not os.path.isfile(path):
        raise ValueError(f"no saved model at {path}")
    return path


def _statistics_for(path: str, vecnormalize: Optional[str]) -> Optional[str]:
    """The ``VecNormalize`` statistics to evaluate the model at ``path`` with: ``vecnormalize`` when
    given, else the file saved beside the model (or, in the old pickle format, ``<model>_vecnormalize.pkl``,
    which loads only with ``--trust-file``). Where the run's ``done.json`` (beside the model,
    naming it) tells, it decides: a file beside a model that trained without ``normalize`` is
    not applied, and a model that trained with it but lost its file is refused (on raw
    observations it would act on inputs of another scale and still report a return)."""
    if vecnormalize is not None:
        if not os.path.isfile(vecnormalize):
            raise ValueError(f"no VecNormalize statistics at {vecnormalize}")
        return vecnormalize
    beside = stats_path(path)
    if not os.path.isfile(beside) and os.path.isfile(legacy_stats_path(path)):
        beside = legacy_stats_path(path)
    normalized = _run_normalized(path)
    if normalized is None:
        return beside if os.path.isfile(beside) else None
    if normalized and not os.path.isfile(beside):
        raise ValueError(f"{path} was trained with normalize (its done.json says so), but its statistics {beside} are missing; pass them with --vecnormalize")
    return beside if normalized else None


def _run_normalized(path: str) -> Optional[bool]:
    """Whether the run that saved the model at ``path`` trained with ``normalize``, as the
    ``done.json`` beside it says; None when there is none, or it is of another model."""
    try:
        with open(os.path.join(os.path.dirname(os.path.abspath(path)), "done.json")) as file:
            done = json.load(file)
        if os.path.basename(str(done.get("model"))) != os.path.basename(path):
            return None
        return normalize_kwargs(done.get("hyperparams") or {}) is not None
    except (OSError, ValueError, AttributeError):  # no done.json, or not one of ours
        return None


def load_saved_model(algo: str, path: str, device: str = "auto", trust_file: bool = False):
    """Load a model saved with ``model.save``, with clear errors for a missing file or another algo,
    without running code from the file (:func:`~rl_diffcat.serialization.safe_load`).

    :param algo: an algo label, ``ALGO`` or ``ALGO:SAMPLER`` (the sampler is saved with the model).
    :param path: the ``.zip`` (the suffix may be left out, as in SB3).
    :param device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    :param trust_file: load as SB3 does, unpickling everything (only for files you trust).
    :return: the model, without an env.
    :raises UnsafeFileError: the file references something outside the allowlist.
    """
    spec, _ = parse_algo(algo)
    path = _zip_path(path)
    algo_class = _algo_class(spec)
    try:  # our agents also refuse another agent's policy here (CategoricalSAC._check_policy_family)
        model = safe_load(algo_class, path, device=device, trust_file=trust_file)
    except UnsafeFileError:
        raise
    except Exception as error:  # SB3 fails deep inside the policy constructor (TypeError, AttributeError, ...)
        module = _saved_policy_module(path)
        holds = f"; its policy class comes from {module}" if module else ""
        raise ValueError(
            f"{path} does not load as a {spec.name} model ({type(error).__name__}: {error}){holds}. "
            "Was it trained with another --algo?"
        ) from error
    return model


def evaluate_saved_model(
    env_id: str,
    algo: str,
    path: str,
    n_episodes: int = 10,
    deterministic: bool = True,
    seed: int = 0,
    device: str = "auto",
    render: bool = False,
    vecnormalize: Optional[str] = None,
    video_folder: Optional[str] = None,
    trust_file: bool = False,
) -> Dict[str, Any]:
    """Play a saved model for ``n_episodes`` episodes on ``env_id``.

    :param env_id: a gymnasium env id with the observation and action spaces the model was trained on.
    :param algo: an algo label, ``ALGO`` or ``ALGO:SAMPLER``.
    :param path: the saved ``.zip``.
    :param n_episodes: episodes to play (>= 1).
    :param deterministic: take the policy's mode (as the training evaluations do) instead of sampling.
    :param seed: seed of the env's first reset and of the model's sampling.
    :param device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    :param render: open a window (``render_mode="human"``); needs the env's rendering dependency.
    :param vecnormalize: ``VecNormalize`` statistics to normalize observations with (rl-zoo3's
        ``vecnormalize.pkl``, say, with ``trust_file``); None: ``<model>_vecnormalize.npz`` when it exists.
    :param video_folder: write each episode to ``<video_folder>/<model>-episode-<i>.mp4``, named
        after the model file (a compare run's ``model.zip`` after its run folder); needs moviepy
        and an env with an ``rgb_array`` render mode; not with ``render``.
    :param trust_file: also load files that can run code: a model whose pickled entries reach outside
        the allowlist, pickled statistics. Only for files you trust.
    :return: ``returns`` and ``lengths`` per episode, their summary, and what was evaluated
        (``vecnormalize``: the statistics the observations were normalized with, or None;
        ``videos``: the files written).
    """
    with removed_if_left_empty(video_folder) if video_folder else contextlib.nullcontext():
        with offscreen_rendering(video_folder is not None):
            return _play(env_id, algo, path, n_episodes, deterministic, seed, device, render, vecnormalize, video_folder, trust_file)


def _play(
    env_id: str,
    algo: str,
    path: str,
    n_episodes: int,
    deterministic: bool,
    seed: int,
    device: str,
    render: bool,
    vecnormalize: Optional[str],
    video_folder: Optional[str],
    trust_file: bool,
) -> Dict[str, Any]:
    import gymnasium as gym
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.utils import check_for_correct_spaces

    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    if render and video_folder:
        raise ValueError("--render shows the episodes in a window and --video writes them to files: pass one of them")
    if render:
        check_display()
    check_env_id(env_id)
    path = _zip_path(path)
    model = load_saved_model(algo, path, device, trust_file)
    stats = _statistics_for(path, vecnormalize)
    make_kwargs, wrapper = {"render_mode": "human"} if render else {}, None
    if video_folder:
        name_prefix = video_name_prefix(path)
        wrapper = video_recorder(video_folder, n_episodes, name_prefix)
    try:
        if video_folder:
            make_kwargs = video_make_kwargs(env_id)
        if stats is None:
            env = gym.make(env_id, **make_kwargs)
            if wrapper:  # seeded before the recorder counts episodes: its episode 0 is the first one played
                env.reset(seed=seed)
                env = wrapper(env)
            env = Monitor(env)
        else:
            env = make_eval_env(env_id, {}, seed, stats, wrapper=wrapper, trust_file=trust_file, **make_kwargs)
    except gym.error.DependencyNotInstalled as error:
        raise ValueError(f"{env_id} needs an optional dependency: {error}") from error
    except gym.error.UnsupportedMode as error:
        raise ValueError(str(error)) from error
    except UnsafeFileError:
        raise
    except (AssertionError, ValueError) as error:  # the statistics are checked against the env's spaces
        if stats is None:
            raise
        raise ValueError(f"{stats} does not fit {env_id}: {error}") from error
    # As SB3 wraps a training env: a DummyVecEnv, and VecTransposeImage over channel-last images
    # (the model's observation space is the transposed one).
    venv = BaseAlgorithm._wrap_env(env, verbose=0, monitor_wrapper=False)
    try:
        try:
            check_for_correct_spaces(venv, model.observation_space, model.action_space)
        except ValueError as error:
            raise ValueError(f"{path} was not trained on {env_id}: {error}") from error
        model.set_random_seed(seed)
        try:
            if stats is None and wrapper is None:
                env.reset(seed=seed)  # the VecNormalize env was seeded when it was made
            returns, lengths = policy_evaluator(model)(
                model, venv, n_eval_episodes=n_episodes, deterministic=deterministic, return_episode_rewards=True
            )
        except gym.error.DependencyNotInstalled as error:  # rendering imports its backend at the first reset
            raise ValueError(f"rendering {env_id} needs an optional dependency: {error}") from error
    finally:
        venv.close()
    returns = np.asarray(returns, dtype=float)
    return {
        "env": env_id,
        "algo": algo,
        "model": path,
        "vecnormalize": stats,
        "videos": written_videos(video_folder, name_prefix, n_episodes) if video_folder else [],
        "trained_steps": int(model.num_timesteps),
        "n_episodes": n_episodes,
        "deterministic": deterministic,
        "seed": seed,
        "device": str(model.device),
        "returns": returns.tolist(),
        "lengths": [int(length) for length in lengths],
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "min_return": float(returns.min()),
        "max_return": float(returns.max()),
    }

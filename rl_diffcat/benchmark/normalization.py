"""rl-zoo3's ``normalize`` hyperparameter: train on a ``VecNormalize``-wrapped env.

An entry may say ``normalize: true`` (SB3's defaults), give a mapping of ``VecNormalize``
arguments (``normalize: {norm_obs: true, norm_reward: false}``), or use rl-zoo3's string spelling
of one (``normalize: "{'norm_obs': True, 'norm_reward': False}"``). As in rl-zoo3, the entry's
``gamma`` also discounts the normalizer's return estimate unless the mapping sets its own.

The running statistics belong to the model: a policy trained on normalized observations acts
on nothing else. So they travel with it: saved beside the model (:func:`stats_path`), in every
mid-run checkpoint, and loaded again by a resumed run and by ``rl-diffcat evaluate``. Evaluations
normalize observations with the training statistics of that moment and score the env's own
rewards (``Monitor`` sits under the normalizer).
"""

from __future__ import annotations

import ast
import copy
import difflib
import inspect
import os
from typing import Any, Dict, Optional

KEY = "normalize"


def normalize_kwargs(params: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The ``VecNormalize`` arguments an entry asks for, or None when it does not normalize.

    :param params: hyperparameters from :func:`~rl_diffcat.benchmark.algos.load_hyperparams`.
    :return: keyword arguments of ``VecNormalize`` (``gamma`` filled in from ``params``), or None.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    value = params.get(KEY, False)
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"normalize={value!r}: expected true/false or a mapping of VecNormalize arguments") from None
    if value is None or value is False:
        return None
    if value is True:
        kwargs: Dict[str, Any] = {}
    elif isinstance(value, dict):
        kwargs = dict(value)
    else:
        raise ValueError(f"normalize={value!r}: expected true/false or a mapping of VecNormalize arguments")
    allowed = [name for name in inspect.signature(VecNormalize.__init__).parameters if name not in ("self", "venv", "training")]
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        hints = [f"{key!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(key, allowed, n=1)) else repr(key) for key in unknown]
        raise ValueError(f"normalize has no argument {', '.join(hints)}; VecNormalize takes {', '.join(allowed)}")
    if "gamma" in params and "gamma" not in kwargs:
        kwargs["gamma"] = params["gamma"]
    return kwargs


def stats_path(model_path: str) -> str:
    """Where the statistics of the model saved at ``model_path`` go: ``<model>_vecnormalize.pkl``
    (per model, as several models share ``models/``)."""
    stem = model_path[:-4] if model_path.endswith(".zip") else model_path
    return f"{stem}_vecnormalize.pkl"


def wrap_training_env(venv: Any, kwargs: Dict[str, Any], stats: Optional[str] = None) -> Any:
    """``venv`` under a training ``VecNormalize``: fresh statistics, or those saved at ``stats``."""
    from stable_baselines3.common.vec_env import VecNormalize

    if stats is None:
        return VecNormalize(venv, **kwargs)
    normalizer = VecNormalize.load(stats, venv)
    normalizer.training = True
    return normalizer


def make_eval_env(env_id: str, kwargs: Dict[str, Any], seed: int, stats: Optional[str] = None, **make_kwargs: Any) -> Any:
    """A one-env ``VecNormalize`` to evaluate on: it normalizes observations without updating its
    statistics and passes the ``Monitor``-ed env's rewards through unscaled.

    :param env_id: the env id.
    :param kwargs: the training normalizer's arguments (:func:`normalize_kwargs`).
    :param seed: seed of the first reset.
    :param stats: statistics saved by ``VecNormalize.save`` (a trained model's); None: fresh ones,
        for an evaluation callback to overwrite from the training env (:func:`copy_stats`).
    :param make_kwargs: passed on to ``gym.make`` (``render_mode``).
    """
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    venv = DummyVecEnv([lambda: Monitor(gym.make(env_id, **make_kwargs))])
    venv.seed(seed)
    normalizer = VecNormalize(venv, **kwargs) if stats is None else VecNormalize.load(stats, venv)
    normalizer.training = False
    normalizer.norm_reward = False
    return normalizer


def copy_stats(source: Any, target: Any) -> None:
    """Give the evaluation normalizer ``target`` the current observation statistics of ``source``."""
    target.obs_rms = copy.deepcopy(source.obs_rms)


def save_stats(model: Any, path: str) -> Optional[str]:
    """Save ``model``'s normalizer statistics to ``path``; None (and nothing written) without one."""
    normalizer = model.get_vec_normalize_env()
    if normalizer is None:
        return None
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    normalizer.save(path)
    return path

"""rl-zoo3's ``normalize`` hyperparameter: train on a ``VecNormalize``-wrapped env.

An entry may say ``normalize: true`` (SB3's defaults), give a mapping of ``VecNormalize``
arguments (``normalize: {norm_obs: true, norm_reward: false}``), or use rl-zoo3's string
spellings of one (``normalize: "{'norm_obs': True, 'norm_reward': False}"`` or
``"dict(norm_obs=True, norm_reward=False)"``; read as literals, never run). As in rl-zoo3, the
entry's ``gamma``, when it has one, also discounts the normalizer's return estimate.

The running statistics belong to the model: a policy trained on normalized observations acts
on nothing else. So they travel with it: saved beside the model (:func:`stats_path`, a data-only
``.npz`` file read without pickle), in every mid-run checkpoint, and loaded again by a resumed
run and by ``rl-diffcat evaluate``. Evaluations normalize observations with the training
statistics of that moment and score the env's own rewards (``Monitor`` sits under the normalizer).
"""

from __future__ import annotations

import ast
import copy
import inspect
import os
from typing import Any, Callable, Dict, Optional

from rl_diffcat.benchmark.hints import did_you_mean
from rl_diffcat.serialization import load_vec_normalize, save_vec_normalize

KEY = "normalize"


def normalize_kwargs(params: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The ``VecNormalize`` arguments an entry asks for, or None when it does not normalize.

    :param params: hyperparameters from :func:`~rl_diffcat.benchmark.algos.load_hyperparams`.
    :return: keyword arguments of ``VecNormalize`` (``gamma`` filled in from ``params``), or None.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    value = params.get(KEY, False)
    if isinstance(value, str):
        value = _literal(value)
    if value is None or value is False:
        return None
    if value is True:
        kwargs: Dict[str, Any] = {}
    elif isinstance(value, dict):
        kwargs = dict(value)
    else:
        raise ValueError(f"normalize={value!r}: expected true/false or a mapping of VecNormalize arguments")
    if not all(isinstance(key, str) for key in kwargs):
        raise ValueError(f"normalize={value!r}: the mapping's keys should be VecNormalize argument names")
    allowed = [name for name in inspect.signature(VecNormalize.__init__).parameters if name not in ("self", "venv", "training")]
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        hints = [f"{key!r}{did_you_mean(key, allowed)}" for key in unknown]
        raise ValueError(f"normalize has no argument {', '.join(hints)}; VecNormalize takes {', '.join(allowed)}")
    for key, value in kwargs.items():  # VecNormalize would only fail at its first step
        if key in _SWITCHES and not isinstance(value, bool):
            raise ValueError(f"normalize: {key}={value!r} should be true or false")
        if key in _NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"normalize: {key}={value!r} should be a number")
    if "gamma" in params:  # rl-zoo3 discounts the normalizer's returns with the entry's gamma
        if "gamma" in kwargs and kwargs["gamma"] != params["gamma"]:
            raise ValueError(
                f"normalize: gamma={kwargs['gamma']} differs from the entry's gamma={params['gamma']}, which the normalizer "
                "takes (as in rl-zoo3); leave it out of normalize"
            )
        kwargs["gamma"] = params["gamma"]
    return kwargs


_SWITCHES = ("norm_obs", "norm_reward")
_NUMBERS = ("clip_obs", "clip_reward", "gamma", "epsilon")


def _literal(text: str) -> Any:
    """``text`` read as a Python literal, or as ``dict(key=literal, ...)``: rl-zoo3 ``eval``s
    its ``normalize`` strings, and these are the spellings its files use."""
    problem = f"normalize={text!r}: expected true/false or a mapping of VecNormalize arguments"
    try:
        node = ast.parse(text.strip(), mode="eval").body
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
            names = [keyword.arg for keyword in node.keywords]
            if None in names or len(set(names)) < len(names):  # dict(**x), or a name given twice (Python refuses it too)
                raise ValueError(problem)
            return {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        raise ValueError(problem) from None


def check_algo_fits(algo_class: type, env: Any) -> None:
    """On a ``VecNormalize`` training ``env``, refuse an off-policy algorithm on channel-last
    images left unscaled (``norm_obs: false``, rl-zoo3's setting for images): its replay buffer
    stores the normalizer's raw observations, still channel-last under the ``VecTransposeImage``
    SB3 puts on top, and the first transition fails to fit (SB3's own DQN and SAC alike). With ``norm_obs`` the normalizer's space is a
    float Box, no longer an image, and nothing is transposed.

    :param algo_class: the algorithm class.
    :param env: the training env (anything but a ``VecNormalize`` passes)."""
    from gymnasium import spaces
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(env, VecNormalize):
        return
    observation_space = env.observation_space
    subspaces = observation_space.spaces.values() if isinstance(observation_space, spaces.Dict) else [observation_space]
    if issubclass(algo_class, OffPolicyAlgorithm) and any(
        is_image_space(space) and not is_image_space_channels_first(space) for space in subspaces
    ):
        raise ValueError(
            f"normalize without norm_obs does not work with {algo_class.__name__} on channel-last images (SB3 stores the "
            "untransposed observations in the replay buffer); give the env channel-first observations, or drop normalize"
        )


STATS_SUFFIX = "_vecnormalize.npz"
LEGACY_STATS_SUFFIX = "_vecnormalize.pkl"  # pickled by VecNormalize.save, before the data-only format


def stats_path(model_path: str) -> str:
    """Where the statistics of the model saved at ``model_path`` go: ``<model>_vecnormalize.npz``
    (per model, as several models share ``models/``), a data-only file
    (:func:`~rl_diffcat.serialization.save_vec_normalize`)."""
    stem = model_path[:-4] if model_path.endswith(".zip") else model_path
    return f"{stem}{STATS_SUFFIX}"


def legacy_stats_path(path: str) -> str:
    """The pickle file that :func:`stats_path` named before the data-only format (``<model>_vecnormalize.pkl``).

    :param path: a model path, or the statistics path :func:`stats_path` gives for it.
    """
    stem = path[: -len(STATS_SUFFIX)] if path.endswith(STATS_SUFFIX) else stats_path(path)[: -len(STATS_SUFFIX)]
    return f"{stem}{LEGACY_STATS_SUFFIX}"


def wrap_training_env(venv: Any, kwargs: Dict[str, Any], stats: Optional[str] = None, trust_file: bool = False) -> Any:
    """``venv`` under a training ``VecNormalize``: fresh statistics, or those saved at ``stats``.

    :param venv: the vectorized training env.
    :param kwargs: ``VecNormalize`` arguments (:func:`normalize_kwargs`), for fresh statistics.
    :param stats: a statistics file (:func:`save_stats`), or None.
    :param trust_file: also read a pickled one (``VecNormalize.save``), which can run code.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    if stats is None:
        return VecNormalize(venv, **kwargs)
    normalizer = load_vec_normalize(stats, venv, trust_file)
    normalizer.training = True
    return normalizer


def make_eval_env(
    env_id: str,
    kwargs: Dict[str, Any],
    seed: int,
    stats: Optional[str] = None,
    wrapper: Optional[Callable[[Any], Any]] = None,
    trust_file: bool = False,
    **make_kwargs: Any,
) -> Any:
    """A one-env ``VecNormalize`` to evaluate on: it normalizes observations without updating its
    statistics and passes the ``Monitor``-ed env's rewards through unscaled.

    :param env_id: the env id.
    :param kwargs: the training normalizer's arguments (:func:`normalize_kwargs`).
    :param seed: seed of the first reset.
    :param stats: statistics saved by :func:`save_stats` (a trained model's); None: fresh ones,
        for an evaluation callback to overwrite from the training env (:func:`copy_stats`).
    :param wrapper: applied to the made env inside the ``Monitor`` (a video recorder, say).
    :param trust_file: also read pickled statistics (``VecNormalize.save``), which can run code.
    :param make_kwargs: passed on to ``gym.make`` (``render_mode``).
    """
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    def make_env() -> Any:
        env = gym.make(env_id, **make_kwargs)
        return Monitor(wrapper(env) if wrapper else env)

    venv = DummyVecEnv([make_env])
    venv.seed(seed)
    normalizer = VecNormalize(venv, **kwargs) if stats is None else load_vec_normalize(stats, venv, trust_file)
    normalizer.training = False
    normalizer.norm_reward = False
    return normalizer


def copy_stats(source: Any, target: Any) -> None:
    """Give the evaluation normalizer ``target`` the current observation statistics of ``source``
    (a normalizer with ``norm_obs=False`` keeps none)."""
    if hasattr(source, "obs_rms"):
        target.obs_rms = copy.deepcopy(source.obs_rms)


def save_stats(model: Any, path: str) -> Optional[str]:
    """Save ``model``'s normalizer statistics to ``path`` in the data-only format
    (:func:`~rl_diffcat.serialization.save_vec_normalize`). Without a normalizer nothing is written,
    and a file left at ``path`` by an earlier run is deleted: ``evaluate`` would apply it (so is a
    pickle file left beside it in the old format).

    :return: ``path``, or None when the model has no normalizer.
    """
    normalizer = model.get_vec_normalize_env()
    stale = [legacy_stats_path(path)] if path.endswith(STATS_SUFFIX) else []
    if normalizer is None:
        stale.append(path)
    for old in stale:
        if os.path.exists(old):
            os.remove(old)
    if normalizer is None:
        return None
    save_vec_normalize(normalizer, path)
    return path

"""Stop training at the first non-finite value instead of training on it.

One NaN reward or observation in the replay buffer turns every parameter of both SAC agents NaN
within a few updates, and ``predict`` then returns action 0 forever without a word. The checks
sit where values already reach the host, so they add no device sync: the env's data as each
transition is stored (numpy arrays), and the logged losses where ``train`` reads them back once
per call.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

HOW_TO_FIND = (
    "Find the env step that produces it with SB3's VecCheckNan (VecCheckNan(env, raise_exception=True)), "
    "or replace the value in a wrapper."
)


def nonfinite(value: Any) -> Optional[str]:
    """``"NaN"`` or ``"inf"`` when a float array (or a dict of them) holds such a value, else None.

    :param value: a number, a numpy array or a dict of arrays (``Dict`` observations).
    """
    if isinstance(value, Mapping):
        return next((found for found in map(nonfinite, value.values()) if found), None)
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating) or np.isfinite(array).all():
        return None
    return "NaN" if np.isnan(array).any() else "inf"


def _first_bad_env(value: Any, n_envs: int) -> int:
    """The index of the first env whose entry of ``value`` (batched over envs) is not finite."""
    for index in range(n_envs):
        entry = {key: item[index] for key, item in value.items()} if isinstance(value, Mapping) else np.asarray(value)[index]
        if nonfinite(entry):
            return index
    return 0


def check_transition(agent: str, step: int, new_obs: Any, rewards: np.ndarray, infos: List[Dict[str, Any]]) -> None:
    """Raise ``ValueError`` when an env returned a non-finite reward or observation, naming it and
    the step, before the transition reaches the replay buffer.

    :param agent: the agent's class name, for the message.
    :param step: the env step (``num_timesteps``) of the transition.
    :param new_obs: the observations the envs returned (batched over envs).
    :param rewards: the rewards the envs returned.
    :param infos: the envs' infos (``terminal_observation`` of the episodes that ended).
    """
    quantities = [("reward", rewards), ("observation", new_obs)]
    quantities += [("terminal observation", info["terminal_observation"]) for info in infos if "terminal_observation" in info]
    for name, value in quantities:
        found = nonfinite(value)
        if found:
            where = "" if name == "terminal observation" else f" (env {_first_bad_env(value, len(infos))} of the VecEnv)"
            raise ValueError(
                f"{agent}: the env returned a {found} {name} at env step {step}{where}. It was not stored, and nothing "
                f"was trained on it: one such value in the replay buffer turns every network parameter NaN. {HOW_TO_FIND}"
            )


def check_first_observation(agent: str, observation: Any) -> None:
    """Raise ``ValueError`` when the observation of the first reset is not finite."""
    found = nonfinite(observation)
    if found:
        raise ValueError(f"{agent}: the env's reset returned a {found} observation, before any training. {HOW_TO_FIND}")


def check_logged_means(agent: str, means: Mapping[str, float], n_updates: int, step: int) -> None:
    """Raise ``FloatingPointError`` when a logged training quantity (a loss, the entropy, the
    temperature) is not finite: the update diverged although the env's data were finite.

    :param agent: the agent's class name, for the message.
    :param means: the logged quantities, averaged over the ``train`` call.
    :param n_updates: gradient steps done so far, this call's included.
    :param step: env steps done so far.
    """
    bad = [name for name, value in means.items() if not math.isfinite(value)]
    if bad:
        raise FloatingPointError(
            f"{agent}: train/{', train/'.join(bad)} became non-finite by gradient step {n_updates} (env step {step}), "
            "so the networks' parameters are no longer finite. The env's rewards and observations were finite (they "
            "are checked as they are stored): the update itself diverged. Resume from an earlier checkpoint with a "
            "smaller learning_rate, or set max_grad_norm."
        )

"""Invalid-action masks for the categorical SAC agents, in sb3-contrib's convention.

An env that masks actions has a method ``action_masks()`` returning a bool array of width
``sum(K_i)``: the factors' masks concatenated (``n`` for ``Discrete(n)``, ``sum(nvec)`` for
``MultiDiscrete``, ``2 n`` for ``MultiBinary(n)``), True = valid. That is the layout of the
agents' one-hot actions, so a mask lines up with the logits it masks.

The replay buffers here keep the masks of ``s`` and ``s'`` next to each transition: the actor is
trained on ``pi(.|s)`` restricted to the actions valid in ``s``, and the critic's target averages
over the actions valid in ``s'`` (with n-step returns, in the state the return bootstraps from).
:class:`ActionMasksMixin` is what the agents change in SB3's rollouts to collect them.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from rl_diffcat.agents.common.action_spaces import action_dims


def masks_supported(env: Optional[VecEnv]) -> bool:
    """Whether every env of ``env`` has an ``action_masks()`` method (looked up through wrappers).

    ``has_attr``, not ``get_attr``: a ``SubprocVecEnv`` worker asked for a missing attribute dies
    (the parent sees ``EOFError``), and a present one would be pickled back whole.
    """
    return env is not None and env.has_attr("action_masks")


def check_masks(masks: Any, widths: List[int], batch: int, where: str) -> np.ndarray:
    """``masks`` as a bool array ``(batch, sum(widths))``, or a ValueError saying what is wrong.

    :param masks: masks of ``batch`` observations (any array-like; one row per observation).
    :param widths: the factor sizes ``K_i``.
    :param batch: number of observations.
    :param where: who gave the masks, for the message.
    """
    array = np.asarray(masks)
    width = sum(widths)
    if array.size != batch * width:
        raise ValueError(
            f"{where} gave action masks of shape {array.shape}; expected {batch} x {width} "
            f"(one bool per action of each factor, factors of sizes {widths} concatenated)"
        )
    array = array.reshape(batch, width).astype(bool)
    starts = np.cumsum([0] + list(widths[:-1]))
    empty = (np.add.reduceat(array, starts, axis=1) == 0).any(axis=0)  # per factor: some row allows nothing
    if empty.any():
        factor = int(np.flatnonzero(empty)[0])
        first = int(starts[factor])
        raise ValueError(
            f"{where} gave an action mask that rules out every action of a factor (columns {first}..{first + widths[factor] - 1})"
        )
    return array


def env_masks(env: VecEnv, widths: List[int]) -> np.ndarray:
    """The current masks of every env of ``env``, ``(n_envs, sum(K_i))`` bools."""
    return check_masks(np.stack(env.env_method("action_masks")), widths, env.num_envs, "env.action_masks()")


def sample_valid(masks: np.ndarray, widths: List[int], rng: np.random.Generator) -> np.ndarray:
    """Uniformly random valid action indices ``(batch, n_factors)``: the warm-up's random actions."""
    factors = []
    start = 0
    for k in widths:
        part = masks[:, start : start + k]
        # a uniform draw among the valid columns of each row: the largest of (uniform noise on valid, -1 elsewhere)
        factors.append(np.where(part, rng.random(part.shape), -1.0).argmax(axis=1))
        start += k
    return np.stack(factors, axis=1)


def log_valid_counts(masks: th.Tensor, widths: List[int]) -> th.Tensor:
    """``sum_i log(number of valid actions of factor i)`` per row: the entropy of the uniform
    policy over the valid actions, the most a masked policy can reach."""
    counts = [part.sum(-1).clamp_min(1).float().log() for part in th.split(masks, widths, dim=-1)]
    return th.stack(counts, dim=-1).sum(-1)


class MaskedReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` with the masks of ``s`` and ``s'``."""

    observations: Any
    actions: th.Tensor
    next_observations: Any
    dones: th.Tensor
    rewards: th.Tensor
    discounts: Optional[th.Tensor]
    action_masks: th.Tensor
    next_action_masks: th.Tensor


class _MaskStore:
    """What the two masked buffers add to SB3's: the mask arrays, filled by :meth:`store_masks`
    just before SB3's ``add`` writes the rest of the transition at the same position."""

    buffer_size: int
    n_envs: int
    pos: int

    def _init_masks(self, action_space: spaces.Space) -> None:
        self.mask_widths = action_dims(action_space)
        shape = (self.buffer_size, self.n_envs, sum(self.mask_widths))
        self.action_masks = np.ones(shape, dtype=bool)
        self.next_action_masks = np.ones(shape, dtype=bool)

    def store_masks(self, masks: np.ndarray, next_masks: np.ndarray) -> None:
        """Masks of the transition SB3's next ``add`` stores: of ``s`` and of ``s'``, ``(n_envs, sum(K_i))``."""
        self.action_masks[self.pos] = masks
        self.next_action_masks[self.pos] = next_masks

    def _sample_env_indices(self, batch_inds: np.ndarray) -> np.ndarray:
        return np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))


class MaskedReplayBuffer(_MaskStore, ReplayBuffer):
    """SB3's ``ReplayBuffer`` that also returns the action masks of ``s`` and ``s'``."""

    def __init__(self, buffer_size: int, observation_space: spaces.Space, action_space: spaces.Space, *args: Any, **kwargs: Any) -> None:
        super().__init__(buffer_size, observation_space, action_space, *args, **kwargs)
        if self.optimize_memory_usage:
            raise ValueError("action masks need optimize_memory_usage=False (the next observation's mask is stored apart)")
        self._init_masks(action_space)

    def _get_samples(self, batch_inds: np.ndarray, env: Optional[VecNormalize] = None) -> MaskedReplayBufferSamples:  # type: ignore[override]
        envs = self._sample_env_indices(batch_inds)
        data = (
            self._normalize_obs(self.observations[batch_inds, envs, :], env),
            self.actions[batch_inds, envs, :],
            self._normalize_obs(self.next_observations[batch_inds, envs, :], env),
            # a time-limit cut is not a terminal state: its target still bootstraps
            (self.dones[batch_inds, envs] * (1 - self.timeouts[batch_inds, envs])).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, envs].reshape(-1, 1), env),
        )
        masks = (self.action_masks[batch_inds, envs], self.next_action_masks[batch_inds, envs])
        return MaskedReplayBufferSamples(*map(self.to_torch, data), None, *(th.as_tensor(m, device=self.device) for m in masks))


class MaskedDictReplayBuffer(_MaskStore, DictReplayBuffer):
    """SB3's ``DictReplayBuffer`` (dict observations) that also returns the action masks of ``s`` and ``s'``."""

    def __init__(self, buffer_size: int, observation_space: spaces.Dict, action_space: spaces.Space, *args: Any, **kwargs: Any) -> None:
        super().__init__(buffer_size, observation_space, action_space, *args, **kwargs)
        self._init_masks(action_space)

    def _get_samples(self, batch_inds: np.ndarray, env: Optional[VecNormalize] = None) -> MaskedReplayBufferSamples:  # type: ignore[override]
        envs = self._sample_env_indices(batch_inds)

        def observations(stored: Dict[str, np.ndarray]) -> Dict[str, th.Tensor]:
            normalized = self._normalize_obs({key: obs[batch_inds, envs, :] for key, obs in stored.items()}, env)
            return {key: self.to_torch(obs) for key, obs in normalized.items()}  # type: ignore[union-attr]

        dones = (self.dones[batch_inds, envs] * (1 - self.timeouts[batch_inds, envs])).reshape(-1, 1)
        return MaskedReplayBufferSamples(
            observations=observations(self.observations),
            actions=self.to_torch(self.actions[batch_inds, envs]),
            next_observations=observations(self.next_observations),
            dones=self.to_torch(dones),
            rewards=self.to_torch(self._normalize_reward(self.rewards[batch_inds, envs].reshape(-1, 1), env)),
            discounts=None,
            action_masks=th.as_tensor(self.action_masks[batch_inds, envs], device=self.device),
            next_action_masks=th.as_tensor(self.next_action_masks[batch_inds, envs], device=self.device),
        )


class MaskedNStepReplayBuffer(_MaskStore, NStepReplayBuffer):
    """SB3's ``NStepReplayBuffer`` that also returns the masks of ``s`` and of the state the n-step
    return bootstraps from.

    SB3's sampler does not say where each n-step return stops, and the mask must come from there,
    so the return is computed here by the same rule: it sums the rewards of up to ``n_steps``
    transitions and stops at the first episode end (terminal or time limit) or at the newest
    transition in the buffer, whose successor is not stored yet. ``tests/test_agents_action_masks.py``
    checks it against SB3's buffer on the same data.
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Space, action_space: spaces.Space, *args: Any, **kwargs: Any) -> None:
        super().__init__(buffer_size, observation_space, action_space, *args, **kwargs)
        self._init_masks(action_space)

    def _get_samples(self, batch_inds: np.ndarray, env: Optional[VecNormalize] = None) -> MaskedReplayBufferSamples:  # type: ignore[override]
        envs = self._sample_env_indices(batch_inds)
        offsets = np.arange(self.n_steps)
        rows = (batch_inds[:, None] + offsets) % self.buffer_size  # (batch, n_steps): the transitions summed
        cols = envs[:, None]
        stops = np.logical_or(self.dones[rows, cols], self.timeouts[rows, cols])
        stops |= rows == (self.pos - 1) % self.buffer_size
        last = np.where(stops.any(axis=1), stops.argmax(axis=1), self.n_steps - 1)  # offset of the last one
        summed = offsets <= last[:, None]
        weights = (self.gamma ** offsets.astype(np.float32)) * summed
        returns = (self._normalize_reward(self.rewards[rows, cols], env) * weights).sum(axis=1, keepdims=True)
        discounts = (self.gamma ** (last + 1).astype(np.float32)).reshape(-1, 1)
        ends = (batch_inds + last) % self.buffer_size
        # a time-limit cut is not a terminal state: its target still bootstraps
        dones = (self.dones[ends, envs] * (1 - self.timeouts[ends, envs])).reshape(-1, 1)
        data = (
            self._normalize_obs(self.observations[batch_inds, envs, :], env),
            self.actions[batch_inds, envs, :],
            self._normalize_obs(self.next_observations[ends, envs, :], env),
            dones,
            returns,
            discounts,
        )
        masks = (self.action_masks[batch_inds, envs], self.next_action_masks[ends, envs])
        return MaskedReplayBufferSamples(*map(self.to_torch, data), *(th.as_tensor(m, device=self.device) for m in masks))


def masked_buffer_class(observation_space: spaces.Space, given: Optional[type], n_steps: int = 1) -> type:
    """The buffer class of a masked agent: ours, or a ``replay_buffer_class`` the user gave that already
    stores masks (and, with ``n_steps > 1``, computes n-step returns)."""
    if given is None:
        if n_steps > 1:  # Box observations: the agent refuses n-step returns with Dict ones
            return MaskedNStepReplayBuffer
        return MaskedDictReplayBuffer if isinstance(observation_space, spaces.Dict) else MaskedReplayBuffer
    if not issubclass(given, _MaskStore):
        raise ValueError(
            f"replay_buffer_class={given.__name__} does not store action masks; with action masks leave it out "
            "(the agent uses MaskedReplayBuffer, MaskedNStepReplayBuffer or MaskedDictReplayBuffer)"
        )
    if n_steps > 1 and not issubclass(given, NStepReplayBuffer):
        raise ValueError(f"replay_buffer_class={given.__name__} has no n-step returns; with n_steps > 1 leave it out")
    return given



class ActionMasksMixin:
    """What a masked agent changes in SB3's off-policy rollouts (mixed in before
    ``OffPolicyAlgorithm``): warm-up and policy actions among the valid ones, the masks of ``s``
    and ``s'`` handed to the buffer with each transition, ``predict``'s ``action_masks``, and an
    env without masks refused early. Off when ``use_action_masks`` is False."""

    use_action_masks: Optional[bool]
    action_dims: List[int]
    env: Optional[VecEnv]
    _last_action_masks: Optional[np.ndarray]
    _warned_predict_without_masks: bool

    def _setup_action_masks(self) -> None:
        """Decide whether the agent masks actions (``use_action_masks=None``: when the env has
        ``action_masks()``; decided once, then saved) and pick the replay buffer that stores masks."""
        if self.use_action_masks is None:
            self.use_action_masks = masks_supported(self.env)
        if not self.use_action_masks:
            return
        self._check_env_has_masks(self.env)
        if self.optimize_memory_usage:
            raise ValueError("action masks need optimize_memory_usage=False (the next observation's mask is stored apart)")
        if self.cuda_graph:
            raise ValueError("action masks are not supported with cuda_graph=True yet: use cuda_graph=False")
        self.replay_buffer_class = masked_buffer_class(self.observation_space, self.replay_buffer_class, self.n_steps)
        if self.n_steps > 1:
            # what SB3 adds for its own NStepReplayBuffer, which it only picks when no class is given
            self.replay_buffer_kwargs.update({"n_steps": self.n_steps, "gamma": self.gamma})

    def _check_env_has_masks(self, env: Optional[VecEnv]) -> None:
        """Raise ``ValueError`` if this masked agent is given an env without ``action_masks()``."""
        if env is not None and not masks_supported(env):
            raise ValueError(
                "use_action_masks=True needs an env with an action_masks() method returning one bool per action "
                "(sb3-contrib's convention); this env has none"
            )

    def _sample_action(self, learning_starts: int, action_noise: Any = None, n_envs: int = 1) -> Tuple[np.ndarray, np.ndarray]:
        """SB3's exploration step; with action masks, warm-up and policy actions are drawn among
        the valid actions of each env, and the masks are kept for the transition being stored."""
        if not self.use_action_masks:
            return super()._sample_action(learning_starts, action_noise, n_envs)  # type: ignore[misc]
        if self._last_action_masks is None:  # set by _store_transition for the observation after a step
            self._last_action_masks = env_masks(self.env, self.action_dims)
        masks = self._last_action_masks
        if self.num_timesteps < learning_starts:
            action = sample_valid(masks, self.action_dims, self.action_space.np_random)
            action = action.reshape((n_envs, *self.action_space.shape)).astype(self.action_space.dtype)
        else:
            action, _ = self.predict(self._last_obs, deterministic=False, action_masks=masks)
        return action, action

    def set_env(self, env: Any, force_reset: bool = True) -> None:
        """SB3's ``set_env``; a masked agent refuses an env without masks here, not deep in ``learn``."""
        env = self._wrap_env(env, self.verbose)
        if self.use_action_masks:
            self._check_env_has_masks(env)
        super().set_env(env, force_reset)  # type: ignore[misc]

    def _store_transition(
        self, replay_buffer: Any, buffer_action: np.ndarray, new_obs: Any, reward: np.ndarray, dones: np.ndarray, infos: List[Dict[str, Any]]
    ) -> None:
        """SB3's ``_store_transition``; with action masks it first hands the buffer the masks of
        ``s`` and ``s'``. The env has already reset after an episode's last step, so the mask of
        its last observation is read from ``info["action_masks"]`` (see
        :class:`~rl_diffcat.envs.ActionMasksInInfo`); where the env does not report it, every
        action counts as valid there: a terminated episode's target does not use it, but a
        time-limit cut bootstraps from the unmasked policy at that observation."""
        if self.use_action_masks:
            current = env_masks(self.env, self.action_dims)  # of new_obs: after a reset, of the new episode
            next_masks = current.copy()
            for env_index in np.flatnonzero(dones):
                last = infos[env_index].get("action_masks")
                # Only a time-limit cut bootstraps from its last observation. A real terminal state
                # may rule out every action (game over); its mask is never read, so all-valid is
                # stored (an all-False row would turn the ignored target into NaN).
                cut = infos[env_index].get("TimeLimit.truncated", False)
                next_masks[env_index] = True if last is None or not cut else check_masks(last, self.action_dims, 1, 'info["action_masks"]')[0]
            replay_buffer.store_masks(self._last_action_masks, next_masks)
            self._last_action_masks = current  # the next _sample_action acts on new_obs
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)  # type: ignore[misc]

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Tuple[int, Any]:
        """SB3's ``_setup_learn``; the masks kept for the last observation are dropped, as it may
        have reset the env (or ``set_env`` changed it)."""
        self._last_action_masks = None
        return super()._setup_learn(*args, **kwargs)  # type: ignore[misc]

    def predict(
        self,
        observation: Union[np.ndarray, Dict[str, np.ndarray]],
        state: Optional[Tuple[np.ndarray, ...]] = None,
        episode_start: Optional[np.ndarray] = None,
        deterministic: bool = False,
        action_masks: Optional[np.ndarray] = None,
    ) -> Tuple[np.ndarray, Optional[Tuple[np.ndarray, ...]]]:
        """SB3's ``predict``, plus sb3-contrib's ``action_masks`` (bools ``(n_obs, sum(K_i))``, False
        = never chosen), so sb3-contrib's maskable ``evaluate_policy`` works as with MaskablePPO.
        A masked agent asked without masks (SB3's ``evaluate_policy`` or ``EvalCallback`` ask so)
        acts on every action, as MaskablePPO does; it warns once."""
        if self.use_action_masks and action_masks is None and not self._warned_predict_without_masks:
            self._warned_predict_without_masks = True
            warnings.warn(
                f"{type(self).__name__} was trained with action masks, but predict() got none, so it may choose "
                "masked actions. Pass action_masks= (sb3-contrib's maskable evaluate_policy and MaskableEvalCallback "
                "do; SB3's evaluate_policy and EvalCallback do not).",
                UserWarning,
                stacklevel=2,
            )
        return self.policy.predict(observation, state, episode_start, deterministic, action_masks=action_masks)

    def _excluded_save_params(self) -> List[str]:
        # the masks of the last observation and the warning are per run
        return super()._excluded_save_params() + ["_last_action_masks", "_warned_predict_without_masks"]  # type: ignore[misc]

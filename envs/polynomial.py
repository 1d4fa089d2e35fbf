"""Polynomial programming: a one-step combinatorial task with a known optimum.

From the ReDGE paper's benchmarks: choose ``D`` binary decisions ``x`` to minimise
``||x - c||_p^p / D``. There are ``2^D`` joint actions, so a per-action Q head grows
exponentially while a factorised policy stays linear in ``D``. The optimum is known in
closed form, so an agent's regret can be measured exactly.

Here the target ``c`` is drawn uniformly in ``(0, 1)^D`` at every reset and shown as the
observation (a contextual bandit); pass ``target=0.45`` for the paper's fixed target.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rl_diffcat.validation import is_number


class PolynomialProgramming(gym.Env):
    """Contextual one-step task: reward ``-||x - c||_p^p / D`` for binary ``x``.

    Observation: the target ``c`` (float32, shape ``(D,)``). Action: ``MultiDiscrete([2] * D)``.
    Every episode is one step; ``info["optimal_reward"]`` (at reset and step) and
    ``info["regret"]`` (at step) give the exact optimum and the gap to it.

    The optimum decouples over coordinates: ``|x_d - c_d|^p`` is smallest at ``x_d = 1``
    when ``c_d > 0.5`` and at ``x_d = 0`` otherwise (any ``p > 0``).

    :param n_vars: number of binary decisions ``D``
    :param p: exponent of the distance (> 0); the paper uses 2
    :param target: fixed target in ``[0, 1]`` for every coordinate and episode, or
        ``None`` to draw ``c ~ U(0, 1)^D`` at every reset
    :param render_mode: ``None`` or ``"rgb_array"``: a gray row for ``c`` above a black/white
        row for the last action, 8 pixels per cell (SB3's ``make_vec_env`` asks for it by default)
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(
        self,
        n_vars: int = 8,
        p: float = 2.0,
        target: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(n_vars, bool) or not isinstance(n_vars, (int, np.integer)) or n_vars < 1:
            raise ValueError(f"n_vars must be a positive integer, got {n_vars!r}.")
        if not p > 0:
            raise ValueError(f"p must be > 0 so that the distance has a unique per-coordinate optimum, got {p!r}.")
        if target is not None and not 0.0 <= target <= 1.0:
            raise ValueError(f"target must lie in [0, 1] (or be None for a random target per episode), got {target!r}.")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}.")
        self.n_vars = int(n_vars)
        self.p = float(p)
        self.target = target
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.n_vars,), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete(np.full(self.n_vars, 2, dtype=np.int64))
        self._context = np.full(self.n_vars, 0.5, dtype=np.float32)
        self._last_action = np.zeros(self.n_vars)

    @property
    def context(self) -> np.ndarray:
        """The current target ``c`` (a copy), exactly as the agent observes it."""
        return self._context.copy()

    def reward(self, action: Any) -> float:
        """Reward of a joint action for the current target: ``-sum_d |x_d - c_d|^p / D``.

        :param action: array of ``D`` entries in ``{0, 1}``
        """
        x = np.asarray(action, dtype=np.float64).reshape(-1)
        if x.shape != (self.n_vars,) or not np.all((x == 0) | (x == 1)):
            raise ValueError(f"Expected {self.n_vars} binary decisions in {{0, 1}}, got {np.asarray(action)!r}.")
        c = self._context.astype(np.float64)
        return float(-np.sum(np.abs(x - c) ** self.p) / self.n_vars)

    def optimal_action(self) -> np.ndarray:
        """A maximiser of :meth:`reward` for the current target: ``x_d = 1`` iff ``c_d > 0.5``."""
        return (self._context > 0.5).astype(np.int64)

    def optimal_reward(self) -> float:
        """The best reward reachable for the current target: ``-sum_d min(c_d, 1 - c_d)^p / D``."""
        return self.reward(self.optimal_action())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.target is None:
            self._context = self.np_random.uniform(0.0, 1.0, size=self.n_vars).astype(np.float32)
        else:
            self._context = np.full(self.n_vars, self.target, dtype=np.float32)
        return self.context, {"optimal_reward": self.optimal_reward()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward = self.reward(action)
        self._last_action = np.asarray(action, dtype=np.float64).reshape(-1)
        best = self.optimal_reward()
        info = {"optimal_reward": best, "regret": best - reward}
        # One decision per episode: the episode ends here; the observation is unchanged.
        return self.context, reward, True, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        rows = np.stack([self._context, self._last_action])
        pixels = np.kron(rows, np.ones((8, 8)))
        return np.repeat((pixels * 255).astype(np.uint8)[..., None], 3, axis=-1)


class MaskedPolynomialProgramming(PolynomialProgramming):
    """Polynomial programming in which some decisions are fixed in each episode, with the
    invalid values masked: sb3-contrib's ``action_masks()``, which DiffCatSAC and DiscreteSAC read.

    At every reset each decision is fixed with probability ``fixed_fraction`` to a random value in
    ``{0, 1}``. ``action_masks()`` returns ``2 D`` bools (decision ``d``'s two values at ``2d`` and
    ``2d + 1``; a fixed decision allows only its value). The observation is the target ``c`` as
    before; the optimum takes the fixed values and the best free ones. An action that breaks a
    fixed decision earns -1, the worst reward of the task, and ``info["broken_decisions"]`` counts
    the decisions it broke. Which decisions are fixed is not in the observation, so an agent that
    ignores the masks (PPO, say) cannot avoid the penalty: whatever it plays, it breaks one in
    ``1 - 0.875^D`` of the episodes at ``fixed_fraction=0.25`` (0.88 at ``D = 16``).

    :param n_vars: number of binary decisions ``D``
    :param p: exponent of the distance (> 0)
    :param target: fixed target in ``[0, 1]``, or ``None`` for ``c ~ U(0, 1)^D`` per episode
    :param fixed_fraction: probability in ``[0, 1)`` that a decision is fixed in an episode
    :param render_mode: ``None`` or ``"rgb_array"``
    """

    def __init__(
        self,
        n_vars: int = 8,
        p: float = 2.0,
        target: float | None = None,
        fixed_fraction: float = 0.25,
        render_mode: str | None = None,
    ) -> None:
        if not is_number(fixed_fraction) or not 0.0 <= fixed_fraction < 1.0:
            raise ValueError(f"fixed_fraction must be a probability in [0, 1), got {fixed_fraction!r}.")
        super().__init__(n_vars=n_vars, p=p, target=target, render_mode=render_mode)
        self.fixed_fraction = float(fixed_fraction)
        self._fixed = np.zeros(self.n_vars, dtype=bool)
        self._fixed_values = np.zeros(self.n_vars, dtype=np.int64)

    def action_masks(self) -> np.ndarray:
        """Valid values of every decision, ``(2 D,)`` bools: ``[x_0 = 0, x_0 = 1, x_1 = 0, ...]``."""
        allowed = np.ones((self.n_vars, 2), dtype=bool)
        allowed[self._fixed, 1 - self._fixed_values[self._fixed]] = False
        return allowed.reshape(-1)

    def optimal_action(self) -> np.ndarray:
        """The best action that keeps the fixed decisions: ``x_d = 1`` iff ``c_d > 0.5`` for the free ones."""
        return np.where(self._fixed, self._fixed_values, super().optimal_action())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        observation, _ = super().reset(seed=seed, options=options)
        self._fixed = self.np_random.random(self.n_vars) < self.fixed_fraction
        self._fixed_values = self.np_random.integers(0, 2, size=self.n_vars)
        return observation, {"optimal_reward": self.optimal_reward()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = super().step(action)
        broken = np.flatnonzero(self._fixed & (np.asarray(action).reshape(-1) != self._fixed_values))
        if broken.size:  # the worst reward of the task: |x_d - c_d|^p <= 1 for every d
            reward = -1.0
            info["regret"] = info["optimal_reward"] - reward
        info["broken_decisions"] = int(broken.size)
        return observation, reward, terminated, truncated, info

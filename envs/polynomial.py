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

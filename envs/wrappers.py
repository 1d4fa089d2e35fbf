"""Turn a continuous (``Box``) action space into a combinatorial discrete one.

Each action dimension gets ``bins`` evenly spaced values between its bounds, so an
agent picks one bin per dimension: a ``MultiDiscrete([bins] * dim)`` action with
``bins ** dim`` joint actions (HalfCheetah, 11 bins: 11^6 = 1.77M). That is far too
many to enumerate with a per-action Q head, which is what makes these tasks a test
bed for pathwise gradients through factorised categorical policies.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DiscretizeAction(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Expose a ``Box`` action space as ``MultiDiscrete([bins] * dim)``.

    Bin ``i`` of dimension ``d`` maps to ``low[d] + i * (high[d] - low[d]) / (bins - 1)``,
    so bin 0 is the lower bound and bin ``bins - 1`` the upper bound. A ``Box`` of any
    shape is flattened to ``dim = prod(shape)`` factors and reshaped back on the way out.

    :param env: environment with a bounded ``Box`` action space
    :param bins: number of values per action dimension (at least 2)
    """

    def __init__(self, env: gym.Env, bins: int = 11) -> None:
        box = env.action_space
        if not isinstance(box, spaces.Box):
            raise ValueError(
                f"DiscretizeAction needs a Box action space, got {box!r}; "
                "the environment's actions are already discrete, use it as it is."
            )
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
            raise ValueError(f"bins must be an integer >= 2 (bin 0 = low, last bin = high), got {bins!r}.")
        low = box.low.astype(np.float64).reshape(-1)
        high = box.high.astype(np.float64).reshape(-1)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(
                f"DiscretizeAction needs finite action bounds, got low={box.low}, high={box.high}; "
                "clip the action space first (e.g. gymnasium.wrappers.ClipAction after rescaling)."
            )
        gym.utils.RecordConstructorArgs.__init__(self, bins=int(bins))
        gym.ActionWrapper.__init__(self, env)

        self.bins = int(bins)
        self._box = box
        self._low, self._high = low, high
        # bin_values[d, i]: the continuous value of bin i in dimension d.
        self.bin_values = np.linspace(low, high, self.bins, axis=1)
        self.action_space = spaces.MultiDiscrete(np.full(low.size, self.bins, dtype=np.int64))

    @property
    def n_joint_actions(self) -> int:
        """Number of joint discrete actions, ``bins ** dim`` (a Python int, it can be huge)."""
        return self.bins ** len(self._low)

    def action(self, action: Any) -> np.ndarray:
        """Map bin indices (one per dimension) to the continuous action of the wrapped env.

        :param action: integer array of shape ``(dim,)`` with entries in ``[0, bins)``
        :return: continuous action with the wrapped space's shape and dtype
        """
        idx = np.asarray(action).reshape(-1).astype(np.int64)
        if idx.shape != self._low.shape or np.any(idx < 0) or np.any(idx >= self.bins):
            raise ValueError(
                f"Expected {self._low.size} bin indices in [0, {self.bins}), got {np.asarray(action)!r}."
            )
        values = self.bin_values[np.arange(idx.size), idx]
        return values.reshape(self._box.shape).astype(self._box.dtype)

    def to_bins(self, action: Any) -> np.ndarray:
        """Nearest bin index of each dimension of a continuous action (the inverse of :meth:`action`).

        Values outside the bounds are clipped to the first or last bin. Useful to turn
        continuous demonstrations or a continuous policy's output into discrete actions.

        :param action: continuous action with the wrapped space's shape
        :return: int64 array of shape ``(dim,)``
        """
        values = np.asarray(action, dtype=np.float64).reshape(-1)
        span = self._high - self._low
        # A dimension with low == high has a single value: every bin maps to it, call it bin 0.
        safe_span = np.where(span > 0, span, 1.0)
        scaled = np.where(span > 0, (values - self._low) / safe_span * (self.bins - 1), 0.0)
        return np.clip(np.rint(scaled), 0, self.bins - 1).astype(np.int64)

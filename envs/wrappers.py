"""Turn a continuous (``Box``) action space into a combinatorial discrete one.

Each action dimension gets ``bins`` evenly spaced values between its bounds (or its own
count), so an agent picks one bin per dimension: a ``MultiDiscrete([bins] * dim)`` action
with ``bins ** dim`` joint actions (HalfCheetah, 11 bins: 11^6 = 1.77M). That is far too
many to enumerate with a per-action Q head, which is what makes these tasks a test
bed for pathwise gradients through factorised categorical policies.
"""

from __future__ import annotations

import math
from typing import Any, Sequence, Tuple, Union

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DiscretizeAction(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Expose a ``Box`` action space as ``MultiDiscrete(bins per dimension)``.

    Bin ``i`` of dimension ``d`` maps to ``low[d] + i * (high[d] - low[d]) / (bins[d] - 1)``,
    so bin 0 is the lower bound and the last bin the upper bound. A ``Box`` of any
    shape is flattened to ``dim = prod(shape)`` factors and reshaped back on the way out.

    :param env: environment with a bounded ``Box`` action space
    :param bins: number of values per action dimension (at least 2): one integer for every
        dimension, or one per dimension (a finer grid where precision matters, say)
    """

    def __init__(self, env: gym.Env, bins: Union[int, Sequence[int]] = 11) -> None:
        box = env.action_space
        if not isinstance(box, spaces.Box):
            raise ValueError(
                f"DiscretizeAction needs a Box action space, got {box!r}; "
                "the environment's actions are already discrete, use it as it is."
            )
        low = box.low.astype(np.float64).reshape(-1)
        high = box.high.astype(np.float64).reshape(-1)
        per_dimension = _bins_per_dimension(bins, low.size)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(
                f"DiscretizeAction needs finite action bounds, got low={box.low}, high={box.high}; "
                "clip the action space first (e.g. gymnasium.wrappers.ClipAction after rescaling)."
            )
        self.bins: Union[int, Tuple[int, ...]] = (
            int(bins) if isinstance(bins, (int, np.integer)) else tuple(int(n) for n in per_dimension)
        )
        gym.utils.RecordConstructorArgs.__init__(self, bins=self.bins)
        gym.ActionWrapper.__init__(self, env)

        self._box = box
        self._low, self._high = low, high
        self._n_bins = per_dimension
        # bin_values[d][i]: the continuous value of bin i in dimension d.
        self.bin_values: Tuple[np.ndarray, ...] = tuple(np.linspace(lo, hi, n) for lo, hi, n in zip(low, high, per_dimension))
        # The same values in one (dim, max bins) table, for a vectorised lookup in action().
        self._table = np.zeros((low.size, int(per_dimension.max(initial=1))))
        for d, values in enumerate(self.bin_values):
            self._table[d, : values.size] = values
        self.action_space = spaces.MultiDiscrete(per_dimension.copy())

    @property
    def n_joint_actions(self) -> int:
        """Number of joint discrete actions, the product of the bins (a Python int, it can be huge)."""
        return math.prod(int(n) for n in self._n_bins)

    def action(self, action: Any) -> np.ndarray:
        """Map bin indices (one per dimension) to the continuous action of the wrapped env.

        :param action: integer array of shape ``(dim,)`` with entry ``d`` in ``[0, bins[d])``
        :return: continuous action with the wrapped space's shape and dtype
        """
        idx = np.asarray(action).reshape(-1)
        if idx.dtype.kind == "f" and np.isfinite(idx).all() and (idx == np.floor(idx)).all():
            idx = idx.astype(np.int64)  # whole numbers in a float array; a fraction (2.7, -0.5) is refused, not truncated
        if idx.dtype.kind not in "iu" or idx.shape != self._low.shape or np.any(idx < 0) or np.any(idx >= self._n_bins):
            ranges = f"in [0, {self.bins})" if isinstance(self.bins, int) else f"with entry d in [0, bins[d]), bins={list(self.bins)}"
            raise ValueError(f"Expected {self._low.size} bin indices {ranges}, got {np.asarray(action)!r}.")
        values = self._table[np.arange(idx.size), idx]
        return values.reshape(self._box.shape).astype(self._box.dtype)

    def to_bins(self, action: Any) -> np.ndarray:
        """Nearest bin index of each dimension of a continuous action (the inverse of :meth:`action`).

        Values outside the bounds are clipped to the first or last bin. Useful to turn
        continuous demonstrations or a continuous policy's output into discrete actions.

        :param action: continuous action with the wrapped space's shape
        :return: int64 array of shape ``(dim,)``
        """
        values = np.asarray(action, dtype=np.float64).reshape(-1)
        if values.shape != self._low.shape or not np.isfinite(values).all():
            raise ValueError(f"Expected a finite continuous action of {self._low.size} values, got {np.asarray(action)!r}.")
        span = self._high - self._low
        last = self._n_bins - 1
        # A dimension with low == high has a single value: every bin maps to it, call it bin 0.
        safe_span = np.where(span > 0, span, 1.0)
        scaled = np.where(span > 0, (values - self._low) / safe_span * last, 0.0)
        return np.clip(np.rint(scaled), 0, last).astype(np.int64)


def _bins_per_dimension(bins: Any, dim: int) -> np.ndarray:
    """``bins`` (an int, or one int per dimension) as an int64 array of length ``dim``; every entry >= 2."""
    def is_int(value: Any) -> bool:
        return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))

    message = "bins must be an integer >= 2 (bin 0 = low, last bin = high), or one such integer per action dimension"
    if is_int(bins):
        if bins < 2:
            raise ValueError(f"{message}; got {bins!r}.")
        return np.full(dim, int(bins), dtype=np.int64)
    if isinstance(bins, (str, bytes)) or not isinstance(bins, (Sequence, np.ndarray)):
        raise ValueError(f"{message}; got {bins!r}.")
    values = list(np.asarray(bins).reshape(-1)) if isinstance(bins, np.ndarray) else list(bins)
    if len(values) != dim:
        raise ValueError(f"{message}: the action space has {dim} dimensions, got {len(values)} bin counts {bins!r}.")
    if not all(is_int(n) and n >= 2 for n in values):
        raise ValueError(f"{message}; got {bins!r}.")
    return np.asarray(values, dtype=np.int64)

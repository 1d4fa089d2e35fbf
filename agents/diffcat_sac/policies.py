"""DiffCatSAC policies: categorical actor + joint critics ``Q_i(s, one_hot(a))``."""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Tuple

import torch as th
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs

from rl_diffcat.agents.common.policies import CategoricalSACPolicy, TwinCritic
from rl_diffcat.agents.diffcat_sac.neighbours import neighbour_tables, neighbour_values


class OneHotCritic(TwinCritic):
    """Joint critic ``Q_i(s, a)`` taking the concatenated one-hot action as input.

    Its size grows with ``sum(K_i)``, not with the number of joint actions ``prod(K_i)``, which is
    what makes combinatorial (``MultiDiscrete``/``MultiBinary``) action spaces tractable.
    Arguments as in :class:`rl_diffcat.agents.common.policies.TwinCritic`.
    """

    #: Largest table of first-layer differences (rows of ``hidden`` floats) neighbour_values builds.
    max_pair_table_rows: ClassVar[int] = 16384
    #: Device types on which neighbour_values evaluates every column in one broadcast instead of
    #: ``a`` once plus its other neighbours: on a GPU this batch is launch-bound, not
    #: arithmetic-bound, so fewer kernels win (BENCHMARKS.md, "Neighbour values on the GPU").
    broadcast_device_types: ClassVar[Tuple[str, ...]] = ("cuda",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One factor (Discrete): a's row is one of the K anyway, so one broadcast over all columns.
        self.single_factor = len(self.action_dims) == 1
        self.pair_table = sum(k * (k - 1) for k in self.action_dims) <= self.max_pair_table_rows
        for name, table in neighbour_tables(self.action_dims, self.max_pair_table_rows).items():
            self.register_buffer(name, table, persistent=False)

    def q_net_dims(self, features_dim: int) -> Tuple[int, int]:
        return features_dim + sum(self.action_dims), 1

    def forward(self, obs: PyTorchObs, one_hot_actions: th.Tensor) -> Tuple[th.Tensor, ...]:
        """:return: one ``(batch, 1)`` Q-value tensor per critic."""
        q_input = th.cat([self.features(obs), one_hot_actions], dim=1)
        return tuple(q_net(q_input) for q_net in self.q_networks)

    def neighbour_values(
        self, obs: PyTorchObs, one_hot_actions: th.Tensor, matmul_dtype: Optional[th.dtype] = None
    ) -> Tuple[th.Tensor, ...]:
        """Q-values of the actions one factor away from ``one_hot_actions``, one ``(batch, sum(K_i))``
        tensor per critic: :func:`rl_diffcat.agents.diffcat_sac.neighbours.neighbour_values`."""
        return neighbour_values(self, obs, one_hot_actions, matmul_dtype)

    def all_actions(self, obs: PyTorchObs) -> Tuple[th.Tensor, ...]:
        """Q-values of every action of a single-factor space: one ``(batch, K)`` tensor per critic."""
        if len(self.action_dims) != 1:
            raise ValueError("all_actions enumerates a single Discrete factor only")
        features = self.features(obs)
        n = self.action_dims[0]
        eye = th.eye(n, device=features.device, dtype=features.dtype).expand(features.shape[0], n, n)
        q_input = th.cat([features.unsqueeze(1).expand(-1, n, -1), eye], dim=2)
        return tuple(q_net(q_input).squeeze(-1) for q_net in self.q_networks)


class DiffCatSACPolicy(CategoricalSACPolicy):
    """Actor ``pi(.|s)`` (one categorical per factor), twin joint critics ``Q_i(s, a)`` on the
    concatenated one-hot action, and their Polyak-averaged targets. Vector observations.
    Arguments as in :class:`rl_diffcat.agents.common.policies.CategoricalSACPolicy`."""

    critic_class = OneHotCritic


MlpPolicy = DiffCatSACPolicy


class CnnPolicy(DiffCatSACPolicy):
    """:class:`DiffCatSACPolicy` with SB3's NatureCNN for image observations."""

    default_features_extractor_class = NatureCNN


class MultiInputPolicy(DiffCatSACPolicy):
    """:class:`DiffCatSACPolicy` with SB3's CombinedExtractor for ``Dict`` observations."""

    default_features_extractor_class = CombinedExtractor

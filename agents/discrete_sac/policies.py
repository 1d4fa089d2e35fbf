"""DiscreteSAC policies: categorical actor + critics with one output per action ``Q_i(s, .)``."""

from __future__ import annotations

from typing import Tuple

import torch as th
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs

from rl_diffcat.agents.common.policies import CategoricalSACPolicy, TwinCritic


class ActionValueCritic(TwinCritic):
    """Critic with one output per action, ``Q_i(s, .)``, as in discrete SAC (single ``Discrete`` space).
    Arguments as in :class:`rl_diffcat.agents.common.policies.TwinCritic`."""

    def q_net_dims(self, features_dim: int) -> Tuple[int, int]:
        if len(self.action_dims) != 1:
            raise ValueError("ActionValueCritic needs a single Discrete action space")
        return features_dim, self.action_dims[0]

    def forward(self, obs: PyTorchObs) -> Tuple[th.Tensor, ...]:
        """:return: one ``(batch, K)`` Q-value tensor per critic."""
        features = self.features(obs)
        return tuple(q_net(features) for q_net in self.q_networks)


class DiscreteSACPolicy(CategoricalSACPolicy):
    """Actor ``pi(.|s)``, twin critics ``Q_i(s, .)`` with one output per action, and their targets.
    Vector observations. Arguments as in :class:`rl_diffcat.agents.common.policies.CategoricalSACPolicy`."""

    critic_class = ActionValueCritic


MlpPolicy = DiscreteSACPolicy


class CnnPolicy(DiscreteSACPolicy):
    """:class:`DiscreteSACPolicy` with SB3's NatureCNN for image observations."""

    default_features_extractor_class = NatureCNN


class MultiInputPolicy(DiscreteSACPolicy):
    """:class:`DiscreteSACPolicy` with SB3's CombinedExtractor for ``Dict`` observations."""

    default_features_extractor_class = CombinedExtractor

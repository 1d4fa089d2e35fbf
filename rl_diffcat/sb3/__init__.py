"""Stable-baselines3 glue: the diffusion-categorical distribution as a drop-in for SB3 policies.

``rl_diffcat.sb3.maskable`` holds the sb3-contrib ``MaskablePPO`` policies (optional extra).
"""

from rl_diffcat.sb3.distributions import (
    DiffCatDistributionMixin,
    DiffusionCategoricalDistribution,
    MultiDiffusionCategoricalDistribution,
    make_diffcat_distribution,
)
from rl_diffcat.sb3.policies import (
    DiffCatActorCriticCnnPolicy,
    DiffCatActorCriticPolicy,
    DiffCatCnnPolicy,
    DiffCatMlpPolicy,
    DiffCatMultiInputActorCriticPolicy,
    DiffCatMultiInputPolicy,
    DiffCatPolicyMixin,
)

__all__ = [
    "DiffCatActorCriticCnnPolicy",
    "DiffCatActorCriticPolicy",
    "DiffCatCnnPolicy",
    "DiffCatDistributionMixin",
    "DiffCatMlpPolicy",
    "DiffCatMultiInputActorCriticPolicy",
    "DiffCatMultiInputPolicy",
    "DiffCatPolicyMixin",
    "DiffusionCategoricalDistribution",
    "MultiDiffusionCategoricalDistribution",
    "make_diffcat_distribution",
]

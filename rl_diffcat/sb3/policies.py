"""Actor-critic policies that use the diffusion-categorical distributions: drop-ins for PPO/A2C.

SB3's ``ActorCriticPolicy`` builds its action distribution with ``make_proba_distribution``
and takes no distribution class argument (its ``dist_kwargs`` only configure gSDE), so the hook
is a subclass: :class:`DiffCatPolicyMixin` swaps the distribution right before the networks are
built and adds the sampler settings to the constructor, so they travel through
``policy_kwargs`` and are stored by ``model.save``::

    PPO(DiffCatActorCriticPolicy, env, policy_kwargs=dict(sampler="redge", n_steps=5, t_1=0.5))
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.policies import (
    ActorCriticCnnPolicy,
    ActorCriticPolicy,
    MultiInputActorCriticPolicy,
)
from stable_baselines3.common.type_aliases import Schedule

from rl_diffcat.sb3.distributions import make_diffcat_distribution


class DiffCatPolicyMixin:
    """Give an SB3 actor-critic policy class the diffusion-categorical action distribution.

    Put it first in the bases (``class P(DiffCatPolicyMixin, ActorCriticPolicy)``); the remaining
    constructor arguments are the base policy's.

    :param observation_space: observation space.
    :param action_space: ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` action space.
    :param lr_schedule: learning rate schedule.
    :param sampler: pathwise sampler of ``action_dist.rsample()`` (see ``rl_diffcat.samplers.SAMPLERS``).
    :param n_steps: ReDGE number of noise levels (>= 2).
    :param t_1: ReDGE stopping level in [1e-4, 0.9999).
    :param tau: temperature of ``gumbel_softmax``/``reinmax``/``reindge``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        *args: Any,
        sampler: str = "redge",
        n_steps: int = 5,
        t_1: float = 0.5,
        tau: float = 1.0,
        **kwargs: Any,
    ) -> None:
        # Fail on a bad space or sampler before SB3 builds (or asserts on) anything.
        make_diffcat_distribution(action_space, n_steps=n_steps, t_1=t_1, sampler=sampler, tau=tau)
        self.sampler_kwargs = dict(sampler=sampler, n_steps=n_steps, t_1=t_1, tau=tau)
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)  # type: ignore[call-arg]

    def _build(self, lr_schedule: Schedule) -> None:
        # The base __init__ has just set its own distribution; replace it before the action
        # layer is made from it (same layer shape as SB3's categorical, except MultiBinary: 2n).
        self.action_dist = make_diffcat_distribution(self.action_space, **self.sampler_kwargs)
        super()._build(lr_schedule)  # type: ignore[misc]

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(self.sampler_kwargs)
        return data


class DiffCatActorCriticPolicy(DiffCatPolicyMixin, ActorCriticPolicy):
    """SB3's ``ActorCriticPolicy`` (MLP features) with the diffusion-categorical distribution.

    Arguments: those of :class:`DiffCatPolicyMixin` followed by ``ActorCriticPolicy``'s.
    """


class DiffCatActorCriticCnnPolicy(DiffCatPolicyMixin, ActorCriticCnnPolicy):
    """SB3's ``ActorCriticCnnPolicy`` (NatureCNN features) with the diffusion-categorical distribution."""


class DiffCatMultiInputActorCriticPolicy(DiffCatPolicyMixin, MultiInputActorCriticPolicy):
    """SB3's ``MultiInputActorCriticPolicy`` (``Dict`` observations) with the diffusion-categorical distribution."""


DiffCatMlpPolicy = DiffCatActorCriticPolicy
DiffCatCnnPolicy = DiffCatActorCriticCnnPolicy
DiffCatMultiInputPolicy = DiffCatMultiInputActorCriticPolicy

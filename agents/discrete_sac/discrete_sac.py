"""DiscreteSAC: the standard discrete soft actor-critic (Christodoulou, 2019) as a baseline."""

from __future__ import annotations

from typing import Any, ClassVar, Dict, Optional, Tuple, Type, Union

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule

from rl_diffcat.agents.common.categorical_sac import CategoricalSAC
from rl_diffcat.agents.discrete_sac.policies import CnnPolicy, DiscreteSACPolicy, MlpPolicy, MultiInputPolicy



class DiscreteSAC(CategoricalSAC):
    """Discrete SAC (Christodoulou, 2019, arXiv 1910.07207) for a single ``Discrete`` action space.

    The critics output ``Q_i(s, .)`` for every action, so the value target, the actor loss and the
    temperature loss are exact expectations over actions: no sampler, no gradient estimator. The
    known stabilizers are options: the target entropy scale (0.89 of ``log K`` as in CleanRL),
    ``twin_q="mean"`` instead of the min of the twin critics, and bounded ``log(alpha)``.
    For ``MultiDiscrete``/``MultiBinary`` spaces (where ``Q(s, .)`` cannot be enumerated) use
    :class:`rl_diffcat.agents.DiffCatSAC`.

    :param policy: ``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy`` or a policy class.
    :param env: environment or its registered id.
    :param learning_rate: learning rate of actor, critics and temperature (or a schedule).
    :param target_entropy_scale: target entropy as a fraction in (0, 1] of ``log K``.
    :param ent_coef_bounds: ``(min, max)`` of the tuned temperature.
    :param kwargs: the other hyperparameters of :class:`rl_diffcat.agents.common.categorical_sac.CategoricalSAC`
        (``buffer_size``, ``batch_size``, ``tau``, ``gamma``, ``ent_coef``, ``twin_q``, ``policy_kwargs``, ...).
    """

    policy_aliases: ClassVar[Dict[str, Type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    supported_action_spaces = (spaces.Discrete,)
    policy: DiscreteSACPolicy

    def __init__(
        self,
        policy: Union[str, Type[DiscreteSACPolicy]],
        env: Union[GymEnv, str],
        learning_rate: Union[float, Schedule] = 3e-4,
        target_entropy_scale: float = 0.89,
        ent_coef_bounds: Tuple[float, float] = (1e-4, 1.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            target_entropy_scale=target_entropy_scale,
            ent_coef_bounds=ent_coef_bounds,
            **kwargs,
        )

    def critic_loss(
        self, replay_data: ReplayBufferSamples, discounts: Union[float, th.Tensor], alpha: th.Tensor
    ) -> Tuple[th.Tensor, th.Tensor]:
        """Critic target: ``y = r + gamma (1 - d) sum_a' pi(a'|s') [min_j Q'_j(s', a') - alpha log pi(a'|s')]``."""
        next_obs = replay_data.next_observations
        next_masks = getattr(replay_data, "next_action_masks", None)
        with th.no_grad():
            next_dist = self.actor.distribution(next_obs, mask=next_masks)
            next_q_all = self.reduce_twin(self.critic_target(next_obs))
            soft_q = next_q_all - alpha * _finite_log_probs(next_dist, next_masks) if self.backup_entropy else next_q_all
            next_v = (next_dist.probs * soft_q).sum(-1, keepdim=True)
            target_q = replay_data.rewards + (1 - replay_data.dones) * discounts * next_v
        actions = replay_data.actions.long().reshape(-1, 1)
        current_q = tuple(q.gather(1, actions) for q in self.critic(replay_data.observations))
        return self.td_loss(current_q, target_q), th.stack(current_q).mean().detach()

    def actor_loss(self, obs: Any, alpha: th.Tensor, mask: Optional[th.Tensor] = None) -> Tuple[th.Tensor, th.Tensor]:
        """``L = E_s[ sum_a pi(a|s) (alpha log pi(a|s) - min_i Q_i(s, a)) ]``, critics held fixed
        (the sum over the valid actions of ``mask``, when given)."""
        dist = self.actor.distribution(obs, mask=mask)
        with th.no_grad():
            q_all = self.reduce_twin(self.critic(obs))
        probs, log_probs = dist.probs, _finite_log_probs(dist, mask)
        loss = (probs * (alpha * log_probs - q_all)).sum(-1).mean()
        return loss, dist.entropy().mean().detach()


def _finite_log_probs(dist: Any, mask: Optional[th.Tensor]) -> th.Tensor:
    """``log pi``, with 0 instead of ``-inf`` at masked actions: their probability is 0, and
    ``0 * -inf`` would make the sums over actions NaN."""
    return dist.logits if mask is None else dist.logits.masked_fill(~mask, 0.0)

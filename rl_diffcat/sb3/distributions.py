"""SB3 ``Distribution`` classes backed by :class:`~rl_diffcat.distributions.DiffusionCategorical`.

They keep SB3's contract and conventions: actions are integer indices (``(batch,)`` for
``Discrete``, ``(batch, n_factors)`` for ``MultiDiscrete``/``MultiBinary``), and ``log_prob``,
``entropy``, ``sample`` and ``mode`` are the ones of the categorical law itself, so PPO/A2C see
exactly what SB3's ``CategoricalDistribution``/``MultiCategoricalDistribution`` give them
(``sample`` even draws with the same ``torch.multinomial`` call, so seeded runs match SB3's).
The sampler only enters the explicit reparameterized path, :meth:`rsample`: a hard one-hot whose
gradient flows through ReDGE (or another sampler of :data:`rl_diffcat.samplers.SAMPLERS`).

The classes subclass SB3's categorical distributions, so every SB3 policy code path that
dispatches on the distribution type (``ActorCriticPolicy._build`` and
``_get_action_dist_from_latent``) treats them as the categorical they replace. They also have
``apply_masking``, the hook sb3-contrib's ``MaskablePPO`` calls.
"""

from __future__ import annotations

from typing import Optional, TypeVar, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import CategoricalDistribution, MultiCategoricalDistribution
from torch.nn import functional as F

from rl_diffcat.distributions import DiffusionCategorical, MultiDiffusionCategorical, indices_to_one_hot
from rl_diffcat.samplers import checked_knobs

MaybeMasks = Union[th.Tensor, np.ndarray, None]
SelfDiffCatDistribution = TypeVar("SelfDiffCatDistribution", bound="DiffCatDistributionMixin")


def check_sampler_knobs(sampler: str, n_steps: int, t_1: float, tau: float) -> dict:
    """Validate the sampler settings now (not at the first ``rsample``) and return them as kwargs.

    The check itself is the samplers' (:func:`rl_diffcat.samplers.checked_knobs`, what
    ``make_sampler`` runs); this adds where the settings came from to its message.

    :param sampler: name in ``rl_diffcat.samplers.SAMPLERS``.
    :param n_steps: ReDGE number of noise levels (>= 2).
    :param t_1: ReDGE stopping level in [1e-4, 0.9999) (``rl_diffcat.samplers.MIN_T_1``).
    :param tau: temperature of ``gumbel_softmax``/``reinmax``/``reindge``.
    :raises ValueError: unknown sampler name (the message lists the valid ones) or a bad knob.
    """
    knobs = dict(sampler=sampler, n_steps=n_steps, t_1=t_1, tau=tau)
    try:
        checked_knobs(sampler, n_steps=n_steps, t_1=t_1, tau=tau)
    except ValueError as error:
        # PPO and A2C have an n_steps of their own (the rollout length): say which one was wrong
        raise ValueError(
            f"invalid sampler settings {knobs} (a policy takes them in policy_kwargs; their n_steps is the "
            f"sampler's number of noise levels, not PPO's rollout length): {error}"
        ) from None
    return knobs


def draw_categorical(probs: th.Tensor) -> th.Tensor:
    """Exact draw of indices from ``Cat(probs)`` along the last dim.

    The same ``torch.multinomial`` call as ``torch.distributions.Categorical.sample``, so with the
    same torch seed it returns the same actions as SB3's categorical distributions.

    :param probs: probabilities ``(..., K)``; zero entries are never drawn.
    :return: long indices ``(...)``.
    """
    with th.no_grad():
        index = th.multinomial(probs.reshape(-1, probs.shape[-1]), 1, True)
        return index.reshape(probs.shape[:-1])


class DiffCatDistributionMixin:
    """What the single- and multi-factor distributions share: masks, densities, ``rsample``.

    Subclasses define ``_make_distribution``, ``actions_to_one_hot``, ``one_hot_to_actions`` and
    ``sample``; everything else goes through the one-hot values of the torch distribution.
    """

    distribution: Union[DiffusionCategorical, MultiDiffusionCategorical]

    def _make_distribution(
        self, action_logits: th.Tensor, mask: Optional[th.Tensor]
    ) -> Union[DiffusionCategorical, MultiDiffusionCategorical]:
        raise NotImplementedError

    def actions_to_one_hot(self, actions: th.Tensor) -> th.Tensor:
        """Integer actions (SB3 layout) -> one-hot values of :attr:`distribution`."""
        raise NotImplementedError

    def one_hot_to_actions(self, one_hot: th.Tensor) -> th.Tensor:
        """One-hot values of :attr:`distribution` -> integer actions (SB3 layout)."""
        raise NotImplementedError

    def proba_distribution(
        self: SelfDiffCatDistribution, action_logits: th.Tensor, action_masks: MaybeMasks = None
    ) -> SelfDiffCatDistribution:
        """Set the logits (and optional action masks) of the distribution.

        :param action_logits: output of the ``proba_distribution_net`` layer, ``(batch, n_logits)``.
        :param action_masks: optional bool array/tensor with the logits' shape (True = valid).
        :return: self
        """
        self._action_logits = action_logits
        self.apply_masking(action_masks)
        return self

    def apply_masking(self, masks: MaybeMasks) -> None:
        """Give invalid actions zero probability (sb3-contrib's ``MaskablePPO`` hook).

        Masked actions are never sampled, not even by :meth:`rsample`, and get zero gradient.

        :param masks: bool array/tensor reshapeable to the logits' shape, False = invalid action;
            ``None`` removes any previous mask.
        """
        logits = self._action_logits
        mask = None
        if masks is not None:
            mask = th.as_tensor(masks, dtype=th.bool, device=logits.device)
            if mask.numel() != logits.numel():
                raise ValueError(
                    f"action masks of shape {tuple(mask.shape)} do not fit the action logits of shape "
                    f"{tuple(logits.shape)}: one bool per action (the factors' masks concatenated), per env"
                )
            mask = mask.reshape(logits.shape)
        self.distribution = self._make_distribution(logits, mask)

    def log_prob(self, actions: th.Tensor) -> th.Tensor:
        """Log-likelihood of integer ``actions`` (any float/int dtype), shape ``(batch,)``."""
        return self.distribution.log_prob(self.actions_to_one_hot(actions))

    def entropy(self) -> th.Tensor:
        """Shannon entropy of the categorical law (summed over factors), shape ``(batch,)``."""
        return self.distribution.entropy()

    def mode(self) -> th.Tensor:
        """The most likely action (argmax of the logits over valid actions)."""
        return self.one_hot_to_actions(self.distribution.mode)

    def rsample(self) -> th.Tensor:
        """Reparameterized sample: hard one-hot(s) whose gradient flows through the sampler.

        This is the path pathwise agents use; PPO/A2C never call it. Integer actions of the same
        sample are ``one_hot_to_actions(one_hot)``.

        :return: one-hot ``(batch, n_actions)`` (concatenated factors for multi-factor spaces).
        """
        return self.distribution.rsample()

    def actions_from_params(
        self, action_logits: th.Tensor, deterministic: bool = False, action_masks: MaybeMasks = None
    ) -> th.Tensor:
        """Set the parameters, then return :meth:`get_actions`."""
        self.proba_distribution(action_logits, action_masks)
        return self.get_actions(deterministic=deterministic)  # type: ignore[attr-defined]

    def log_prob_from_params(
        self, action_logits: th.Tensor, action_masks: MaybeMasks = None
    ) -> tuple[th.Tensor, th.Tensor]:
        """Sample actions from the given parameters and return them with their log-probability."""
        actions = self.actions_from_params(action_logits, action_masks=action_masks)
        return actions, self.log_prob(actions)


class DiffusionCategoricalDistribution(DiffCatDistributionMixin, CategoricalDistribution):
    """Drop-in for SB3's ``CategoricalDistribution`` (``Discrete`` action spaces).

    :param action_dim: number of discrete actions.
    :param n_steps: ReDGE number of noise levels (>= 2), used by :meth:`rsample` only.
    :param t_1: ReDGE stopping level in [1e-4, 0.9999), used by :meth:`rsample` only.
    :param sampler: pathwise sampler of :meth:`rsample`, a name in ``rl_diffcat.samplers.SAMPLERS``.
    :param tau: temperature of ``gumbel_softmax``/``reinmax``/``reindge``.
    """

    distribution: DiffusionCategorical

    def __init__(
        self, action_dim: int, n_steps: int = 5, t_1: float = 0.5, sampler: str = "redge", tau: float = 1.0
    ) -> None:
        super().__init__(int(action_dim))
        self.sampler_kwargs = check_sampler_knobs(sampler, n_steps, t_1, tau)

    def _make_distribution(self, action_logits: th.Tensor, mask: Optional[th.Tensor]) -> DiffusionCategorical:
        return DiffusionCategorical(logits=action_logits, mask=mask, **self.sampler_kwargs)

    def actions_to_one_hot(self, actions: th.Tensor) -> th.Tensor:
        return F.one_hot(actions.long(), self.action_dim).to(self.distribution.logits.dtype)

    def one_hot_to_actions(self, one_hot: th.Tensor) -> th.Tensor:
        return one_hot.argmax(-1)

    def sample(self) -> th.Tensor:
        """Exact categorical draw (no sampler involved), integer actions ``(batch,)``."""
        return draw_categorical(self.distribution.probs)


class MultiDiffusionCategoricalDistribution(DiffCatDistributionMixin, MultiCategoricalDistribution):
    """Drop-in for SB3's ``MultiCategoricalDistribution`` (``MultiDiscrete``, and ``MultiBinary``
    as factors of size 2).

    :param action_dims: sizes of the independent factors.
    :param n_steps: ReDGE number of noise levels (>= 2), used by :meth:`rsample` only.
    :param t_1: ReDGE stopping level in [1e-4, 0.9999), used by :meth:`rsample` only.
    :param sampler: pathwise sampler of :meth:`rsample`, a name in ``rl_diffcat.samplers.SAMPLERS``.
    :param tau: temperature of ``gumbel_softmax``/``reinmax``/``reindge``.
    """

    distribution: MultiDiffusionCategorical  # type: ignore[assignment]

    def __init__(
        self,
        action_dims: list[int],
        n_steps: int = 5,
        t_1: float = 0.5,
        sampler: str = "redge",
        tau: float = 1.0,
    ) -> None:
        super().__init__([int(k) for k in action_dims])
        self.sampler_kwargs = check_sampler_knobs(sampler, n_steps, t_1, tau)

    def _make_distribution(self, action_logits: th.Tensor, mask: Optional[th.Tensor]) -> MultiDiffusionCategorical:
        return MultiDiffusionCategorical(action_logits, self.action_dims, mask=mask, **self.sampler_kwargs)

    def actions_to_one_hot(self, actions: th.Tensor) -> th.Tensor:
        return indices_to_one_hot(actions, self.action_dims, dtype=self.distribution.blocks[0].logits.dtype)

    def one_hot_to_actions(self, one_hot: th.Tensor) -> th.Tensor:
        return self.distribution.to_indices(one_hot)

    def sample(self) -> th.Tensor:
        """Exact categorical draw per factor, integer actions ``(batch, n_factors)``."""
        # factor by factor, in the order of SB3's MultiCategoricalDistribution.sample (same seed, same actions)
        return th.stack([draw_categorical(p) for p in th.split(self.distribution.probs, self.action_dims, dim=-1)], dim=-1)


DiffCatDistribution = Union[DiffusionCategoricalDistribution, MultiDiffusionCategoricalDistribution]


def make_diffcat_distribution(
    action_space: spaces.Space,
    n_steps: int = 5,
    t_1: float = 0.5,
    sampler: str = "redge",
    tau: float = 1.0,
) -> DiffCatDistribution:
    """The diffusion-categorical counterpart of SB3's ``make_proba_distribution``.

    ``Discrete`` -> :class:`DiffusionCategoricalDistribution`; ``MultiDiscrete`` ->
    :class:`MultiDiffusionCategoricalDistribution`; ``MultiBinary(n)`` -> the latter with ``n``
    factors of size 2 (action 1 = bit on), i.e. ``2 n`` logits instead of Bernoulli's ``n``.

    :param action_space: the environment's action space.
    :param n_steps: ReDGE number of noise levels (>= 2).
    :param t_1: ReDGE stopping level in [1e-4, 0.9999).
    :param sampler: name in ``rl_diffcat.samplers.SAMPLERS``.
    :param tau: temperature of ``gumbel_softmax``/``reinmax``/``reindge``.
    :raises ValueError: for any other action space, or bad sampler settings.
    """
    knobs = dict(n_steps=n_steps, t_1=t_1, sampler=sampler, tau=tau)
    if isinstance(action_space, spaces.Discrete):
        if int(action_space.start) != 0:
            raise ValueError(
                f"{action_space} has start={action_space.start}; SB3 policies output actions 0..n-1. "
                "Wrap the env so its actions start at 0."
            )
        return DiffusionCategoricalDistribution(int(action_space.n), **knobs)
    if isinstance(action_space, spaces.MultiDiscrete):
        if action_space.nvec.ndim != 1 or np.any(action_space.start != 0):
            raise ValueError(
                f"{action_space} is not supported: use a 1-D MultiDiscrete with start 0 "
                "(flatten nested nvec with a wrapper)."
            )
        return MultiDiffusionCategoricalDistribution(action_space.nvec.tolist(), **knobs)
    if isinstance(action_space, spaces.MultiBinary):
        if not isinstance(action_space.n, (int, np.integer)):
            raise ValueError(
                f"multi-dimensional {action_space} is not supported; flatten it to MultiBinary(n) with a wrapper."
            )
        return MultiDiffusionCategoricalDistribution([2] * int(action_space.n), **knobs)
    raise ValueError(
        f"diffusion-categorical distributions need a Discrete, MultiDiscrete or MultiBinary action "
        f"space, got {action_space!r}. For continuous (Box) actions use SB3's own policies "
        "(e.g. PPO('MlpPolicy', env), which uses a Gaussian distribution), or discretize the actions."
    )

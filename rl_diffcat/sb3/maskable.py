"""Maskable policies for sb3-contrib's ``MaskablePPO`` (optional extra: ``pip install rl-diffcat[contrib]``).

``MaskableActorCriticPolicy`` only needs its distribution to have ``apply_masking``, which the
diffusion-categorical distributions implement (masked actions get zero probability, are never
sampled, also not by ``rsample``, and get zero gradient)::

    MaskablePPO(MaskableDiffCatActorCriticPolicy, env, policy_kwargs=dict(sampler="redge"))
"""

from __future__ import annotations

try:
    from sb3_contrib.common.maskable.policies import (
        MaskableActorCriticCnnPolicy,
        MaskableActorCriticPolicy,
        MaskableMultiInputActorCriticPolicy,
    )
except ImportError as error:  # pragma: no cover - depends on the optional extra
    raise ImportError(
        "rl_diffcat.sb3.maskable needs sb3-contrib; install it with `pip install rl-diffcat[contrib]`"
    ) from error

from rl_diffcat.sb3.policies import DiffCatPolicyMixin


class MaskableDiffCatActorCriticPolicy(DiffCatPolicyMixin, MaskableActorCriticPolicy):
    """sb3-contrib's ``MaskableActorCriticPolicy`` with the diffusion-categorical distribution."""


class MaskableDiffCatActorCriticCnnPolicy(DiffCatPolicyMixin, MaskableActorCriticCnnPolicy):
    """sb3-contrib's ``MaskableActorCriticCnnPolicy`` with the diffusion-categorical distribution."""


class MaskableDiffCatMultiInputActorCriticPolicy(DiffCatPolicyMixin, MaskableMultiInputActorCriticPolicy):
    """sb3-contrib's ``MaskableMultiInputActorCriticPolicy`` with the diffusion-categorical distribution."""

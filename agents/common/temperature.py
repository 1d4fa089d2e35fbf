"""The SAC temperature ``alpha`` (``ent_coef``): fixed, or tuned toward a target entropy within bounds.

With a target the policy cannot reach, discrete SAC's tuned ``alpha`` otherwise grows without limit
until the entropy bonus swamps the rewards: here ``log(alpha)`` is clipped to ``ent_coef_bounds``
after every step.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch as th

from rl_diffcat.agents.common.hyperparameters import parse_ent_coef


class TemperatureMixin:
    """``alpha`` of a categorical SAC agent: set up by :meth:`_setup_temperature`, read as
    :attr:`current_ent_coef`, stepped by :meth:`ent_coef_update`. The tuned ``log_ent_coef`` and
    its optimizer (or the fixed ``ent_coef_tensor``) are saved with the model."""

    ent_coef: Union[str, float]
    ent_coef_bounds: Tuple[float, float]
    target_entropy: float
    device: th.device
    log_ent_coef: Optional[th.Tensor]
    ent_coef_optimizer: Optional[th.optim.Adam]

    def _setup_temperature(self) -> None:
        """``log_ent_coef`` and its Adam optimizer when ``ent_coef`` is tuned (``"auto"``,
        ``"auto_<init>"``), else the fixed ``ent_coef_tensor``."""
        tuned, init = parse_ent_coef(self.ent_coef)
        if tuned:
            low, high = self.ent_coef_bounds
            log_init = math.log(min(max(init, low), high))
            self.log_ent_coef = th.tensor([log_init], device=self.device).requires_grad_(True)
            self.ent_coef_optimizer = th.optim.Adam([self.log_ent_coef], lr=self.lr_schedule(1))  # type: ignore[attr-defined]
        else:
            self.log_ent_coef = None
            self.ent_coef_optimizer = None
            self.ent_coef_tensor = th.tensor(init, device=self.device)

    @property
    def current_ent_coef(self) -> th.Tensor:
        """The temperature ``alpha`` as a detached scalar tensor."""
        if self.log_ent_coef is None:
            return self.ent_coef_tensor
        return self.log_ent_coef.detach().exp().squeeze()

    def ent_coef_update(self, entropy: th.Tensor, target: Union[float, th.Tensor, None] = None) -> None:
        """Move ``alpha`` toward the target entropy, then clip it to ``ent_coef_bounds``.

            L(log alpha) = log alpha * (H(pi) - H_target)
        i.e. ``alpha`` grows while the policy is less random than the target and shrinks otherwise.

        :param entropy: the policy's mean entropy on the minibatch.
        :param target: the target entropy (default: ``target_entropy``).
        """
        if self.log_ent_coef is None or self.ent_coef_optimizer is None:
            return
        # The loss is linear in log alpha: its gradient is H(pi) - H_target, set directly rather
        # than through a backward pass (the same value, a few kernel launches fewer per step).
        target = self.target_entropy if target is None else target
        self.log_ent_coef.grad = (entropy.detach() - target).reshape(self.log_ent_coef.shape)
        self.ent_coef_optimizer.step()
        low, high = self.ent_coef_bounds
        with th.no_grad():
            self.log_ent_coef.clamp_(math.log(low), math.log(high))

"""The plain autograd definitions: ReDGE's DDIM chain, the baselines and their shared helpers.

:func:`redge_denoise` is the definition of ReDGE's soft sample; the fused chain
(:mod:`rl_diffcat.samplers.fused`) and the Triton kernels (:mod:`rl_diffcat.samplers.triton`) are
optimisations of it, and their tests check them against it. The baselines (straight-through,
Gumbel-Softmax, ReinMax, the score function) have a single path and live here whole. The samplers
that choose a path (:func:`~rl_diffcat.samplers.redge` and its variants) are in
:mod:`rl_diffcat.samplers`.

All arithmetic runs in float32 whatever the input dtype; the result has the input dtype
(``score_function``'s surrogate too).
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from rl_diffcat.samplers.chain import check_tau, diffusion_schedule
from rl_diffcat.samplers.settings import validation_enabled
from rl_diffcat.validation import is_integer

# ---------------------------------------------------------------------------------------------
# Inputs and shared helpers
# ---------------------------------------------------------------------------------------------


def prepare_logits(
    logits: Tensor, mask: Optional[Tensor] = None, validate_args: Optional[bool] = None
) -> Tensor:
    """Validate ``logits``/``mask`` and return float32 logits with masked entries at ``-inf``.

    The valid-action mask is not returned: it is ``valid_actions(result)``, built only by the
    callers that need it (one tensor-sized pass less on the hot sampling paths).

    :param logits: unnormalized log-probabilities, shape ``(..., K)``.
    :param mask: optional bool tensor broadcastable to ``logits``; False marks invalid actions.
    :param validate_args: run the (host-syncing) value checks; ``None`` = module default.
    :return: the masked logits, shaped like ``logits``.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., K) with K >= 1, got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor (True = valid action, False = invalid)")
        try:
            shape = torch.broadcast_shapes(mask.shape, logits.shape)
        except RuntimeError:
            shape = None
        if shape != logits.shape:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not match logits of shape "
                f"{tuple(logits.shape)}; it must have the same shape (or broadcast to it)"
            )
    validate = validation_enabled(validate_args)
    if logits.dtype == torch.float64:
        logits = _shift_to_float32_range(logits, mask)
    x = logits.float()
    if validate:
        if torch.isnan(x).any():
            raise ValueError("logits contain NaN; check the network producing them")
        if torch.isposinf(x).any():
            raise ValueError("logits contain +inf; clamp them or use a finite large value")
    # Without a user mask only the -inf entries are masked, and they are -inf already: no copy.
    masked = x if mask is None else x.masked_fill(~mask.to(x.device), float("-inf"))
    if validate and not valid_actions(masked).any(-1).all():
        raise ValueError(
            "every action is masked (mask False or logit -inf) in at least one row; "
            "each row needs at least one valid action"
        )
    return masked


def _shift_to_float32_range(logits: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Float64 ``logits`` with each row's largest finite valid entry moved to 0 (the law and the
    gradient are unchanged: the shift is a constant). The samplers work in float32, where a finite
    float64 logit past float32's range (|x| > 3.4e38) would turn into an infinity: refused as +inf,
    or taken for a masked action. Masked entries take no part in the maximum (a huge masked logit
    would push every valid one to -inf) and are set to -inf (a masked 1e300 is no +inf logit)."""
    finite = torch.isfinite(logits)
    keep = finite if mask is None else finite & mask.to(logits.device)
    top = torch.where(keep, logits, float("-inf")).amax(-1, keepdim=True)
    shifted = logits - torch.where(torch.isfinite(top), top, 0.0).detach()
    return shifted if mask is None else shifted.masked_fill(finite & ~keep, float("-inf"))


def _shift_max_to_zero(logits: Tensor) -> Tensor:
    """``logits`` minus each row's maximum (a constant for autograd): dividing the result by a small
    temperature cannot overflow to +inf (``1e30 / 1e-4`` would, and softmax gives NaN on +inf)."""
    return logits - logits.amax(-1, keepdim=True).detach()


def valid_actions(masked_logits: Tensor) -> Tensor:
    """Bool mask of the actions :func:`prepare_logits` left valid (its logit is not ``-inf``)."""
    return masked_logits != float("-inf")


def one_hot_like(probs: Tensor, index: Tensor) -> Tensor:
    """One-hot tensor shaped like ``probs`` with ones at ``index`` (last dim)."""
    return torch.zeros_like(probs).scatter_(-1, index.unsqueeze(-1), 1.0)


def sample_index(probs: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw indices from ``Cat(probs)`` along the last dim (Gumbel-max, no gradient)."""
    with torch.no_grad():
        expo = torch.empty_like(probs).exponential_(generator=generator).clamp_min_(1e-30)
        return (probs.clamp_min(0).log() - expo.log()).argmax(-1)


def sample_one_hot(probs: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Draw one-hot samples from ``Cat(probs)`` along the last dim (Gumbel-max, no gradient)."""
    with torch.no_grad():
        return one_hot_like(probs, sample_index(probs, generator))


def combine_straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """``hard + soft - stopgrad(soft)``: the value of the one-hot ``hard``, the gradient of ``soft``."""
    return hard + (soft - soft.detach())


def reinmax_correction(hard: Tensor, logits: Tensor, mask: Tensor, tau: float) -> Tensor:
    """ReinMax (Liu et al., 2023): second-order (Heun) surrogate around ``hard`` ~ Cat(softmax(logits)).

        pi_0 = softmax(logits);  pi_1 = (D + softmax(logits / tau)) / 2
        pi_1 <- softmax(stopgrad(log pi_1 - logits) + logits)     (value pi_1, gradient at logits)
        out  = D + (2 pi_1 - pi_0 / 2) - stopgrad(2 pi_1 - pi_0 / 2)
    """
    pi_0 = logits.softmax(-1)
    pi_1 = 0.5 * (hard + (_shift_max_to_zero(logits) / tau).softmax(-1))
    shift = torch.where(mask, pi_1.log() - logits, torch.zeros_like(logits)).detach()
    pi_1 = (shift + logits).softmax(-1)
    return combine_straight_through(hard, 2.0 * pi_1 - 0.5 * pi_0)


# ---------------------------------------------------------------------------------------------
# ReDGE's chain: the definition the fast paths are tested against
# ---------------------------------------------------------------------------------------------


def redge_denoise(
    logits: Tensor,
    x_start: Tensor,
    n_steps: int,
    t_1: float,
    noise_mean: Optional[Tensor] = None,
    noise_var: Optional[Tensor] = None,
) -> Tuple[Tensor, Tensor]:
    """Run the deterministic DDIM chain from ``x_start`` and return ``(soft, final_logits)``.

    The noising process is ``x_t = a_t x0 + s_t (m + sqrt(v) eps)`` (ReDGE: ``m = 0, v = 1``).
    Its closed-form denoiser and the DDIM update are

        x0_hat  = softmax(logits + (a_t (x_t - s_t m) - a_t^2 / 2) / (s_t^2 v))
        x_{t-1} = a_{t-1} x0_hat + s_{t-1} (x_t - a_t x0_hat) / s_t

    for ``t = n-1 .. 1``; the soft sample is ``x0_hat`` at ``t = 1`` (= ``softmax(final_logits)``).
    Pure function of its inputs (no randomness), so fused implementations can be checked against it.

    :param logits: float32 logits with masked entries at ``-inf``, shape ``(..., K)``.
    :param x_start: the starting point ``x_{n-1}``, same shape.
    :param noise_mean: ``m`` (default 0); :param noise_var: ``v`` (default 1), broadcastable.
    """
    a, s = diffusion_schedule(n_steps, t_1)
    m = 0.0 if noise_mean is None else noise_mean
    inv_v = 1.0 if noise_var is None else noise_var.reciprocal()
    x = x_start
    for t in range(n_steps - 1, 0, -1):
        final_logits = logits + (a[t] * (x - s[t] * m) - 0.5 * a[t] ** 2) * inv_v / s[t] ** 2
        x0_hat = final_logits.softmax(-1)
        if t > 1:
            x = a[t - 1] * x0_hat + s[t - 1] * (x - a[t] * x0_hat) / s[t]
    return x0_hat, final_logits


# ---------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------


def straight_through(
    logits: Tensor,
    hard: bool = True,
    *,
    mask: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    validate_args: Optional[bool] = None,
) -> Tensor:
    """Straight-through (Bengio et al., 2013): ``D ~ Cat(pi)`` forward, ``d pi / d logits`` backward.

    ``hard=False`` returns ``pi`` itself.
    """
    masked = prepare_logits(logits, mask, validate_args)
    probs = masked.softmax(-1)
    if not hard:
        return probs.to(logits.dtype)
    return combine_straight_through(sample_one_hot(probs, generator), probs).to(logits.dtype)


def gumbel_softmax(
    logits: Tensor,
    tau: float = 1.0,
    hard: bool = True,
    *,
    mask: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    validate_args: Optional[bool] = None,
) -> Tensor:
    """Gumbel-Softmax / Concrete (Jang et al., 2017; Maddison et al., 2017), straight-through if hard.

        soft = softmax((logits + G) / tau),  G ~ Gumbel(0, 1);   hard = one_hot(argmax(soft))

    :param tau: temperature in [1e-4, 1e4] (:data:`TAU_RANGE`); smaller = closer to one-hot, higher-variance gradients.
    """
    check_tau(tau)
    masked = prepare_logits(logits, mask, validate_args)
    expo = torch.empty_like(masked).exponential_(generator=generator).clamp_min_(1e-30)
    soft = (_shift_max_to_zero(masked - expo.log()) / tau).softmax(-1)
    if not hard:
        return soft.to(logits.dtype)
    return combine_straight_through(one_hot_like(soft, soft.argmax(-1)), soft).to(logits.dtype)


def reinmax(
    logits: Tensor,
    tau: float = 1.0,
    hard: bool = True,
    *,
    mask: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    validate_args: Optional[bool] = None,
) -> Tensor:
    """ReinMax (Liu et al., 2023): straight-through with a second-order (Heun) gradient correction.

    ReinMax only defines a hard estimator, so ``hard=False`` raises ``ValueError``.

    :param tau: temperature in [1e-4, 1e4] of the ``softmax(logits / tau)`` term (1.0 in the paper's default).
    """
    check_tau(tau)
    if not hard:
        raise ValueError("reinmax has no soft sample; call it with hard=True")
    masked = prepare_logits(logits, mask, validate_args)
    one_hot = sample_one_hot(masked.softmax(-1), generator)
    return reinmax_correction(one_hot, masked, valid_actions(masked), tau).to(logits.dtype)


def score_function(
    logits: Tensor,
    f: Callable[[Tensor], Tensor],
    n_samples: int = 2,
    *,
    mask: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    validate_args: Optional[bool] = None,
) -> Tensor:
    """Surrogate for REINFORCE with a leave-one-out baseline (Kool et al., 2019).

    Draws ``n_samples`` one-hots ``x_i ~ Cat(softmax(logits))`` and returns

        L = mean_i f(x_i) + mean_i stopgrad(f(x_i) - b_i) * (log pi(x_i) - stopgrad(log pi(x_i)))

    with ``b_i`` the mean of the other samples' ``f``. ``L`` has the value of the Monte-Carlo mean of
    ``f``, and ``L.backward()`` gives an unbiased estimate of ``grad E_pi[f(X)]`` (plus the gradient
    of ``f``'s own parameters).

    :param logits: shape ``(..., K)``; leading dims may hold independent factors.
    :param f: maps one-hots of shape ``(n_samples, *logits.shape)`` to values of shape
        ``(n_samples, *S)``, where ``S`` is a prefix of ``logits.shape[:-1]`` (log-probabilities of
        the trailing factor dims that ``f`` reduces over are summed).
    :param n_samples: number of samples >= 2 (the baseline needs another sample).
    :return: the surrogate of shape ``S``.
    """
    if not is_integer(n_samples) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2 for the leave-one-out baseline, got {n_samples!r}")
    masked = prepare_logits(logits, mask, validate_args)
    log_probs = masked.log_softmax(-1)
    expanded = log_probs.expand(n_samples, *log_probs.shape)
    x = sample_one_hot(expanded.exp(), generator)
    log_pi = torch.where(x.bool(), expanded, torch.zeros_like(expanded)).sum(-1)
    values = f(x.to(logits.dtype))
    # f must keep the sample dim and a prefix of the batch dims: a broadcast or a reduction over
    # the samples would silently give another estimator.
    if not isinstance(values, Tensor) or values.dim() < 1 or values.shape != log_pi.shape[: values.dim()]:
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(
            f"f must return a tensor of shape (n_samples, *S) with S a prefix of the batch shape "
            f"{tuple(log_pi.shape[1:])}, i.e. one of {[tuple(log_pi.shape[:d]) for d in range(1, log_pi.dim() + 1)]}; got {shape}"
        )
    values = values.float()
    while log_pi.dim() > values.dim():
        log_pi = log_pi.sum(-1)
    baseline = (values.sum(0, keepdim=True) - values) / (n_samples - 1)
    score = (values - baseline).detach() * (log_pi - log_pi.detach())
    return (values + score).mean(0).to(logits.dtype)


"""The ReDGE sampler family and its baselines: all the estimator math in one module.

Every sampler maps ``logits`` of shape ``(..., K)`` to a tensor of the same shape.
With ``hard=True`` the forward value is a one-hot sample and the backward pass is the one of
the sampler's soft relaxation (the straight-through combination ``hard + soft - soft.detach()``);
with ``hard=False`` the soft relaxation itself is returned.

ReDGE (Gourevitch et al., 2026, arXiv 2601.00781) noises a one-hot ``x0 ~ Cat(pi)`` as
``x_t = a_t x0 + s_t eps`` and denoises it with the closed-form posterior mean

    E[x0 | x_t] = softmax(logits + a_t x_t / s_t^2)

using a few deterministic DDIM steps from pure noise down to the stopping level ``t_1``.
The last posterior mean is the soft sample; the hard sample is drawn from it. ``t_1`` acts as a
temperature (``t_1 -> 1`` with ``n_steps=2`` is plain straight-through) and ``n_steps`` sets how
faithfully the hard samples follow ``pi``: see the README's table before using small values.

Common keyword arguments of every sampler:

* ``mask``: bool tensor broadcastable to ``logits`` (False = invalid action). Masked actions are
  never sampled and get zero gradient. Logits equal to ``-inf`` are treated as masked too.
* ``generator``: a ``torch.Generator`` for reproducible sampling.
* ``validate_args``: check inputs (NaN/inf logits, mask shape, fully masked rows). ``None``
  follows the module default, see :func:`set_validation`. Checks cost one host sync.

All arithmetic runs in float32 whatever the input dtype; the result has the input dtype
(``score_function``'s surrogate too).
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from rl_diffcat.validation import is_integer, is_number  # noqa: F401  (is_number: re-exported, agents import it here)

_VALIDATE_DEFAULT = True
_FAST_PATH = "auto"
FAST_PATH_MODES = ("auto", "off", "eager", "compiled", "triton")
_TRITON_MAX_STEPS = 17  # n_steps the Triton kernels unroll (rl_diffcat.triton_redge._MAX_STEPS + 1)


def set_validation(enabled: bool) -> None:
    """Switch input validation of every sampler on or off (default: on).

    Validation reads tensors back to the host; switch it off in hot loops once inputs are trusted.

    :param enabled: whether samplers validate their inputs when ``validate_args`` is ``None``.
    """
    global _VALIDATE_DEFAULT
    _VALIDATE_DEFAULT = bool(enabled)


def validation_enabled() -> bool:
    """:return: whether samplers validate their inputs by default."""
    return _VALIDATE_DEFAULT


def set_fast_path(mode: str) -> None:
    """Choose how :func:`redge` runs its DDIM chain (see :mod:`rl_diffcat.fused`).

    :param mode: ``"auto"`` (default: on CUDA the Triton kernels when ``triton`` is installed and
        ``n_steps <= 17``, else the compiled fused chain; the eager reference on CPU), ``"off"``
        (always the reference), ``"eager"`` (fused hand-written backward, not compiled),
        ``"compiled"`` (fused and ``torch.compile``d on every device) or ``"triton"``
        (:mod:`rl_diffcat.triton_redge`, see BENCHMARKS.md; CUDA tensors, or CPU ones under
        ``TRITON_INTERPRET=1``). Inside a ``torch.compile``d
        function (``compile_update=True``) every mode runs the reference, which the compiler fuses.
    """
    global _FAST_PATH
    if mode not in FAST_PATH_MODES:
        raise ValueError(f"fast path mode must be one of {FAST_PATH_MODES}, got {mode!r}")
    _FAST_PATH = mode


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """:return: whether the ``triton`` package can be imported."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _fused_mode(device: torch.device, n_steps: int) -> Optional[str]:
    """Which fused variant to use on ``device`` (``None``: the autograd reference)."""
    if torch.compiler.is_compiling():
        return None
    if _FAST_PATH == "auto":
        # On CUDA the Triton kernels (the fastest path at every size measured, BENCHMARKS.md "GPU"),
        # else the compiled fused chain; on the CPU the reference.
        if device.type != "cuda":
            return None
        return "triton" if triton_available() and n_steps <= _TRITON_MAX_STEPS else "compiled"
    if _FAST_PATH == "triton":
        if not triton_available():
            raise RuntimeError("fast path 'triton' needs the triton package (pip install triton)")
        if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError("fast path 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 on the CPU)")
        if n_steps > _TRITON_MAX_STEPS:
            raise ValueError(f"fast path 'triton' runs n_steps <= {_TRITON_MAX_STEPS}, got {n_steps}")
    return None if _FAST_PATH == "off" else _FAST_PATH


# ---------------------------------------------------------------------------------------------
# Input checks and shared helpers
# ---------------------------------------------------------------------------------------------


def check_n_steps(n_steps: int) -> None:
    """Raise ``ValueError`` unless ``n_steps`` is an integer >= 2."""
    if not is_integer(n_steps) or n_steps < 2:
        raise ValueError(f"n_steps must be an integer >= 2 (one DDIM step at least), got {n_steps!r}")


#: Signal level ``a`` at the noisy end of the ReDGE chain (:func:`diffusion_schedule`).
NOISE_END_SIGNAL = 1e-4


#: Smallest stopping level ``t_1``. The chain's last denoising step scales ``x_1`` by
#: ``(1 - t_1) / t_1^2`` (1e8 at 1e-4, and gradients by as much): towards 0 this overflows float32
#: (``t_1 = 1e-17`` gave ``1 - (1 - t_1) = 0`` and NaN samples).
MIN_T_1 = 1e-4

#: Temperatures ``tau`` allowed. The relaxation's gradient scales with ``1 / tau`` and overflows
#: float32 as ``tau -> 0``; at 1e-4 the relaxation is already an argmax for logits 1e-2 apart, and at
#: 1e4 almost uniform.
TAU_RANGE = (1e-4, 1e4)


def check_t_1(t_1: float) -> None:
    """Raise ``ValueError`` unless ``MIN_T_1 <= t_1 < 1 - NOISE_END_SIGNAL``: the stopping level must
    sit above the chain's noisy end (or the chain would run towards more noise) and far enough from
    clean data for the last denoising step to stay finite in float32."""
    if not is_number(t_1) or not (MIN_T_1 <= float(t_1) < 1.0 - NOISE_END_SIGNAL):
        raise ValueError(
            f"t_1 must be a number in [{MIN_T_1:g}, {1.0 - NOISE_END_SIGNAL:g}) (the chain starts at signal level "
            f"{NOISE_END_SIGNAL:g}, and t_1 = 1 - its stopping signal level; the last step scales by (1 - t_1) / t_1^2, "
            f"which overflows float32 as t_1 -> 0), got {t_1!r}"
        )


def check_tau(tau: float) -> None:
    """Raise ``ValueError`` unless ``tau`` is a number in :data:`TAU_RANGE`."""
    low, high = TAU_RANGE
    if not is_number(tau) or not (low <= float(tau) <= high):
        raise ValueError(
            f"tau (temperature) must be a number in [{low:g}, {high:g}] (the gradient scales with 1 / tau and "
            f"overflows float32 as tau -> 0), got {tau!r}"
        )


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
    validate = _VALIDATE_DEFAULT if validate_args is None else validate_args
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


def _straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    # Forward: the one-hot `hard`; backward: the Jacobian of `soft`.
    return hard + (soft - soft.detach())


def _reinmax_correction(hard: Tensor, logits: Tensor, mask: Tensor, tau: float) -> Tensor:
    """ReinMax (Liu et al., 2023): second-order (Heun) surrogate around ``hard`` ~ Cat(softmax(logits)).

        pi_0 = softmax(logits);  pi_1 = (D + softmax(logits / tau)) / 2
        pi_1 <- softmax(stopgrad(log pi_1 - logits) + logits)     (value pi_1, gradient at logits)
        out  = D + (2 pi_1 - pi_0 / 2) - stopgrad(2 pi_1 - pi_0 / 2)
    """
    pi_0 = logits.softmax(-1)
    pi_1 = 0.5 * (hard + (_shift_max_to_zero(logits) / tau).softmax(-1))
    shift = torch.where(mask, pi_1.log() - logits, torch.zeros_like(logits)).detach()
    pi_1 = (shift + logits).softmax(-1)
    return _straight_through(hard, 2.0 * pi_1 - 0.5 * pi_0)


# ---------------------------------------------------------------------------------------------
# ReDGE family
# ---------------------------------------------------------------------------------------------


def diffusion_schedule(n_steps: int, t_1: float) -> Tuple[List[float], List[float]]:
    """Signal/noise levels ``(a, s)`` of the ReDGE sampler.

    ``a_0 = 1`` and ``a_1 .. a_{n-1} = linspace(1 - t_1, 1e-4)``, ``s = 1 - a``: index 0 is clean
    data, index ``n-1`` is (almost) pure noise, index 1 is the stopping level ``t_1``.
    """
    check_n_steps(n_steps)
    check_t_1(t_1)
    a = [1.0] + _linspace(1.0 - float(t_1), NOISE_END_SIGNAL, n_steps - 1)
    return a, [1.0 - ai for ai in a]


def _linspace(start: float, end: float, steps: int) -> List[float]:
    """``torch.linspace(start, end, steps, dtype=float64).tolist()`` (equal up to float64 rounding) in
    plain Python, so ``torch.compile`` traces the schedule without a graph break."""
    if steps == 1:
        return [start]
    step = (end - start) / (steps - 1)
    return [start + step * i if i < steps // 2 else end - step * (steps - 1 - i) for i in range(steps)]


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


def _redge_family(
    logits: Tensor,
    n_steps: int,
    t_1: float,
    hard: bool,
    mask: Optional[Tensor],
    generator: Optional[torch.Generator],
    validate_args: Optional[bool],
    variance_matched: bool,
    reinmax_tau: Optional[float] = None,
) -> Tensor:
    check_n_steps(n_steps)
    check_t_1(t_1)
    masked = prepare_logits(logits, mask, validate_args)
    eps = torch.randn(masked.shape, generator=generator, device=masked.device, dtype=masked.dtype)
    if variance_matched:
        # ReDGE-Cov: start from N(pi, diag(max(pi (1 - pi), 0.1))), the mean and (clamped)
        # variance of the one-hot x0 itself, and use the matching Gaussian likelihood.
        with torch.no_grad():
            probs = masked.softmax(-1)
            var = (probs * (1.0 - probs)).clamp_min(0.1)
        x_start, mean = probs + var.sqrt() * eps, probs
    else:
        x_start, mean, var = eps, None, None
    fused = _fused_mode(masked.device, n_steps) if not variance_matched and reinmax_tau is None else None
    if fused == "triton":
        from rl_diffcat.triton_redge import redge_triton

        # Same draws in the same order as the reference: eps, then the Gumbel-max noise.
        expo = torch.empty_like(masked).exponential_(generator=generator) if hard else None
        return redge_triton(masked, x_start, expo, n_steps, t_1).to(logits.dtype)
    if fused is not None:
        from rl_diffcat.fused import redge_soft_fused

        soft = redge_soft_fused(masked, x_start, n_steps, t_1, compiled=fused == "compiled")
    else:
        soft, final_logits = redge_denoise(masked, x_start, n_steps, t_1, mean, var)
    if not hard:
        return soft.to(logits.dtype)
    one_hot = sample_one_hot(soft, generator)
    if reinmax_tau is not None:
        return _reinmax_correction(one_hot, final_logits, valid_actions(masked), reinmax_tau).to(logits.dtype)
    return _straight_through(one_hot, soft).to(logits.dtype)


def redge(
    logits: Tensor,
    n_steps: int = 5,
    t_1: float = 0.5,
    hard: bool = True,
    *,
    mask: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    validate_args: Optional[bool] = None,
) -> Tensor:
    """ReDGE: diffusion-based reparameterized sample of ``Cat(softmax(logits))``.

    Call-compatible with the authors' ``redge(logits, n_steps, t_1, hard)``.

    :param logits: unnormalized log-probabilities, shape ``(..., K)``.
    :param n_steps: number of noise levels (``n_steps - 1`` DDIM steps), >= 2.
    :param t_1: stopping noise level in [1e-4, 0.9999) (:data:`MIN_T_1`); larger = smoother, more biased gradients.
    :param hard: return a one-hot sample with the soft sample's gradient (else the soft sample).
    :return: tensor shaped like ``logits``.
    """
    return _redge_family(logits, n_steps, t_1, hard, mask, generator, validate_args, False)


def redge_cov(
    logits: Tensor,
    n_steps: int = 5,
    t_1: float = 0.5,
    hard: bool = True,
    *,
    mask: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    validate_args: Optional[bool] = None,
) -> Tensor:
    """ReDGE-Cov: ReDGE with a variance-matched start.

    The chain starts from ``pi + sqrt(max(pi (1 - pi), 0.1)) * eps`` (the mean and clamped variance
    of the one-hot ``x0``) instead of ``N(0, I)``, and the denoiser uses the matching diagonal
    Gaussian likelihood. Arguments as in :func:`redge`.
    """
    return _redge_family(logits, n_steps, t_1, hard, mask, generator, validate_args, True)


def reindge(
    logits: Tensor,
    n_steps: int = 5,
    t_1: float = 0.5,
    hard: bool = True,
    *,
    tau: float = 1.0,
    mask: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    validate_args: Optional[bool] = None,
) -> Tensor:
    """ReinDGE: ReDGE whose final step gets ReinMax's second-order correction.

    The hard sample is drawn from the last posterior ``softmax(final_logits)`` as in ReDGE; the
    gradient is ReinMax's Heun-type surrogate around it, taken at ``final_logits`` (which depend on
    ``logits`` through the whole DDIM chain). With ``hard=False`` the ReDGE soft sample is returned.
    Arguments as in :func:`redge`; ``tau`` is ReinMax's temperature.
    """
    check_tau(tau)
    return _redge_family(logits, n_steps, t_1, hard, mask, generator, validate_args, False, tau)


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
    return _straight_through(sample_one_hot(probs, generator), probs).to(logits.dtype)


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
    return _straight_through(one_hot_like(soft, soft.argmax(-1)), soft).to(logits.dtype)


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
    return _reinmax_correction(one_hot, masked, valid_actions(masked), tau).to(logits.dtype)


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


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

SAMPLERS: Dict[str, Callable[..., Tensor]] = {
    "redge": redge,
    "redge_cov": redge_cov,
    "reindge": reindge,
    "straight_through": straight_through,
    "gumbel_softmax": gumbel_softmax,
    "reinmax": reinmax,
}
"""Pathwise samplers by name; each has the signature ``f(logits, [knobs], hard=True, *, mask,
generator, validate_args)``. The score-function estimator needs ``f`` and lives apart."""

KNOBS = ("n_steps", "t_1", "tau")
"""Every sampler hyperparameter (each sampler takes a subset)."""


_KNOBS_OF: Dict[str, Tuple[str, ...]] = {}


def sampler_knobs(name: str) -> Tuple[str, ...]:
    """:return: the hyperparameters that sampler ``name`` accepts (a subset of :data:`KNOBS`).

    Cached in a plain dict (not ``lru_cache``) so ``torch.compile`` can trace the lookup."""
    if name not in _KNOBS_OF:
        params = inspect.signature(get_sampler(name)).parameters
        _KNOBS_OF[name] = tuple(k for k in KNOBS if k in params)
    return _KNOBS_OF[name]


def get_sampler(name: str) -> Callable[..., Tensor]:
    """Look a sampler up by name, raising ``ValueError`` that lists the valid names."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid names: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name]


def make_sampler(name: str, **knobs: float) -> Callable[..., Tensor]:
    """Bind a sampler's hyperparameters, checking them now rather than at the first call.

    Knobs that ``name`` does not use (e.g. ``tau`` for ``redge``) are dropped, so one config can
    sweep several samplers; names outside :data:`KNOBS` raise ``ValueError``.

    :return: ``sample(logits, hard=True, *, mask=None, generator=None, validate_args=None)``.
    """
    fn = get_sampler(name)
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise ValueError(f"unknown sampler hyperparameter(s) {unknown}; valid: {list(KNOBS)}")
    checks = {"n_steps": check_n_steps, "t_1": check_t_1, "tau": check_tau}
    used = {k: v for k, v in knobs.items() if k in sampler_knobs(name) and v is not None}
    for key, value in used.items():
        checks[key](value)
    return functools.partial(fn, **used)

"""The ReDGE sampler family and its baselines: the samplers by name, and the path each one runs.

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
  follows the default: ``with validate_inputs(False): ...`` for a block, :func:`set_validation` for
  the process. Checks cost one host sync.

:func:`redge` also takes ``fast_path`` (``with fast_path("off"): ...`` for a block,
:func:`set_fast_path` for the process): on CUDA its chain runs by default through the Triton
kernels or the fused chain, which compute what the reference computes.

The package, its dependencies pointing one way (each module imports only those above it):

* :mod:`~rl_diffcat.samplers.chain`: the schedule, chain coefficients, knob ranges and checks;
* :mod:`~rl_diffcat.samplers.settings`: the validation and fast-path defaults and their context managers;
* :mod:`~rl_diffcat.samplers.reference`: the plain autograd definitions (:func:`redge_denoise`,
  the baselines);
* :mod:`~rl_diffcat.samplers.fused`, :mod:`~rl_diffcat.samplers.triton`: the fast paths of
  ReDGE's chain, tested against the reference;
* this module: :func:`redge` and its variants (which pick the path), :data:`SAMPLERS`,
  :func:`make_sampler` (where the knobs are checked).

All arithmetic runs in float32 whatever the input dtype; the result has the input dtype
(``score_function``'s surrogate too).
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from rl_diffcat.samplers.chain import (
    KNOB_CHECKS,
    KNOBS,
    MIN_T_1,
    NOISE_END_SIGNAL,
    TAU_RANGE,
    TRITON_MAX_STEPS,
    check_n_steps,
    check_t_1,
    check_tau,
    diffusion_schedule,
)
from rl_diffcat.samplers.fused import redge_soft_fused
from rl_diffcat.samplers.reference import (
    combine_straight_through,
    gumbel_softmax,
    one_hot_like,
    prepare_logits,
    redge_denoise,
    reinmax,
    reinmax_correction,
    sample_index,
    sample_one_hot,
    score_function,
    straight_through,
    valid_actions,
)
from rl_diffcat.samplers.settings import (
    FAST_PATH_MODES,
    check_fast_path,
    fast_path,
    fast_path_mode,
    set_fast_path,
    set_validation,
    validate_inputs,
    validation_enabled,
)
from rl_diffcat.validation import is_integer, is_number

_TRITON_MAX_STEPS = TRITON_MAX_STEPS  # the name before the package split

__all__ = [
    "FAST_PATH_MODES",
    "KNOBS",
    "MIN_T_1",
    "NOISE_END_SIGNAL",
    "SAMPLERS",
    "TAU_RANGE",
    "TRITON_MAX_STEPS",
    "check_n_steps",
    "check_t_1",
    "check_tau",
    "checked_knobs",
    "diffusion_schedule",
    "fast_path",
    "get_sampler",
    "gumbel_softmax",
    "is_integer",
    "is_number",
    "make_sampler",
    "one_hot_like",
    "prepare_logits",
    "redge",
    "redge_cov",
    "redge_denoise",
    "reindge",
    "reinmax",
    "sample_index",
    "sample_one_hot",
    "sampler_knobs",
    "score_function",
    "set_fast_path",
    "set_validation",
    "straight_through",
    "triton_available",
    "valid_actions",
    "validate_inputs",
    "validation_enabled",
]


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """:return: whether the ``triton`` package can be imported."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _fused_mode(device: torch.device, n_steps: int, mode: Optional[str] = None) -> Optional[str]:
    """Which fast path ReDGE's chain takes on ``device`` (``None``: the autograd reference).

    :param mode: the call's ``fast_path`` (``None``: the current default, see :func:`set_fast_path`).
    """
    if mode is not None:
        check_fast_path(mode)
    if torch.compiler.is_compiling():
        return None
    mode = fast_path_mode(mode)
    if mode == "auto":
        # On CUDA the Triton kernels (the fastest path at every size measured, BENCHMARKS.md "GPU"),
        # else the compiled fused chain; on the CPU the reference.
        if device.type != "cuda":
            return None
        return "triton" if triton_available() and n_steps <= TRITON_MAX_STEPS else "compiled"
    if mode == "triton":
        if not triton_available():
            raise RuntimeError("fast path 'triton' needs the triton package (pip install triton)")
        if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError("fast path 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 on the CPU)")
        if n_steps > TRITON_MAX_STEPS:
            raise ValueError(f"fast path 'triton' runs n_steps <= {TRITON_MAX_STEPS}, got {n_steps}")
    return None if mode == "off" else mode


# ---------------------------------------------------------------------------------------------
# ReDGE family
# ---------------------------------------------------------------------------------------------


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
    fast_path: Optional[str] = None,
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
    fused = _fused_mode(masked.device, n_steps, fast_path) if not variance_matched and reinmax_tau is None else None
    if fused == "triton":
        # Imported on first use: triton is optional and slow to import (not a cycle: the kernels'
        # module imports only the chain leaf).
        from rl_diffcat.samplers.triton import redge_triton

        # Same draws in the same order as the reference: eps, then the Gumbel-max noise.
        expo = torch.empty_like(masked).exponential_(generator=generator) if hard else None
        return redge_triton(masked, x_start, expo, n_steps, t_1).to(logits.dtype)
    if fused is not None:
        soft = redge_soft_fused(masked, x_start, n_steps, t_1, compiled=fused == "compiled")
    else:
        soft, final_logits = redge_denoise(masked, x_start, n_steps, t_1, mean, var)
    if not hard:
        return soft.to(logits.dtype)
    one_hot = sample_one_hot(soft, generator)
    if reinmax_tau is not None:
        return reinmax_correction(one_hot, final_logits, valid_actions(masked), reinmax_tau).to(logits.dtype)
    return combine_straight_through(one_hot, soft).to(logits.dtype)


def redge(
    logits: Tensor,
    n_steps: int = 5,
    t_1: float = 0.5,
    hard: bool = True,
    *,
    mask: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
    validate_args: Optional[bool] = None,
    fast_path: Optional[str] = None,
) -> Tensor:
    """ReDGE: diffusion-based reparameterized sample of ``Cat(softmax(logits))``.

    Call-compatible with the authors' ``redge(logits, n_steps, t_1, hard)``.

    :param logits: unnormalized log-probabilities, shape ``(..., K)``.
    :param n_steps: number of noise levels (``n_steps - 1`` DDIM steps), >= 2.
    :param t_1: stopping noise level in [1e-4, 0.9999) (:data:`MIN_T_1`); larger = smoother, more biased gradients.
    :param hard: return a one-hot sample with the soft sample's gradient (else the soft sample).
    :param fast_path: how the chain runs, one of :data:`FAST_PATH_MODES` (see :func:`set_fast_path`);
        ``None``: the current default. Every path gives the reference's samples for the same noise.
    :return: tensor shaped like ``logits``.
    """
    return _redge_family(logits, n_steps, t_1, hard, mask, generator, validate_args, False, fast_path=fast_path)


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


def checked_knobs(name: str, **knobs: Optional[float]) -> Dict[str, float]:
    """The hyperparameters sampler ``name`` uses among ``knobs``, each checked: the one place the
    sampler knobs are checked (:func:`make_sampler` binds them; callers add context to the error).

    Knobs that ``name`` does not use (e.g. ``tau`` for ``redge``) or set to ``None`` are dropped, so
    one config can sweep several samplers; names outside :data:`KNOBS` raise ``ValueError``.

    :raises ValueError: unknown sampler name (the message lists the valid ones), unknown knob name,
        or a knob out of its range (:data:`MIN_T_1`, :data:`TAU_RANGE`, ``n_steps >= 2``).
    """
    get_sampler(name)
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise ValueError(f"unknown sampler hyperparameter(s) {unknown}; valid: {list(KNOBS)}")
    used = {k: v for k, v in knobs.items() if k in sampler_knobs(name) and v is not None}
    for key, value in used.items():
        KNOB_CHECKS[key](value)
    return used


def make_sampler(name: str, **knobs: Optional[float]) -> Callable[..., Tensor]:
    """Bind a sampler's hyperparameters, checking them now rather than at the first call.

    Knobs are filtered and checked by :func:`checked_knobs`.

    :return: ``sample(logits, hard=True, *, mask=None, generator=None, validate_args=None)``.
    """
    return functools.partial(get_sampler(name), **checked_knobs(name, **knobs))

"""The ReDGE chain's numbers: noise schedule, step coefficients, the knobs' ranges and checks.

The leaf of :mod:`rl_diffcat.samplers`: the reference, fused and Triton paths all import their
schedule and their knob checks from here, and nothing here imports them back.

ReDGE noises a one-hot ``x0`` as ``x_t = a_t x0 + s_t eps`` with ``s_t = 1 - a_t``; the signal
levels run from ``a_0 = 1`` (clean data) through ``a_1 = 1 - t_1`` (where the chain stops) down to
:data:`NOISE_END_SIGNAL` (where it starts, almost pure noise).
"""

from __future__ import annotations

import functools
from typing import Callable, Dict, List, Tuple

from rl_diffcat.validation import is_integer, is_number

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

#: Largest ``n_steps`` the Triton kernels run: they unroll each of the ``n_steps - 1`` DDIM steps.
TRITON_MAX_STEPS = 17


def check_n_steps(n_steps: int) -> None:
    """Raise ``ValueError`` unless ``n_steps`` is an integer >= 2."""
    if not is_integer(n_steps) or n_steps < 2:
        raise ValueError(f"n_steps must be an integer >= 2 (one DDIM step at least), got {n_steps!r}")


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


KNOB_CHECKS: Dict[str, Callable[[float], None]] = {"n_steps": check_n_steps, "t_1": check_t_1, "tau": check_tau}
"""The check of every sampler hyperparameter, by name."""

KNOBS = tuple(KNOB_CHECKS)
"""Every sampler hyperparameter (each sampler takes a subset)."""


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


Coeffs = Tuple[Tuple[float, float, float], ...]


@functools.lru_cache(maxsize=64)
def chain_coefficients(n_steps: int, t_1: float) -> Coeffs:
    """``(c_t, alpha_t, beta_t)`` for ``t = n-1 .. 1``, in the order the forward chain uses them.

    With them one DDIM step of :func:`rl_diffcat.samplers.reference.redge_denoise` reads
    ``y_t = softmax(logits + c_t x_t)``, ``x_{t-1} = alpha_t y_t + beta_t x_t``:
    ``c_t = a_t / s_t^2``, ``beta_t = s_{t-1} / s_t``, ``alpha_t = a_{t-1} - beta_t a_t``.
    Callers check the knobs first: ``5.0 == 5``, so a cached entry would let a float ``n_steps`` by.
    """
    a, s = diffusion_schedule(n_steps, t_1)
    return tuple(
        (a[t] / s[t] ** 2, a[t - 1] - s[t - 1] / s[t] * a[t], s[t - 1] / s[t]) for t in range(n_steps - 1, 0, -1)
    )

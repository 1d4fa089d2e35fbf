"""A fused fast path for the ReDGE soft sample: hand-written backward, compiled on CUDA.

Autograd through :func:`rl_diffcat.samplers.reference.redge_denoise` keeps every intermediate of
the DDIM chain alive and launches a few kernels per step. Here the forward keeps only ``logits`` and the
starting noise, and the backward recomputes the chain and runs the adjoint recursion below, so
each direction is one pure tensor function that ``torch.compile`` can fuse into a handful of
kernels. The eager reference stays the source of truth; tests check both agree.

With ``z_t = logits + c_t x_t``, ``y_t = softmax(z_t)`` and ``x_{t-1} = alpha_t y_t + beta_t x_t``
(``c_t = a_t / s_t^2``, ``beta_t = s_{t-1} / s_t``, ``alpha_t = a_{t-1} - beta_t a_t``: see
:func:`~rl_diffcat.samplers.chain.chain_coefficients`), the adjoint of the chain, from ``t = 1``
back up to ``t = n-1``, is

    g_y_t  = dL/dsoft            (t = 1)      or   alpha_t g_x_{t-1}   (t > 1)
    g_z_t  = y_t * (g_y_t - <g_y_t, y_t>)
    g_x_t  = c_t g_z_t + beta_t g_x_{t-1}      and   dL/dlogits = sum_t g_z_t
"""

from __future__ import annotations

import functools
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from rl_diffcat.samplers.chain import Coeffs, chain_coefficients, check_n_steps, check_t_1


def _chain(logits: Tensor, x: Tensor, coeffs: Coeffs) -> List[Tensor]:
    """The posterior means ``y_t`` of every step of the DDIM chain."""
    ys = []
    for i, (c, alpha, beta) in enumerate(coeffs):
        y = (logits + c * x).softmax(-1)
        ys.append(y)
        if i + 1 < len(coeffs):
            x = alpha * y + beta * x
    return ys


def chain_forward(logits: Tensor, x_start: Tensor, coeffs: Coeffs) -> Tensor:
    """The soft sample (last posterior mean) of the chain started at ``x_start``."""
    return _chain(logits, x_start, coeffs)[-1]


def chain_backward(
    logits: Tensor, x_start: Tensor, grad_soft: Tensor, coeffs: Coeffs, with_x_start_grad: bool = False
) -> Tuple[Tensor, Optional[Tensor]]:
    """``(dL/dlogits, dL/dx_start)`` given ``dL/dsoft``, recomputing the chain (see the module docstring).

    The adjoint's last ``g_x`` is the gradient of the starting noise. It is returned only when
    asked for (``None`` otherwise), so the usual case, constant noise, writes no extra tensor.
    """
    ys = _chain(logits, x_start, coeffs)
    grad_logits = torch.zeros_like(logits)
    grad_x_next = None
    for i in range(len(coeffs) - 1, -1, -1):
        c, alpha, beta = coeffs[i]
        g_y = grad_soft if grad_x_next is None else alpha * grad_x_next
        g_z = ys[i] * (g_y - (g_y * ys[i]).sum(-1, keepdim=True))
        grad_logits = grad_logits + g_z
        if i > 0 or with_x_start_grad:
            grad_x_next = c * g_z if grad_x_next is None else c * g_z + beta * grad_x_next
    return grad_logits, grad_x_next if with_x_start_grad else None


@functools.lru_cache(maxsize=None)
def _kernels(compiled: bool):
    if not compiled:
        return chain_forward, chain_backward
    return torch.compile(chain_forward, dynamic=False), torch.compile(chain_backward, dynamic=False)


class _FusedChain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, x_start: Tensor, coeffs: Coeffs, compiled: bool) -> Tensor:
        ctx.save_for_backward(logits, x_start)
        ctx.coeffs, ctx.compiled = coeffs, compiled
        return _kernels(compiled)[0](logits, x_start, coeffs)

    @staticmethod
    def backward(ctx, grad_soft: Tensor):
        logits, x_start = ctx.saved_tensors
        grad_logits, grad_x_start = _kernels(ctx.compiled)[1](
            logits, x_start, grad_soft.contiguous(), ctx.coeffs, ctx.needs_input_grad[1]
        )
        return grad_logits, grad_x_start, None, None


def redge_soft_fused(logits: Tensor, x_start: Tensor, n_steps: int, t_1: float, compiled: bool = True) -> Tensor:
    """ReDGE soft sample with the fused forward/backward; same value and gradient as the reference.

    :param logits: float32 logits with masked entries at ``-inf``, shape ``(..., K)``.
    :param x_start: the starting noise, same shape.
    :param compiled: run both directions through ``torch.compile`` (meant for CUDA).
    """
    # Checked before the cached lookup: 5.0 == 5 would otherwise hit a cached entry unchecked.
    check_n_steps(n_steps)
    check_t_1(t_1)
    return _FusedChain.apply(logits, x_start, chain_coefficients(int(n_steps), float(t_1)), compiled)

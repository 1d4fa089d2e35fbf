"""ReDGE in two Triton kernels: the whole DDIM chain, the hard draw and the adjoint, per row.

The fused chain of :mod:`rl_diffcat.samplers.fused` still leaves ``torch.compile`` a handful of kernels per
direction, plus the ones around it (the Gumbel-max draw, the one-hot, the straight-through sum).
Here one forward kernel reads ``logits``, the starting noise and the exponential noise of the hard
draw once and writes the one-hot (or the soft sample), and one backward kernel reads ``logits``, the
noise and the output gradient and writes ``dL/dlogits``. Nothing of size ``(B, K)`` is kept between
them but the inputs.

Each softmax of the chain needs its row's max ``m_i`` and normalizer ``l_i``; once those are known,
every element's whole chain is elementwise. So the forward makes one online-softmax pass per DDIM
step (recomputing the earlier steps from their stored ``(m, l)``), then one pass for the Gumbel-max
argmax and one that writes the output; it stores the ``(m, l)`` of each step (``B x S x 2``
floats). The backward (adjoint recursion in :mod:`rl_diffcat.samplers.fused`) needs one row reduction
``d_i = <g_y_i, y_i>`` per step, again one pass each, then a pass that writes the gradient. When a
row fits in a block every pass after the first reads from cache; for very long rows the passes
re-read device memory, which BENCHMARKS.md quantifies. ``K`` and the step count are compile-time
constants: each (K, n_steps) compiles once (a few seconds), which suits RL's fixed action spaces.

The passes recompute the same values, and the recursion is only as good as the agreement between
those copies: at small ``t_1`` a one-rounding difference between the ``z`` of a statistics pass
and the ``z`` of a later pass (one copy contracted into an FMA, the other not) grows into a
percent-level gradient error (a float32 emulation: 1e-3 against 1e-5 when the copies agree). So
the kernels are compiled with ``enable_fp_fusion=False``: every copy rounds the same way.

Samples equal the reference's for the same noise (both draw ``eps`` then the exponential noise from
the same generator); gradients agree to float32 rounding. ``tests/test_triton_redge.py`` checks
both, on CUDA and, with ``TRITON_INTERPRET=1``, on the CPU.
"""

from __future__ import annotations

import functools
from typing import Tuple

import torch
from torch import Tensor

import triton
import triton.language as tl

from rl_diffcat.samplers.chain import TRITON_MAX_STEPS, chain_coefficients, check_n_steps, check_t_1

_MAX_STEPS = TRITON_MAX_STEPS - 1  # the kernels unroll every DDIM step: n_steps - 1 at most this


@triton.jit
def _pick(table, sidx, j: tl.constexpr):
    """Column ``j`` of a ``(ROWS, MAX_STEPS)`` register table, as a ``(ROWS, 1)`` tensor."""
    return tl.sum(tl.where(sidx == j, table, 0.0), axis=1)[:, None]


@triton.jit
def _posterior(lg, x, coef_ptr, m_all, l_all, sidx, j: tl.constexpr):
    """``y_j = softmax(logits + c_j x_j)`` from the stored row statistics ``(m_j, l_j)``."""
    return tl.exp(lg + tl.load(coef_ptr + 3 * j) * x - _pick(m_all, sidx, j)) / _pick(l_all, sidx, j)


@triton.jit
def _x_at(lg, x, coef_ptr, m_all, l_all, sidx, J: tl.constexpr):
    """The chain state ``x_J`` (``x_0`` = the starting noise), from the stored row statistics."""
    for j in tl.static_range(J):
        y = _posterior(lg, x, coef_ptr, m_all, l_all, sidx, j)
        x = tl.load(coef_ptr + 3 * j + 1) * y + tl.load(coef_ptr + 3 * j + 2) * x
    return x


@triton.jit
def _y_at(lg, x, coef_ptr, m_all, l_all, sidx, J: tl.constexpr):
    """Posterior mean ``y_J`` of the chain started at ``x``, from the stored row statistics."""
    return _posterior(lg, _x_at(lg, x, coef_ptr, m_all, l_all, sidx, J), coef_ptr, m_all, l_all, sidx, J)


@triton.jit
def _tile(logits_ptr, eps_ptr, base, cols0, row_ok, k0, K: tl.constexpr):
    """Columns ``k0 ..`` of the rows: their indices, validity, logits (-inf outside) and noise."""
    cols = k0 + cols0
    ok = row_ok[:, None] & (cols < K)
    lg = tl.load(logits_ptr + base + cols, mask=ok, other=float("-inf"))
    x = tl.load(eps_ptr + base + cols, mask=ok, other=0.0)
    return cols, ok, lg, x


@triton.jit
def _forward_kernel(
    logits_ptr, eps_ptr, expo_ptr, out_ptr, stats_ptr, coef_ptr, n_rows,
    K: tl.constexpr, S: tl.constexpr, HARD: tl.constexpr, ROWS: tl.constexpr, BLOCK_K: tl.constexpr, MS: tl.constexpr, STAGES: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = rows < n_rows
    base = rows.to(tl.int64)[:, None] * K
    cols0 = tl.arange(0, BLOCK_K)[None, :]
    sidx = tl.arange(0, MS)[None, :]
    m_all = tl.zeros((ROWS, MS), dtype=tl.float32)
    l_all = tl.full((ROWS, MS), 1.0, dtype=tl.float32)

    # One online-softmax pass per DDIM step: the max and normalizer of z_i = logits + c_i x_i.
    for i in tl.static_range(S):
        c = tl.load(coef_ptr + 3 * i)
        m_run = tl.full((ROWS,), float("-inf"), dtype=tl.float32)
        l_run = tl.zeros((ROWS,), dtype=tl.float32)
        for k0 in tl.range(0, K, BLOCK_K, num_stages=STAGES):
            cols, ok, lg, x = _tile(logits_ptr, eps_ptr, base, cols0, row_ok, k0, K)
            z = lg + c * _x_at(lg, x, coef_ptr, m_all, l_all, sidx, i)
            m_new = tl.maximum(m_run, tl.max(z, axis=1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            l_run = l_run * tl.exp(m_run - m_safe) + tl.sum(tl.exp(z - m_safe[:, None]), axis=1)
            m_run = m_new
        m_all = tl.where(sidx == i, m_run[:, None], m_all)
        l_all = tl.where(sidx == i, l_run[:, None], l_all)

    srow = rows.to(tl.int64)[:, None] * (2 * S)
    s_ok = row_ok[:, None] & (sidx < S)
    tl.store(stats_ptr + srow + 2 * sidx, m_all, mask=s_ok)
    tl.store(stats_ptr + srow + 2 * sidx + 1, l_all, mask=s_ok)

    if HARD:
        # Gumbel-max draw from the last posterior, as reference.sample_one_hot does it.
        best = tl.full((ROWS,), float("-inf"), dtype=tl.float32)
        best_idx = tl.zeros((ROWS,), dtype=tl.int32)
        for k0 in tl.range(0, K, BLOCK_K, num_stages=STAGES):
            cols, ok, lg, x = _tile(logits_ptr, eps_ptr, base, cols0, row_ok, k0, K)
            expo = tl.load(expo_ptr + base + cols, mask=ok, other=1.0)
            y = _y_at(lg, x, coef_ptr, m_all, l_all, sidx, S - 1)
            score = tl.log(tl.maximum(y, 0.0)) - tl.log(tl.maximum(expo, 1e-30))
            score = tl.where(ok, score, float("-inf"))
            blk_best = tl.max(score, axis=1)
            blk_idx = tl.argmax(score, axis=1, tie_break_left=True).to(tl.int32) + k0
            take = blk_best > best
            best_idx = tl.where(take, blk_idx, best_idx)
            best = tl.where(take, blk_best, best)
        for k0 in tl.range(0, K, BLOCK_K, num_stages=STAGES):
            cols = k0 + cols0
            ok = row_ok[:, None] & (cols < K)
            tl.store(out_ptr + base + cols, tl.where(cols == best_idx[:, None], 1.0, 0.0), mask=ok)
    else:
        for k0 in tl.range(0, K, BLOCK_K, num_stages=STAGES):
            cols, ok, lg, x = _tile(logits_ptr, eps_ptr, base, cols0, row_ok, k0, K)
            tl.store(out_ptr + base + cols, _y_at(lg, x, coef_ptr, m_all, l_all, sidx, S - 1), mask=ok)


@triton.jit
def _grad_x_after(lg, x, g, coef_ptr, m_all, l_all, d_all, sidx, S: tl.constexpr, I: tl.constexpr):
    """Adjoint ``g_x_{I}`` and ``sum_{j >= I} g_z_j``, running the recursion from step S-1 down to I.

    Needs the reductions ``d_j`` for ``j >= I`` in ``d_all``.
    """
    g_x = tl.zeros_like(g)
    g_sum = tl.zeros_like(g)
    for j in tl.static_range(S - 1, I - 1, -1):
        y = _y_at(lg, x, coef_ptr, m_all, l_all, sidx, j)
        if j == S - 1:
            g_y = g
        else:
            g_y = tl.load(coef_ptr + 3 * j + 1) * g_x
        g_z = y * (g_y - _pick(d_all, sidx, j))
        g_sum += g_z
        g_x = tl.load(coef_ptr + 3 * j) * g_z + tl.load(coef_ptr + 3 * j + 2) * g_x  # g_x starts at 0
    return g_x, g_sum


@triton.jit
def _backward_kernel(
    logits_ptr, eps_ptr, grad_ptr, stats_ptr, coef_ptr, grad_logits_ptr, n_rows,
    K: tl.constexpr, S: tl.constexpr, ROWS: tl.constexpr, BLOCK_K: tl.constexpr, MS: tl.constexpr, STAGES: tl.constexpr,
):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = rows < n_rows
    base = rows.to(tl.int64)[:, None] * K
    cols0 = tl.arange(0, BLOCK_K)[None, :]
    sidx = tl.arange(0, MS)[None, :]
    srow = rows.to(tl.int64)[:, None] * (2 * S)
    s_ok = row_ok[:, None] & (sidx < S)
    m_all = tl.load(stats_ptr + srow + 2 * sidx, mask=s_ok, other=0.0)
    l_all = tl.load(stats_ptr + srow + 2 * sidx + 1, mask=s_ok, other=1.0)
    d_all = tl.zeros((ROWS, MS), dtype=tl.float32)

    # One pass per step, last DDIM step first: d_i = <g_y_i, y_i>.
    for i in tl.static_range(S - 1, -1, -1):
        acc = tl.zeros((ROWS,), dtype=tl.float32)
        for k0 in tl.range(0, K, BLOCK_K, num_stages=STAGES):
            cols, ok, lg, x = _tile(logits_ptr, eps_ptr, base, cols0, row_ok, k0, K)
            g = tl.load(grad_ptr + base + cols, mask=ok, other=0.0)
            y = _y_at(lg, x, coef_ptr, m_all, l_all, sidx, i)
            if i == S - 1:
                g_y = g
            else:
                g_x, _ = _grad_x_after(lg, x, g, coef_ptr, m_all, l_all, d_all, sidx, S, i + 1)
                g_y = tl.load(coef_ptr + 3 * i + 1) * g_x
            acc += tl.sum(tl.where(ok, g_y * y, 0.0), axis=1)
        d_all = tl.where(sidx == i, acc[:, None], d_all)

    # dL/dlogits = sum_i g_z_i.
    for k0 in tl.range(0, K, BLOCK_K, num_stages=STAGES):
        cols, ok, lg, x = _tile(logits_ptr, eps_ptr, base, cols0, row_ok, k0, K)
        g = tl.load(grad_ptr + base + cols, mask=ok, other=0.0)
        _, g_sum = _grad_x_after(lg, x, g, coef_ptr, m_all, l_all, d_all, sidx, S, 0)
        tl.store(grad_logits_ptr + base + cols, g_sum, mask=ok)


def launch_config(n_rows: int, k: int) -> Tuple[int, int, int, int]:
    """``(ROWS, BLOCK_K, num_warps, STAGES)`` for a ``(n_rows, k)`` problem.

    Tiles of 2048 elements by default, whole rows packed into a tile when ``K`` is small;
    ``STAGES > 1`` (default 3) prefetches the next tiles of a long row into shared memory
    (``cp.async``). The defaults were the best or within 3% of the best of the five options timed
    on an H200 at the four sizes of BENCHMARKS.md. :func:`set_launch_options` overrides both.
    """
    return _launch_config(n_rows, k, _OPTIONS.get("tile") or 2048, _OPTIONS.get("stages") or 3)


@functools.lru_cache(maxsize=256)
def _launch_config(n_rows: int, k: int, tile: int, stages: int) -> Tuple[int, int, int, int]:
    # Cached, and with plain-Python powers of two: triton.next_power_of_2 and triton.cdiv called
    # from Python go through Triton's constexpr-function wrapper (about 1.6 us a call on the
    # 2-core CPU, some 12 us per forward + backward before), host time that counts at small K.
    block_k = min(_next_power_of_2(k), tile)
    rows = max(1, min(tile // block_k, _next_power_of_2(n_rows)))
    num_warps = max(1, min(8, rows * block_k // 256))
    return rows, block_k, num_warps, stages


def _next_power_of_2(n: int) -> int:
    """The smallest power of two >= ``max(n, 1)``."""
    return 1 << max(n - 1, 0).bit_length()


_OPTIONS: dict = {}


def set_launch_options(tile: int | None = None, stages: int | None = None) -> None:
    """Override the tile size (elements, a power of two) and the pipeline depth; ``None`` = default.

    A tuning knob for ``examples/sampler_speed.py`` (paths ``triton@TILE:STAGES``); the defaults
    were chosen from its figures.
    """
    if tile is not None and (tile < 16 or tile & (tile - 1)):
        raise ValueError(f"tile must be a power of two >= 16, got {tile!r}")
    if stages is not None and stages < 1:
        raise ValueError(f"stages must be >= 1, got {stages!r}")
    _OPTIONS.clear()
    _OPTIONS.update(tile=tile, stages=stages)


@functools.lru_cache(maxsize=64)
def _coefficient_table(n_steps: int, t_1: float, device: torch.device) -> Tensor:
    """``(S, 3)`` float32 table of ``(c_i, alpha_i, beta_i)`` on ``device``."""
    return torch.tensor(chain_coefficients(n_steps, t_1), dtype=torch.float32, device=device)


def _table_width(steps: int) -> int:
    """Columns of the per-row ``(m, l, d)`` register tables: a power of two >= the step count."""
    return max(2, _next_power_of_2(steps))


class _TritonRedge(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, eps: Tensor, expo: Tensor, coef: Tensor, hard: bool) -> Tensor:
        n_rows, k = logits.shape
        steps = coef.shape[0]
        out = torch.empty_like(logits)
        stats = torch.empty(n_rows, steps, 2, dtype=torch.float32, device=logits.device)
        rows, block_k, num_warps, stages = launch_config(n_rows, k)
        grid = (-(-n_rows // rows),)
        _forward_kernel[grid](
            logits, eps, expo if hard else logits, out, stats, coef, n_rows,
            K=k, S=steps, HARD=hard, ROWS=rows, BLOCK_K=block_k, MS=_table_width(steps), STAGES=stages,
            num_warps=num_warps, enable_fp_fusion=False,
        )
        ctx.save_for_backward(logits, eps, stats, coef)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        logits, eps, stats, coef = ctx.saved_tensors
        n_rows, k = logits.shape
        grad_logits = torch.empty_like(logits)
        rows, block_k, num_warps, stages = launch_config(n_rows, k)
        grid = (-(-n_rows // rows),)
        _backward_kernel[grid](
            logits, eps, grad_out.contiguous(), stats, coef, grad_logits, n_rows,
            K=k, S=coef.shape[0], ROWS=rows, BLOCK_K=block_k, MS=_table_width(coef.shape[0]), STAGES=stages,
            num_warps=num_warps, enable_fp_fusion=False,
        )
        return grad_logits, None, None, None, None


def redge_triton(logits: Tensor, eps: Tensor, expo: Tensor | None, n_steps: int, t_1: float) -> Tensor:
    """ReDGE sample from two Triton kernels: the one-hot (``expo`` given) or the soft sample.

    :param logits: float32 logits with masked entries at ``-inf``, shape ``(..., K)``.
    :param eps: the starting noise of the chain, same shape.
    :param expo: Exp(1) noise of the Gumbel-max hard draw (same shape), or ``None`` for the soft
        sample. The one-hot carries the soft sample's gradient (straight-through).

    Only ``logits`` gets a gradient: the kernels treat the noise as a constant, so an ``eps``
    that requires grad is refused (``rl_diffcat.samplers.fused.redge_soft_fused`` differentiates it).
    """
    check_n_steps(n_steps)  # before the cached table: 5.0 == 5 would hit a cached entry unchecked
    check_t_1(t_1)
    if eps.requires_grad:
        raise ValueError(
            "redge_triton gives no gradient for eps; use rl_diffcat.samplers.fused.redge_soft_fused to differentiate the noise"
        )
    if n_steps - 1 > _MAX_STEPS:
        raise ValueError(f"the Triton path runs at most {_MAX_STEPS + 1} steps, got n_steps={n_steps}")
    if logits.numel() == 0:  # no rows: nothing to launch
        return logits * 0.0
    shape, k = logits.shape, logits.shape[-1]

    def rows(t: Tensor) -> Tensor:
        return t.reshape(-1, k).contiguous()

    coef = _coefficient_table(n_steps, float(t_1), logits.device)
    hard = expo is not None
    out = _TritonRedge.apply(rows(logits), rows(eps), rows(expo) if hard else None, coef, hard)
    return out.reshape(shape)

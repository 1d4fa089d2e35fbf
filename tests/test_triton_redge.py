"""The Triton ReDGE kernels equal the autograd reference: same samples for the same noise, same gradients.

They run on CUDA, and on the CPU under Triton's interpreter (``TRITON_INTERPRET=1``): the
``test_interpreter_*`` case re-runs this file that way in a subprocess when Triton is installed.
Without Triton (as in CI) only the error checks run.
"""

import os
import subprocess
import sys

import pytest
import torch

from rl_diffcat import samplers
from rl_diffcat.samplers import TRITON_MAX_STEPS, fast_path, redge, redge_denoise, triton_available

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
DEVICES = ["cpu"] if INTERPRETED else (["cuda"] if torch.cuda.is_available() else [])
needs_kernels = pytest.mark.skipif(
    not (triton_available() and DEVICES), reason="needs triton and CUDA (or TRITON_INTERPRET=1)"
)

# (batch, K, n_steps, t_1): packed rows (K < 32), one block per row, several blocks per row.
CASES = [
    (300, 11, 5, 0.5),
    (64, 18, 2, 0.5),
    (17, 1000, 10, 0.1),  # small t_1: passed on an H200 once compiled without FMA contraction
    (5, 5000, 5, 0.5),
    (9, 3, 3, 0.9),
]


def inputs(device, batch, k, masked=True, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = (2 * torch.randn(batch, k, generator=gen, dtype=torch.float64)).to(device, dtype)
    weight = torch.randn(batch, k, generator=gen, dtype=torch.float64).to(device, dtype)
    mask = None
    if masked and k > 2:
        mask = torch.rand(batch, k, generator=gen) > 0.3
        mask[:, 0] = True
        mask = mask.to(device)
    return logits, weight, mask


def float64_gradient(device, batch, k, n_steps, t_1, seed=0):
    """d<soft, weight>/dlogits of the chain in float64, from the same float32 inputs and noise."""
    logits, weight, mask = inputs(device, batch, k, seed=seed)
    masked = logits if mask is None else logits.masked_fill(~mask, float("-inf"))
    eps = torch.randn(masked.shape, generator=torch.Generator(device=device).manual_seed(seed + 1), device=device)
    leaf = masked.double().requires_grad_(True)
    soft, _ = redge_denoise(leaf, eps.double(), n_steps, t_1)
    (soft * weight.double()).sum().backward()
    return leaf.grad.cpu()


def run(mode, device, batch, k, n_steps, t_1, hard=True, masked=True, dtype=torch.float32, seed=0):
    logits, weight, mask = inputs(device, batch, k, masked, dtype, seed)
    leaf = logits.requires_grad_(True)
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    out = redge(leaf, n_steps, t_1, hard, mask=mask, generator=generator, fast_path=mode)
    (out * weight).sum().backward()
    return out.detach().cpu(), leaf.grad.cpu()


@needs_kernels
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch, k, n_steps, t_1", CASES)
def test_same_hard_samples_and_gradients_as_reference(device, batch, k, n_steps, t_1):
    x_ref, g_ref = run("off", device, batch, k, n_steps, t_1)
    x_tri, g_tri = run("triton", device, batch, k, n_steps, t_1)
    assert torch.equal(x_ref, x_tri)
    assert (x_tri.sum(-1) == 1).all()
    # Both float32 paths against the chain in float64: the kernels' rounding error is no larger
    # than the reference's own (small t_1 makes the chain ill-conditioned: 2e-4 at n=10, t_1=0.1).
    truth = float64_gradient(device, batch, k, n_steps, t_1)
    err_ref = (g_ref.double() - truth).abs().max()
    err_tri = (g_tri.double() - truth).abs().max()
    assert err_tri <= 2 * err_ref + 1e-6 * truth.abs().max()
    assert err_tri <= 1e-3 * truth.abs().max()


@needs_kernels
@pytest.mark.parametrize("device", DEVICES)
def test_soft_sample_and_masked_entries(device):
    x_ref, g_ref = run("off", device, 40, 300, 5, 0.5, hard=False)
    x_tri, g_tri = run("triton", device, 40, 300, 5, 0.5, hard=False)
    assert torch.allclose(x_ref, x_tri, atol=1e-6)
    assert torch.allclose(g_ref, g_tri, atol=1e-6, rtol=1e-4)
    _, g_masked = run("triton", device, 40, 300, 5, 0.5, masked=True)
    assert torch.isfinite(g_masked).all()


@needs_kernels
@pytest.mark.parametrize("device", DEVICES)
def test_batch_shapes_and_dtype(device):
    with fast_path("triton"):
        logits = torch.randn(3, 4, 7, dtype=torch.float64, device=device, requires_grad=True)
        out = redge(logits, 4, 0.3)
        assert out.shape == (3, 4, 7) and out.dtype == torch.float64
        out.sum().backward()
        assert logits.grad.shape == (3, 4, 7)
        empty = torch.randn(0, 5, device=device, requires_grad=True)
        assert redge(empty, 5, 0.5).shape == (0, 5)


@needs_kernels
@pytest.mark.parametrize("device", DEVICES)
def test_sample_law_matches_reference(device):
    """Over many rows the Triton hard samples are the reference's, and near pi: TV 0.003-0.005 for
    the reference on CPU at 100k rows in six seeds (a little bias: see the README's knobs), so
    0.012 leaves room for CUDA's other draws while a temperature of 1.1 (TV 0.033) fails."""
    logits = torch.tensor([2.0, 0.5, -1.0, 0.0, 1.0], device=device).expand(100_000, 5)
    freqs = []
    for mode in ("off", "triton"):
        with fast_path(mode):
            out = redge(logits, 5, 0.5, generator=torch.Generator(device=device).manual_seed(3))
        freqs.append(out.mean(0).cpu())
    assert torch.equal(freqs[0], freqs[1])  # the same draws in the same order
    assert 0.5 * (freqs[1] - logits[0].softmax(-1).cpu()).abs().sum() < 0.012


@pytest.mark.skipif(INTERPRETED or not triton_available(), reason="needs triton; this is the outer run")
def test_interpreter_run_of_this_file_on_cpu():
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "not interpreter and not explains"],  # (that one checks the error without the interpreter)
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary, summary


@pytest.mark.skipif(INTERPRETED or torch.cuda.is_available(), reason="checks the error off CUDA")
def test_triton_mode_on_cpu_explains_what_it_needs():
    with fast_path("triton"), pytest.raises(RuntimeError, match="triton|CUDA"):
        redge(torch.randn(4, 3), 5, 0.5)
    with pytest.raises(RuntimeError, match="triton|CUDA"):
        redge(torch.randn(4, 3), 5, 0.5, fast_path="triton")


@pytest.mark.skipif(not triton_available(), reason="needs triton")
def test_step_limit_agrees_with_the_kernels():
    from rl_diffcat.samplers import triton as kernels

    assert kernels._MAX_STEPS == TRITON_MAX_STEPS - 1  # one limit, in samplers.chain
    with pytest.raises(ValueError, match="n_steps"):
        kernels.redge_triton(torch.zeros(2, 3), torch.zeros(2, 3), None, TRITON_MAX_STEPS + 1, 0.5)
    with pytest.raises(ValueError, match="power of two"):
        kernels.set_launch_options(tile=100)
    # the knobs are checked before the cached coefficient table, and the noise gets no gradient
    with pytest.raises(ValueError, match="n_steps"):
        kernels.redge_triton(torch.zeros(2, 3), torch.zeros(2, 3), None, 5.0, 0.5)
    with pytest.raises(ValueError, match="t_1"):
        kernels.redge_triton(torch.zeros(2, 3), torch.zeros(2, 3), None, 5, 1.5)
    with pytest.raises(ValueError, match="no gradient for eps"):
        kernels.redge_triton(torch.zeros(2, 3), torch.zeros(2, 3, requires_grad=True), None, 5, 0.5)


@pytest.mark.skipif(not triton_available(), reason="needs triton")
def test_launch_config_tiles_rows_and_follows_overrides():
    import triton

    from rl_diffcat.samplers import triton as kernels

    assert all(kernels._next_power_of_2(n) == triton.next_power_of_2(n) for n in range(1, 3000))
    try:
        kernels.set_launch_options()
        assert kernels.launch_config(65536, 18) == (64, 32, 8, 3)  # 64 short rows per 2048 tile
        assert kernels.launch_config(3, 18) == (4, 32, 1, 3)  # no more rows than the batch
        assert kernels.launch_config(256, 262144) == (1, 2048, 8, 3)  # a long row streams
        kernels.set_launch_options(tile=256, stages=1)
        assert kernels.launch_config(256, 262144) == (1, 256, 1, 1)
    finally:
        kernels.set_launch_options()


def test_auto_never_picks_triton_off_cuda():
    assert samplers._fused_mode(torch.device("cpu"), 5) is None


def test_auto_picks_triton_on_cuda_when_it_can(monkeypatch):
    """``auto`` on CUDA: the Triton kernels if triton imports and n_steps fits their unrolled
    chain, else the compiled fused chain (decided without touching a GPU)."""
    cuda = torch.device("cuda")
    monkeypatch.setattr(samplers, "triton_available", lambda: True)
    assert samplers._fused_mode(cuda, 5) == "triton"
    assert samplers._fused_mode(cuda, TRITON_MAX_STEPS) == "triton"
    assert samplers._fused_mode(cuda, TRITON_MAX_STEPS + 1) == "compiled"
    monkeypatch.setattr(samplers, "triton_available", lambda: False)
    assert samplers._fused_mode(cuda, 5) == "compiled"
    assert samplers._fused_mode(cuda, 5, "off") is None  # a call's fast_path wins over the default

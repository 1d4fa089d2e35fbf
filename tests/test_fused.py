"""The fused ReDGE chain (hand-written backward, compiled on CUDA) equals the autograd reference."""

import pytest
import torch

from conftest import requires_cuda
from rl_diffcat import samplers
from rl_diffcat.samplers import fast_path, redge, redge_denoise
from rl_diffcat.samplers.fused import redge_soft_fused


@pytest.mark.parametrize("n_steps, t_1", [(2, 0.5), (5, 0.5), (10, 0.1), (3, 0.9)])
def test_fused_chain_matches_reference_in_float64(n_steps, t_1):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(128, 9, generator=gen, dtype=torch.float64)
    logits[:, 2] = float("-inf")  # masked entries stay exact zeros with zero gradient
    x_start = torch.randn(128, 9, generator=gen, dtype=torch.float64)
    weight = torch.randn(128, 9, generator=gen, dtype=torch.float64)
    ref_leaf, fused_leaf = logits.clone().requires_grad_(True), logits.clone().requires_grad_(True)
    ref_x, fused_x = x_start.clone().requires_grad_(True), x_start.clone().requires_grad_(True)
    soft_ref, _ = redge_denoise(ref_leaf, ref_x, n_steps, t_1)
    soft_fused = redge_soft_fused(fused_leaf, fused_x, n_steps, t_1, compiled=False)
    (soft_ref * weight).sum().backward()
    (soft_fused * weight).sum().backward()
    assert torch.allclose(soft_ref, soft_fused, atol=1e-12)
    assert torch.allclose(ref_leaf.grad, fused_leaf.grad, atol=1e-10)
    assert (fused_leaf.grad[:, 2] == 0).all()
    # The starting noise gets the reference's gradient too (a caller may learn or reuse it).
    assert torch.allclose(ref_x.grad, fused_x.grad, atol=1e-10)


def test_fused_chain_checks_its_knobs_whatever_is_cached():
    logits, x_start = torch.randn(4, 3), torch.randn(4, 3)
    redge_soft_fused(logits, x_start, 5, 0.5, compiled=False)  # caches (5, 0.5)
    with pytest.raises(ValueError, match="n_steps"):
        redge_soft_fused(logits, x_start, 5.0, 0.5, compiled=False)
    with pytest.raises(ValueError, match="t_1"):
        redge_soft_fused(logits, x_start, 5, torch.tensor(0.5), compiled=False)


def run_redge(mode, device="cpu"):
    with fast_path(mode):
        logits = torch.randn(512, 18, generator=torch.Generator().manual_seed(1)).to(device).requires_grad_(True)
        gen = torch.Generator(device=device).manual_seed(2)
        x = redge(logits, 5, 0.5, generator=gen)
        (x * torch.arange(18.0, device=device)).sum().backward()
        return x.detach().cpu(), logits.grad.cpu()


def test_redge_gives_the_same_samples_and_gradients_on_both_paths():
    x_ref, g_ref = run_redge("off")
    x_fused, g_fused = run_redge("eager")
    assert torch.equal(x_ref, x_fused)
    assert torch.allclose(g_ref, g_fused, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_compiled_path_matches_reference_on_cpu():
    """torch.compile on CPU (tens of seconds of compilation, hence slow)."""
    x_ref, g_ref = run_redge("off")
    x_fused, g_fused = run_redge("compiled")
    assert torch.equal(x_ref, x_fused)
    assert torch.allclose(g_ref, g_fused, atol=1e-5, rtol=1e-4)


@requires_cuda
def test_compiled_path_matches_reference_on_cuda():
    x_ref, g_ref = run_redge("off", "cuda")
    x_fused, g_fused = run_redge("compiled", "cuda")
    assert torch.equal(x_ref, x_fused)
    assert torch.allclose(g_ref, g_fused, atol=1e-4, rtol=1e-3)


def test_bad_fast_path_mode():
    with pytest.raises(ValueError, match="fast path mode"):
        samplers.set_fast_path("fast")
    with pytest.raises(ValueError, match="fast path mode"):
        fast_path("fast")  # checked when the context manager is made, before any block runs
    with pytest.raises(ValueError, match="fast path mode"):
        redge(torch.randn(2, 3), fast_path="fast")

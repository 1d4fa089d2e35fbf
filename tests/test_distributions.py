"""DiffusionCategorical / MultiDiffusionCategorical behave like torch's OneHotCategorical."""

import pytest
import torch
from torch.distributions import OneHotCategorical

from rl_diffcat.distributions import DiffusionCategorical, MultiDiffusionCategorical, indices_to_one_hot
from rl_diffcat.samplers import SAMPLERS

BATCH_SHAPES = [(), (7,), (3, 4)]


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_shapes_and_densities_match_one_hot_categorical(batch_shape, sampler):
    logits = torch.randn(*batch_shape, 6)
    ours, ref = DiffusionCategorical(logits=logits, sampler=sampler), OneHotCategorical(logits=logits)
    assert ours.batch_shape == ref.batch_shape and ours.event_shape == ref.event_shape
    for sample_shape in [(), (5,), (2, 3)]:
        x = ours.rsample(sample_shape)
        assert x.shape == ref.sample(sample_shape).shape == ours.sample(sample_shape).shape
        assert torch.allclose(ours.log_prob(x), ref.log_prob(x))
    assert torch.allclose(ours.entropy(), ref.entropy())
    assert torch.allclose(ours.probs, ref.probs)
    assert torch.equal(ours.mode, ref.mode)
    assert torch.allclose(ours.logits.exp().sum(-1), torch.ones(batch_shape))


def test_probs_parameterization_equals_logits():
    probs = torch.softmax(torch.randn(4, 5), -1)
    a, b = DiffusionCategorical(probs=probs), DiffusionCategorical(logits=probs.log())
    assert torch.allclose(a.logits, b.logits) and torch.allclose(a.entropy(), b.entropy())
    with pytest.raises(ValueError, match="exactly one"):
        DiffusionCategorical(probs=probs, logits=probs.log())


def test_rsample_is_pathwise_and_sample_is_not():
    logits = torch.randn(3, 5, requires_grad=True)
    dist = DiffusionCategorical(logits=logits)
    assert dist.has_rsample
    x = dist.rsample((4,))
    assert x.requires_grad and set(x.unique().tolist()) <= {0.0, 1.0}
    (x * torch.arange(5.0)).sum().backward()
    assert logits.grad.abs().sum() > 0
    assert not dist.sample((4,)).requires_grad


def test_sample_follows_pi_exactly_whatever_the_sampler_knobs():
    """`sample` draws from Cat(pi) itself, even where ReDGE's hard samples are biased (n=3, t_1=0.1)."""
    logits = torch.randn(10, generator=torch.Generator().manual_seed(0))
    dist = DiffusionCategorical(logits=logits, n_steps=3, t_1=0.1, generator=torch.Generator().manual_seed(1))
    freq = dist.sample((100_000,)).mean(0)
    assert (freq - dist.probs).abs().sum() / 2 < 0.01


def test_mask_respected_by_every_method():
    logits = torch.tensor([[5.0, 0.0, 1.0, 2.0]]).repeat(4, 1)
    mask = torch.tensor([False, True, True, True])
    dist = DiffusionCategorical(logits=logits, mask=mask)
    assert (dist.mode.argmax(-1) == 3).all()
    assert dist.probs[:, 0].sum() == 0
    assert dist.rsample((500,))[..., 0].sum() == 0 and dist.sample((500,))[..., 0].sum() == 0
    ref = OneHotCategorical(logits=logits[:, 1:])
    assert torch.allclose(dist.entropy(), ref.entropy())
    assert torch.isinf(dist.log_prob(torch.eye(4)[0].expand(4, 4))).all()


def test_probs_with_zeros_give_finite_gradients_zero_at_the_zeros():
    probs = torch.tensor([0.0, 0.3, 0.7], requires_grad=True)
    dist = DiffusionCategorical(probs=probs)
    assert not dist.mask[0] and dist.log_prob(torch.tensor([1.0, 0.0, 0.0])) == float("-inf")
    (dist.entropy() + dist.log_prob(torch.tensor([0.0, 1.0, 0.0]))).backward()
    assert torch.isfinite(probs.grad).all() and probs.grad[0] == 0  # log(0) made them all NaN


def test_float64_logits_are_normalized_at_float64_precision():
    logits = torch.tensor([[0.0, 1e-9, -3.0]], dtype=torch.float64)
    ours, torchs = DiffusionCategorical(logits=logits), OneHotCategorical(logits=logits)
    assert ours.logits.dtype == torch.float64
    torch.testing.assert_close(ours.logits, torchs.logits, rtol=1e-14, atol=0)
    assert ours.logits[0, 0] != ours.logits[0, 1]  # 1e-9 apart: lost at float32


def test_float64_logits_past_float32_range_keep_their_law():
    """Finite float64 logits beyond 3.4e38 were +inf (refused) or -inf (taken for masked) in the float32 checks."""
    assert DiffusionCategorical(logits=torch.tensor([0.0, 1e39], dtype=torch.float64)).probs.tolist() == [0.0, 1.0]
    logits = torch.tensor([-1e39, -1e39], dtype=torch.float64, requires_grad=True)
    dist = DiffusionCategorical(logits=logits)
    assert dist.probs.tolist() == [0.5, 0.5] and dist.mask.all()
    dist.log_prob(torch.tensor([1.0, 0.0], dtype=torch.float64)).backward()
    assert logits.grad.tolist() == [0.5, -0.5]
    with pytest.raises(ValueError, match=r"\+inf"):  # a true infinity is still refused
        DiffusionCategorical(logits=torch.tensor([0.0, float("inf")], dtype=torch.float64))


def test_float64_shift_into_float32_range_ignores_masked_logits():
    """A huge masked-out logit set the shift: the valid ones went to -1e17 in float32, and the law
    was uniform over them ([0.5, 0.5] instead of softmax([0, 2]) = [0.119, 0.881])."""
    logits = torch.tensor([0.0, 2.0, 1e17], dtype=torch.float64)
    dist = DiffusionCategorical(logits=logits, mask=torch.tensor([True, True, False]))
    expected = torch.tensor([0.0, 2.0]).double().softmax(-1)
    torch.testing.assert_close(dist.probs[:2], expected, rtol=1e-12, atol=0)
    assert dist.probs[2] == 0 and dist.mask.tolist() == [True, True, False]
    x = dist.rsample((20_000,))
    assert x[:, 2].sum() == 0 and x[:, 1].mean().item() == pytest.approx(0.881, abs=0.01)


def test_logits_at_the_edge_of_float32_range_keep_exact_log_probs():
    """Found by tests/test_properties.py: next to 3e38, log(2) is below float32's resolution and
    [3e38, 3e38] got log-probabilities [0, 0]; [3.4e38, -3.4e38] normalized to [0, -inf] with the
    second action still valid, and the entropy was 0 * -inf = NaN."""
    dist = DiffusionCategorical(logits=torch.tensor([3e38, 3e38]))
    torch.testing.assert_close(dist.logits, torch.full((2,), -0.6931472))
    dist = DiffusionCategorical(logits=torch.tensor([3.4e38, -3.4e38]))
    assert dist.entropy().item() == 0.0 and dist.mask.tolist() == [True, False]
    assert dist.log_prob(torch.tensor([0.0, 1.0])) == float("-inf")
    # below HUGE_LOGIT the arithmetic is torch's own, bit for bit (SB3's PPO trains identically with
    # the drop-in policy), rounding included: next to 16, the 8e-7 of the exact log-probability is lost
    logits = torch.tensor([[2.0, 16.0], [-3.0, 250.0]])
    assert torch.equal(DiffusionCategorical(logits=logits).logits, OneHotCategorical(logits=logits).logits)


def test_float64_logits_far_below_the_largest_keep_their_log_prob_and_masked_ones_may_be_huge():
    """Found by tests/test_properties.py: a masked 1.7e308 was refused as +inf (or the whole row taken
    for masked), and a valid float64 logit 1.7e308 below the largest got log-probability -inf (its
    log_prob and gradient differed from OneHotCategorical's)."""
    logits = torch.tensor([0.0, 1.0, 1.7e308], dtype=torch.float64)
    dist = DiffusionCategorical(logits=logits, mask=torch.tensor([True, True, False]))
    torch.testing.assert_close(dist.probs, OneHotCategorical(logits=torch.tensor([0.0, 1.0, -float("inf")]).double()).probs)
    logits = torch.tensor([0.0, -1.7e308], dtype=torch.float64, requires_grad=True)
    dist = DiffusionCategorical(logits=logits)
    assert dist.logits.tolist() == [0.0, -1.7e308] and dist.mask.all()
    dist.log_prob(torch.tensor([0.0, 1.0], dtype=torch.float64)).backward()
    assert logits.grad.tolist() == [-1.0, 1.0]  # as OneHotCategorical's
    assert (dist.sample((100,))[:, 1] == 0).all() and (dist.rsample((100,))[:, 1] == 0).all()


def test_half_precision_log_probs_below_range_count_as_zero_probability():
    dist = DiffusionCategorical(logits=torch.tensor([6e4, -6e4], dtype=torch.float16))
    assert dist.logits[1] == float("-inf") and not dist.mask[1]
    assert dist.entropy().item() == 0.0 and dist.sample().tolist() == [1.0, 0.0]  # not NaN


def test_expand_and_enumerate_support():
    dist = DiffusionCategorical(logits=torch.randn(3, 5), sampler="gumbel_softmax", tau=0.5)
    big = dist.expand((2, 3))
    assert big.batch_shape == (2, 3) and big.sampler == "gumbel_softmax" and big.tau == 0.5
    checked = DiffusionCategorical(logits=torch.randn(5), validate_args=True).expand((2,))
    with pytest.raises(ValueError):  # expand keeps the value checks, as torch's expand does
        checked.log_prob(torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0]))
    support = dist.enumerate_support()
    assert support.shape == (5, 3, 5)
    assert torch.allclose(dist.log_prob(support).exp().sum(0), torch.ones(3))


def test_validate_args_rejects_non_one_hot_values():
    dist = DiffusionCategorical(logits=torch.randn(5), validate_args=True)
    with pytest.raises(ValueError):
        dist.log_prob(torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0]))


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="t_1"):
        DiffusionCategorical(logits=torch.randn(4), t_1=1.5)
    with pytest.raises(ValueError, match="valid names"):
        DiffusionCategorical(logits=torch.randn(4), sampler="nope")
    with pytest.raises(ValueError, match="NaN"):
        DiffusionCategorical(logits=torch.tensor([0.0, float("nan")]))


ACTION_DIMS = [3, 5, 2]


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
def test_multi_factor_sums_log_prob_and_entropy(batch_shape):
    logits = torch.randn(*batch_shape, sum(ACTION_DIMS), requires_grad=True)
    dist = MultiDiffusionCategorical(logits, ACTION_DIMS)
    refs = [OneHotCategorical(logits=part) for part in torch.split(logits, ACTION_DIMS, -1)]
    x = dist.rsample()
    assert x.shape == (*batch_shape, sum(ACTION_DIMS)) and x.requires_grad
    parts = torch.split(x, ACTION_DIMS, -1)
    assert torch.allclose(dist.log_prob(x), sum(r.log_prob(p) for r, p in zip(refs, parts)))
    assert torch.allclose(dist.entropy(), sum(r.entropy() for r in refs))
    indices = dist.to_indices(x)
    assert indices.shape == (*batch_shape, 3) and torch.equal(dist.from_indices(indices), x.detach())
    assert torch.equal(dist.to_indices(dist.mode), torch.stack([r.mode.argmax(-1) for r in refs], -1))


# Runs of equal sizes: blocks (3, 3), (2,), (4, 4, 4) are each sampled in one call.
BLOCK_DIMS = [3, 3, 2, 4, 4, 4]


@pytest.mark.parametrize("batch_shape", BATCH_SHAPES)
@pytest.mark.parametrize("sampler", ["redge", "gumbel_softmax", "reindge"])
def test_blocks_of_equal_factors_keep_every_factor_apart(batch_shape, sampler):
    """Factors sampled together in one block have the densities, masks and shapes of separate
    factors, and one factor's sample carries no gradient into another factor's logits."""
    logits = torch.randn(*batch_shape, sum(BLOCK_DIMS), requires_grad=True)
    mask = torch.ones(sum(BLOCK_DIMS), dtype=torch.bool)
    mask[[1, 9, 14]] = False  # one action masked in the first (3, 3) block and two in the (4, 4, 4) block
    dist = MultiDiffusionCategorical(logits, BLOCK_DIMS, mask=mask, sampler=sampler)
    assert dist.blocks_dims == [(3, 2), (2, 1), (4, 3)]
    refs = [
        OneHotCategorical(logits=part.masked_fill(~m, float("-inf")))
        for part, m in zip(torch.split(logits, BLOCK_DIMS, -1), torch.split(mask, BLOCK_DIMS))
    ]
    assert torch.allclose(dist.probs, torch.cat([r.probs for r in refs], -1))
    assert torch.allclose(dist.entropy(), sum(r.entropy() for r in refs))
    assert torch.equal(dist.mode_indices, torch.stack([r.mode.argmax(-1) for r in refs], -1))
    x = dist.rsample((5,))
    assert x.shape == (5, *batch_shape, sum(BLOCK_DIMS)) and (x.detach()[..., ~mask] == 0).all()
    parts = torch.split(x, BLOCK_DIMS, -1)
    assert all(torch.equal(p.detach().sum(-1), torch.ones(5, *batch_shape)) for p in parts), "one 1 per factor"
    assert torch.allclose(dist.log_prob(x), sum(r.log_prob(p) for r, p in zip(refs, parts)))
    indices = dist.sample_indices((5,))
    assert indices.shape == (5, *batch_shape, len(BLOCK_DIMS))
    assert torch.equal(dist.from_indices(indices)[..., ~mask], torch.zeros(5, *batch_shape, 3))
    # the gradient of factor 4 (the middle factor of the last block) reaches only its own logits
    (grad,) = torch.autograd.grad((parts[4] * torch.randn_like(parts[4])).sum(), logits)
    start = sum(BLOCK_DIMS[:4])
    outside = torch.ones(sum(BLOCK_DIMS), dtype=torch.bool)
    outside[start : start + 4] = False
    assert (grad[..., outside] == 0).all() and grad[..., ~outside].abs().sum() > 0


def test_factors_in_one_block_are_independent_with_the_right_marginals():
    """Two factors of one block: the hard ReDGE samples' joint law is the product of the marginals
    (n_steps=5, t_1=0.5, where the law of the hard sample is close to pi)."""
    torch.manual_seed(0)
    logits = torch.tensor([[1.0, 0.0, -1.0, 0.5, 0.5, -0.5]])
    dist = MultiDiffusionCategorical(logits.expand(40_000, 6), [3, 3])
    indices = dist.to_indices(dist.rsample().detach())
    probs = torch.softmax(logits.view(2, 3), -1)
    joint = torch.zeros(3, 3)
    joint.index_put_((indices[:, 0], indices[:, 1]), torch.ones(len(indices)), accumulate=True)
    joint /= len(indices)
    # standard error of a cell is at most sqrt(0.25 / 40k) = 0.0025: 0.012 is about 5 of them
    assert (joint - probs[0, :, None] * probs[1, None, :]).abs().max() < 0.012
    assert (joint.sum(1) - probs[0]).abs().max() < 0.012 and (joint.sum(0) - probs[1]).abs().max() < 0.012


def test_multi_factor_accepts_logits_list_and_checks_sizes():
    parts = [torch.randn(4, k) for k in ACTION_DIMS]
    dist = MultiDiffusionCategorical(parts)
    assert dist.action_dims == ACTION_DIMS and dist.sample((2,)).shape == (2, 4, 10)
    with pytest.raises(ValueError, match="sum to"):
        MultiDiffusionCategorical(torch.randn(4, 9), ACTION_DIMS)
    with pytest.raises(ValueError, match="action_dims"):
        MultiDiffusionCategorical(torch.randn(4, 9), [])
    with pytest.raises(ValueError, match="factors"):
        indices_to_one_hot(torch.zeros(4, 2, dtype=torch.long), ACTION_DIMS)
    with pytest.raises(ValueError, match=r"mask of shape \(4, 9\) does not match"):
        MultiDiffusionCategorical(torch.randn(4, 10), ACTION_DIMS, mask=torch.ones(4, 9, dtype=torch.bool))


def test_multi_factor_mask_must_be_a_tensor():
    import numpy as np

    with pytest.raises(ValueError, match="mask must be a bool tensor, got ndarray"):
        MultiDiffusionCategorical(torch.randn(4, 10), ACTION_DIMS, mask=np.ones((4, 10), dtype=bool))


def test_multi_factor_expand_keeps_logits_mask_and_knobs():
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[:, 0] = False  # first action of the first factor
    dist = MultiDiffusionCategorical(torch.randn(3, 10), ACTION_DIMS, mask=mask, sampler="gumbel_softmax", tau=0.5)
    big = dist.expand((2, 3))
    assert big.batch_shape == (2, 3) and big.action_dims == ACTION_DIMS
    assert all(block.sampler == "gumbel_softmax" and block.tau == 0.5 for block in big.blocks)
    torch.testing.assert_close(big.logits, dist.logits.expand(2, 3, 10))
    samples = big.sample((500,))
    assert samples.shape == (500, 2, 3, 10) and samples[..., 0].sum() == 0, "the mask travels with expand"
    torch.testing.assert_close(big.log_prob(samples), dist.log_prob(samples))


def test_kl_divergence_matches_one_hot_categorical_and_sums_over_factors():
    from torch.distributions import kl_divergence

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 5, generator=gen, requires_grad=True), torch.randn(4, 5, generator=gen)
    kl = kl_divergence(DiffusionCategorical(logits=a), DiffusionCategorical(logits=b))
    torch.testing.assert_close(kl, kl_divergence(OneHotCategorical(logits=a), OneHotCategorical(logits=b)))
    mask = torch.tensor([True, True, False, True, True])
    # an action only p masks adds nothing, and its logit gets no gradient (not NaN)
    masked_kl = kl_divergence(DiffusionCategorical(logits=a, mask=mask), DiffusionCategorical(logits=b))
    p = torch.softmax(a.detach().masked_fill(~mask, float("-inf")), -1)
    expected = (p * (p.clamp_min(1e-30).log() - torch.log_softmax(b, -1)) * mask).sum(-1)
    torch.testing.assert_close(masked_kl, expected)
    masked_kl.sum().backward()
    assert torch.isfinite(a.grad).all() and (a.grad[:, 2] == 0).all()
    # an action p may take and q masks: infinite, as OneHotCategorical's
    assert torch.isinf(kl_divergence(DiffusionCategorical(logits=b), DiffusionCategorical(logits=b, mask=mask))).all()
    # factors: the sum of each factor's KL
    x, y = torch.randn(3, 10, generator=gen), torch.randn(3, 10, generator=gen)
    multi_kl = kl_divergence(MultiDiffusionCategorical(x, ACTION_DIMS), MultiDiffusionCategorical(y, ACTION_DIMS))
    per_factor = [
        kl_divergence(OneHotCategorical(logits=xp), OneHotCategorical(logits=yp))
        for xp, yp in zip(torch.split(x, ACTION_DIMS, -1), torch.split(y, ACTION_DIMS, -1))
    ]
    torch.testing.assert_close(multi_kl, sum(per_factor))
    with pytest.raises(ValueError, match="same factors"):
        kl_divergence(MultiDiffusionCategorical(x, ACTION_DIMS), MultiDiffusionCategorical(y, [5, 5]))


def test_masked_entropy_has_finite_gradient():
    logits = torch.randn(4, 5, requires_grad=True)
    mask = torch.tensor([True, False, True, True, False])
    DiffusionCategorical(logits=logits, mask=mask).entropy().sum().backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[:, ~mask] == 0).all()


def test_explicit_validation_survives_torch_compile():
    """torch.compile's first call turns torch.distributions' default validation off for the process;
    validate_args=True still checks (the README says so)."""
    torch.compile(lambda x: x + 1, backend="eager")(torch.ones(1))
    with pytest.raises(ValueError, match="NaN"):
        DiffusionCategorical(logits=torch.tensor([0.0, float("nan")]), validate_args=True)


def test_index_sampling_is_the_one_hot_sampling_without_the_one_hot():
    """sample_indices() = to_indices(sample()) from the same generator state (so acting through
    indices changes no trajectory), and mode_indices = to_indices(mode), masks respected."""
    logits = 3 * torch.randn(64, 7, generator=torch.Generator().manual_seed(0))
    logits[0, :2] = float("-inf")
    mask = torch.ones(64, 7, dtype=torch.bool)
    mask[1, 3:6] = False
    dist = MultiDiffusionCategorical(logits, [3, 4], mask=mask)
    torch.manual_seed(1)
    expected = dist.to_indices(dist.sample((5,)))
    torch.manual_seed(1)
    indices = dist.sample_indices((5,))
    assert torch.equal(indices, expected) and indices.shape == (5, 64, 2) and indices.dtype == torch.int64
    assert (indices[:, 0, 0] == 2).all() and (indices[:, 1, 1] == 3).all()  # only valid actions
    assert torch.equal(dist.mode_indices, dist.to_indices(dist.mode))

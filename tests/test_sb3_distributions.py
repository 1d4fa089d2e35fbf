"""The SB3 distribution contract: same numbers as SB3's categorical distributions, plus rsample and masks."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import (
    BernoulliDistribution,
    CategoricalDistribution,
    MultiCategoricalDistribution,
)

from rl_diffcat.samplers import SAMPLERS
from rl_diffcat.sb3 import (
    DiffusionCategoricalDistribution,
    MultiDiffusionCategoricalDistribution,
    make_diffcat_distribution,
)

BATCH = 64
SPACES = [spaces.Discrete(2), spaces.Discrete(18), spaces.MultiDiscrete([3, 5, 2]), spaces.MultiBinary(4)]
IDS = ["Discrete(2)", "Discrete(18)", "MultiDiscrete(3,5,2)", "MultiBinary(4)"]


def n_logits(space: spaces.Space) -> int:
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(space.nvec.sum())
    return 2 * int(space.n)


def action_shape(space: spaces.Space) -> tuple:
    if isinstance(space, spaces.Discrete):
        return (BATCH,)
    if isinstance(space, spaces.MultiDiscrete):
        return (BATCH, len(space.nvec))
    return (BATCH, int(space.n))


def references(space: spaces.Space, logits: th.Tensor) -> list:
    """SB3 distributions with the same law as ours on ``logits``."""
    if isinstance(space, spaces.Discrete):
        return [CategoricalDistribution(int(space.n)).proba_distribution(logits)]
    if isinstance(space, spaces.MultiDiscrete):
        return [MultiCategoricalDistribution(space.nvec.tolist()).proba_distribution(logits)]
    # MultiBinary: factor logits (l0, l1) are a Bernoulli with logit l1 - l0.
    pairs = logits.view(logits.shape[0], -1, 2)
    return [
        BernoulliDistribution(int(space.n)).proba_distribution(pairs[..., 1] - pairs[..., 0]),
        MultiCategoricalDistribution([2] * int(space.n)).proba_distribution(logits),
    ]


@pytest.fixture(params=SPACES, ids=IDS)
def space(request):
    return request.param


@pytest.fixture
def logits(space):
    return th.randn(BATCH, n_logits(space), generator=th.Generator().manual_seed(0)) * 2.0


def test_factory_picks_the_class(space):
    dist = make_diffcat_distribution(space)
    expected = DiffusionCategoricalDistribution if isinstance(space, spaces.Discrete) else MultiDiffusionCategoricalDistribution
    assert type(dist) is expected
    layer = dist.proba_distribution_net(latent_dim=7)
    assert (layer.in_features, layer.out_features) == (7, n_logits(space))


@pytest.mark.parametrize("deterministic", [False, True])
def test_actions_are_integer_indices_in_the_space(space, logits, deterministic):
    dist = make_diffcat_distribution(space).proba_distribution(logits)
    actions = dist.get_actions(deterministic=deterministic)
    assert actions.shape == action_shape(space)
    assert actions.dtype == th.int64
    assert all(space.contains(a.astype(space.dtype)) for a in actions.numpy())


def test_log_prob_and_entropy_equal_sb3(space, logits):
    dist = make_diffcat_distribution(space).proba_distribution(logits)
    actions = dist.sample()
    for ref in references(space, logits):
        ref_actions = actions.float() if isinstance(ref, BernoulliDistribution) else actions
        assert dist.log_prob(actions).shape == (BATCH,)
        th.testing.assert_close(dist.log_prob(actions), ref.log_prob(ref_actions))
        th.testing.assert_close(dist.entropy(), ref.entropy())
        # SB3 stores actions as floats in its rollout buffers.
        th.testing.assert_close(dist.log_prob(actions.float()), ref.log_prob(ref_actions))


def test_deterministic_actions_are_argmax(space, logits):
    dist = make_diffcat_distribution(space).proba_distribution(logits)
    for ref in references(space, logits):
        assert th.equal(dist.mode(), ref.mode().long())
    assert th.equal(dist.get_actions(deterministic=True), dist.mode())


def test_from_params_methods(space, logits):
    dist = make_diffcat_distribution(space)
    assert th.equal(dist.actions_from_params(logits, deterministic=True), dist.mode())
    actions, log_prob = dist.log_prob_from_params(logits)
    assert actions.shape == action_shape(space)
    th.testing.assert_close(log_prob, dist.log_prob(actions))


def test_sample_draws_like_sb3_under_the_same_seed(space, logits):
    """``sample`` uses SB3's own ``torch.multinomial`` draw, so seeded runs reproduce SB3's."""
    dist = make_diffcat_distribution(space).proba_distribution(logits)
    ref = references(space, logits)[-1]  # categorical references (Bernoulli samples differently)
    th.manual_seed(123)
    ours = dist.sample()
    th.manual_seed(123)
    assert th.equal(ours, ref.sample())


def test_sample_follows_the_categorical_law():
    probs = th.tensor([0.05, 0.15, 0.3, 0.5])
    dist = DiffusionCategoricalDistribution(4).proba_distribution(probs.log().expand(40_000, 4))
    th.manual_seed(0)
    freq = th.bincount(dist.sample(), minlength=4).float() / 40_000
    # 5 standard errors of a frequency estimate from 40k draws.
    assert th.all((freq - probs).abs() < 5 * (probs * (1 - probs) / 40_000).sqrt())


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_rsample_is_a_one_hot_with_pathwise_gradient(space, logits, sampler):
    logits = logits.clone().requires_grad_(True)
    dist = make_diffcat_distribution(space, sampler=sampler).proba_distribution(logits)
    one_hot = dist.rsample()
    assert one_hot.shape == logits.shape
    actions = dist.one_hot_to_actions(one_hot)
    assert actions.shape == action_shape(space)
    assert th.equal(dist.actions_to_one_hot(actions), one_hot.detach())
    # Each factor's block holds exactly one 1.
    n_factors = 1 if isinstance(space, spaces.Discrete) else action_shape(space)[1]
    assert th.all(one_hot.detach().sum(-1) == n_factors)
    weights = th.randn(logits.shape, generator=th.Generator().manual_seed(1))
    (one_hot * weights).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_masked_actions_are_never_chosen(space, logits):
    gen = th.Generator().manual_seed(2)
    mask = th.rand(logits.shape, generator=gen) > 0.4
    dist = make_diffcat_distribution(space)
    # Each factor keeps at least its first action valid.
    starts = np.cumsum([0] + list(dist.action_dims))[:-1] if hasattr(dist, "action_dims") else [0]
    mask[:, starts] = True
    dist.proba_distribution(logits, action_masks=mask.numpy())
    one_hots = [dist.actions_to_one_hot(dist.sample()), dist.actions_to_one_hot(dist.mode()), dist.rsample().detach()]
    for one_hot in one_hots:
        assert not (one_hot.bool() & ~mask).any()
    masked_logits = logits.masked_fill(~mask, float("-inf"))
    ref = references(space, masked_logits)[-1]
    actions = dist.sample()
    th.testing.assert_close(dist.log_prob(actions), ref.log_prob(actions))
    # Entropy over the valid actions only (masked ones contribute 0, not NaN).
    factors = ref.distribution if isinstance(ref.distribution, list) else [ref.distribution]
    probs = th.cat([f.probs for f in factors], dim=-1)
    th.testing.assert_close(dist.entropy(), -(probs * probs.clamp_min(1e-30).log()).sum(-1))
    # Removing the mask gives back the unmasked law.
    dist.apply_masking(None)
    th.testing.assert_close(dist.entropy(), references(space, logits)[-1].entropy())


def test_sampler_knobs_are_stored():
    dist = DiffusionCategoricalDistribution(3, n_steps=7, t_1=0.3, sampler="redge_cov")
    dist.proba_distribution(th.zeros(2, 3))
    assert (dist.distribution.sampler, dist.distribution.n_steps, dist.distribution.t_1) == ("redge_cov", 7, 0.3)


@pytest.mark.parametrize(
    "bad_space",
    [
        spaces.Box(-1, 1, (3,)),
        spaces.Tuple([spaces.Discrete(2)]),
        spaces.MultiBinary([2, 3]),
        spaces.Discrete(3, start=1),
        spaces.MultiDiscrete([[2, 3], [4, 5]]),
    ],
    ids=["Box", "Tuple", "MultiBinary2d", "DiscreteStart1", "MultiDiscrete2d"],
)
def test_unsupported_spaces_raise_value_error(bad_space):
    with pytest.raises(ValueError, match=type(bad_space).__name__):
        make_diffcat_distribution(bad_space)


def test_box_error_says_what_to_use_instead():
    with pytest.raises(ValueError, match="MlpPolicy"):
        make_diffcat_distribution(spaces.Box(-1, 1, (3,)))


@pytest.mark.parametrize("cls, arg", [(DiffusionCategoricalDistribution, 3), (MultiDiffusionCategoricalDistribution, [2, 3])])
def test_invalid_sampler_name_lists_the_valid_ones(cls, arg):
    with pytest.raises(ValueError, match="valid names: .*redge_cov.*straight_through"):
        cls(arg, sampler="not_a_sampler")


def test_invalid_knob_raises():
    with pytest.raises(ValueError, match="t_1"):
        DiffusionCategoricalDistribution(3, t_1=1.5)


def test_masked_entropy_and_log_prob_have_finite_gradients(space, logits):
    """MaskablePPO differentiates the entropy bonus: masked (-inf) logits must not leak NaN."""
    logits = logits.clone().requires_grad_(True)
    mask = th.ones(logits.shape, dtype=th.bool)
    mask[:, -1] = False  # the last action of the last factor is invalid
    dist = make_diffcat_distribution(space).proba_distribution(logits, action_masks=mask)
    (dist.entropy() + dist.log_prob(dist.sample())).sum().backward()
    assert th.isfinite(logits.grad).all()
    assert th.all(logits.grad[:, -1] == 0)


def test_masks_of_the_wrong_size_are_a_clear_error():
    dist = make_diffcat_distribution(spaces.Discrete(2))
    with pytest.raises(ValueError, match=r"action masks of shape \(3,\) do not fit the action logits of shape \(3, 2\)"):
        dist.proba_distribution(th.zeros(3, 2), action_masks=np.array([True, False, True]))
    dist.proba_distribution(th.zeros(3, 2), action_masks=np.ones(6, dtype=bool))  # flat, one per action: reshaped

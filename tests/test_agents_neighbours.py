"""DiffCatSAC's neighbour values: the reference definition, and every fast path held to it.

``neighbour_values_reference`` builds the one-hots that switch one factor and calls the critic once;
``neighbour_values`` gets the same values by a broadcast, a pair table or a gather, each in float32
or with bfloat16 hidden products (``agents/diffcat_sac/neighbours.py``)."""

import pytest
import torch as th
from gymnasium import spaces

from conftest import requires_cuda
from rl_diffcat.agents import DiffCatSAC
from rl_diffcat.agents.diffcat_sac.neighbours import neighbour_values_reference
from rl_diffcat.agents.diffcat_sac.policies import OneHotCritic
from test_agents import SMALL, FactoredEnv

NVECS = [[2, 3, 4], [3, 3, 3], [5], [2, 1, 3]]


def _model_and_actions(nvec, device, batch=6, net_arch=(16, 16)):
    space = spaces.MultiDiscrete(nvec)
    model = DiffCatSAC("MlpPolicy", FactoredEnv(space), seed=0, device=device, **{**SMALL, "policy_kwargs": dict(net_arch=list(net_arch))})
    generator = th.Generator().manual_seed(1)
    obs = th.rand(batch, 4, generator=generator).to(device)
    actions = th.stack([th.randint(0, k, (batch,), generator=generator) for k in nvec], dim=1).to(device)
    return model, obs, actions


@pytest.mark.parametrize("nvec", NVECS)
def test_reference_switches_one_factor_at_a_time(nvec):
    """The reference against its definition spelled as loops: column ``j`` of factor ``i`` is the
    critic at ``a`` with factor ``i`` set to ``j``'s category."""
    model, obs, actions = _model_and_actions(nvec, "cpu")
    with th.no_grad():
        values = neighbour_values_reference(model.critic, obs, model.buffer_one_hot(actions))
        column = 0
        for factor, k in enumerate(nvec):
            for category in range(k):
                switched = actions.clone()
                switched[:, factor] = category
                for got, want in zip(values, model.critic(obs, model.buffer_one_hot(switched))):
                    th.testing.assert_close(got[:, column], want.squeeze(-1))  # other batch shape: last bits differ
                column += 1
    assert column == sum(nvec) and len(values) == model.critic.n_critics


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("path", ["pair_table", "gather", "broadcast"])
@pytest.mark.parametrize("nvec", NVECS)
def test_every_fast_path_gives_the_reference_values(nvec, path, dtype, device, monkeypatch):
    if path == "gather":
        monkeypatch.setattr(OneHotCritic, "max_pair_table_rows", 0)
    monkeypatch.setattr(OneHotCritic, "broadcast_device_types", (device,) if path == "broadcast" else ())
    model, obs, actions = _model_and_actions(nvec, device, net_arch=(64, 64))
    assert model.critic.pair_table == (path != "gather")
    one_hot = model.buffer_one_hot(actions)
    with th.no_grad():
        want = neighbour_values_reference(model.critic, obs, one_hot)
        got = model.critic.neighbour_values(obs, one_hot, None if dtype == "float32" else th.bfloat16)
    assert len(got) == len(want)
    for fast, reference in zip(got, want):
        assert fast.shape == reference.shape == (obs.shape[0], sum(nvec)) and fast.dtype == th.float32
        if dtype == "float32":
            th.testing.assert_close(fast, reference)
        else:
            # bfloat16 (8 bits of mantissa) rounds each neighbour's difference from a, not Q itself:
            # the error stays a small fraction of the spread of the values (at most 1/48 here), while a
            # wrong neighbour would be off by about the spread itself
            spread = (reference - reference.mean(-1, keepdim=True)).abs().max()
            th.testing.assert_close(fast, reference, rtol=0, atol=float(spread) / 16)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_reference_takes_dict_observations(device):
    env = FactoredEnv(spaces.MultiDiscrete([2, 3]), obs_kind="dict")
    model = DiffCatSAC("MultiInputPolicy", env, seed=0, device=device, **SMALL)
    obs = {"vec": th.rand(3, 4, device=device), "img": th.randint(0, 256, (3, 1, 36, 36), device=device).float()}
    one_hot = model.buffer_one_hot(th.tensor([[0, 2], [1, 0], [1, 1]], device=device))
    with th.no_grad():
        for fast, reference in zip(model.critic.neighbour_values(obs, one_hot), neighbour_values_reference(model.critic, obs, one_hot)):
            th.testing.assert_close(fast, reference)

"""The drop-in policies run unchanged in PPO/A2C (and sb3-contrib's MaskablePPO)."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.envs import (
    FakeImageEnv,
    IdentityEnv,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)

from rl_diffcat.sb3 import (
    DiffCatActorCriticPolicy,
    DiffCatCnnPolicy,
    DiffCatMultiInputPolicy,
    DiffusionCategoricalDistribution,
    MultiDiffusionCategoricalDistribution,
)

ALGOS = {"PPO": (PPO, dict(n_steps=64, batch_size=32, n_epochs=2)), "A2C": (A2C, dict(n_steps=8))}
ENVS = {
    "Discrete": lambda: IdentityEnv(dim=4),
    "MultiDiscrete": lambda: IdentityEnvMultiDiscrete(dim=3),
    "MultiBinary": lambda: IdentityEnvMultiBinary(dim=4),
}


@pytest.mark.parametrize("env_name", sorted(ENVS))
@pytest.mark.parametrize("algo_name", sorted(ALGOS))
def test_smoke_run(algo_name, env_name):
    algo, kwargs = ALGOS[algo_name]
    env = ENVS[env_name]()
    model = algo(
        DiffCatActorCriticPolicy,
        env,
        policy_kwargs=dict(sampler="redge", n_steps=5, t_1=0.5),
        seed=0,
        device="cpu",
        **kwargs,
    ).learn(256)
    expected = DiffusionCategoricalDistribution if env_name == "Discrete" else MultiDiffusionCategoricalDistribution
    assert type(model.policy.action_dist) is expected
    obs, _ = env.reset(seed=0)
    for deterministic in (False, True):
        action, _ = model.predict(obs, deterministic=deterministic)
        assert env.action_space.contains(action.astype(env.action_space.dtype))
    # The reparameterized path from the trained policy's own distribution.
    obs_tensor, _ = model.policy.obs_to_tensor(np.stack([obs, obs]))
    one_hot = model.policy.get_distribution(obs_tensor).rsample()
    assert one_hot.shape == (2, model.policy.action_net.out_features)


@pytest.mark.parametrize("algo_name", sorted(ALGOS))
def test_same_training_as_sb3_categorical_policy(algo_name):
    """PPO/A2C only use the categorical law (and the same RNG draws), so a seeded run is SB3's own."""
    algo, kwargs = ALGOS[algo_name]
    params = []
    for policy in ("MlpPolicy", DiffCatActorCriticPolicy):
        model = algo(policy, "CartPole-v1", seed=0, device="cpu", **kwargs).learn(256)
        params.append(th.nn.utils.parameters_to_vector(model.policy.parameters()).detach())
    assert th.equal(params[0], params[1])


def test_sampler_knobs_reach_the_distribution():
    model = PPO(
        DiffCatActorCriticPolicy,
        "CartPole-v1",
        policy_kwargs=dict(sampler="gumbel_softmax", n_steps=7, t_1=0.3, tau=0.5),
        device="cpu",
    )
    assert model.policy.action_dist.sampler_kwargs == dict(sampler="gumbel_softmax", n_steps=7, t_1=0.3, tau=0.5)
    params = model.policy._get_constructor_parameters()
    assert (params["sampler"], params["n_steps"], params["t_1"], params["tau"]) == ("gumbel_softmax", 7, 0.3, 0.5)


def test_cnn_and_multi_input_policies():
    image_env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=True)
    dict_env = SimpleMultiObsEnv(random_start=False)
    for policy, env in ((DiffCatCnnPolicy, image_env), (DiffCatMultiInputPolicy, dict_env)):
        model = PPO(policy, env, n_steps=16, batch_size=16, n_epochs=1, device="cpu").learn(16)
        assert isinstance(model.policy.action_dist, DiffusionCategoricalDistribution)
        action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
        assert env.action_space.contains(int(action))


def test_box_action_space_raises_value_error():
    with pytest.raises(ValueError, match="Box"):
        PPO(DiffCatActorCriticPolicy, "Pendulum-v1", device="cpu")


def test_invalid_sampler_raises_value_error_listing_names():
    with pytest.raises(ValueError, match="valid names: .*redge.*reinmax"):
        PPO(DiffCatActorCriticPolicy, "CartPole-v1", policy_kwargs=dict(sampler="redeg"), device="cpu")


def test_bad_sampler_knob_is_not_taken_for_ppos_n_steps():
    with pytest.raises(ValueError, match="in policy_kwargs; their n_steps is the sampler's .* not PPO's rollout length"):
        PPO(DiffCatActorCriticPolicy, "CartPole-v1", n_steps=64, policy_kwargs=dict(n_steps=1), device="cpu")


# -- sb3-contrib MaskablePPO --------------------------------------------------------------------


@pytest.mark.parametrize("space_name", ["Discrete", "MultiDiscrete", "MultiBinary"])
def test_maskable_ppo_never_takes_invalid_actions(space_name):
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.envs import (
        InvalidActionEnvDiscrete,
        InvalidActionEnvMultiBinary,
        InvalidActionEnvMultiDiscrete,
    )

    from rl_diffcat.sb3.maskable import MaskableDiffCatActorCriticPolicy

    env = {
        "Discrete": lambda: InvalidActionEnvDiscrete(dim=6, n_invalid_actions=3),
        "MultiDiscrete": lambda: InvalidActionEnvMultiDiscrete(dims=[3, 4], n_invalid_actions=3),
        "MultiBinary": lambda: InvalidActionEnvMultiBinary(dims=3, n_invalid_actions=2),
    }[space_name]()
    model = MaskablePPO(
        MaskableDiffCatActorCriticPolicy, env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu"
    ).learn(128)
    obs, _ = env.reset(seed=0)
    masks = np.asarray(env.action_masks())
    obs_tensor, _ = model.policy.obs_to_tensor(np.repeat(obs[None], 200, axis=0))
    dist = model.policy.get_distribution(obs_tensor, action_masks=np.repeat(masks[None], 200, axis=0))
    one_hots = [dist.actions_to_one_hot(dist.sample()), dist.rsample().detach()]
    for one_hot in one_hots:
        assert not (one_hot.bool() & ~th.as_tensor(masks)).any()
    action, _ = model.predict(obs, action_masks=masks, deterministic=True)
    assert not (dist.actions_to_one_hot(th.as_tensor(action)[None]).bool() & ~th.as_tensor(masks)).any()

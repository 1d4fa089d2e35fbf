"""PPO.save / PPO.load round trip of the drop-in policy, the load in a fresh Python process."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.envs import IdentityEnv, IdentityEnvMultiDiscrete

from rl_diffcat.sb3 import DiffCatActorCriticPolicy

KNOBS = dict(sampler="gumbel_softmax", n_steps=7, t_1=0.3, tau=0.5)

# Loads the model, evaluates the saved observations and saved actions, writes the results.
LOADER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch as th
    from stable_baselines3 import PPO

    model_path, data_path, out_path = sys.argv[1:]
    model = PPO.load(model_path, device="cpu")
    data = np.load(data_path)
    obs = th.as_tensor(data["obs"])
    with th.no_grad():
        dist = model.policy.get_distribution(obs)
        log_prob = dist.log_prob(th.as_tensor(data["actions"])).numpy()
    det_actions, _ = model.predict(data["obs"], deterministic=True)
    np.savez(out_path, det_actions=det_actions, log_prob=log_prob)
    print(json.dumps(dict(policy_class=type(model.policy).__name__, dist_class=type(dist).__name__,
                          sampler_kwargs=model.policy.action_dist.sampler_kwargs,
                          policy_kwargs={k: model.policy_kwargs[k] for k in ("sampler", "n_steps", "t_1", "tau")})))
    """
)


@pytest.mark.parametrize(
    "make_env", [lambda: IdentityEnv(dim=5), lambda: IdentityEnvMultiDiscrete(dim=3)], ids=["Discrete", "MultiDiscrete"]
)
def test_save_load_in_a_fresh_process(tmp_path, make_env):
    env = make_env()
    model = PPO(
        DiffCatActorCriticPolicy, env, n_steps=64, batch_size=32, n_epochs=2, policy_kwargs=KNOBS, seed=0, device="cpu"
    ).learn(128)
    env.observation_space.seed(0)
    obs = np.stack([env.observation_space.sample() for _ in range(32)]).astype(np.float32)
    with th.no_grad():
        dist = model.policy.get_distribution(th.as_tensor(obs))
        actions = dist.sample()
        log_prob = dist.log_prob(actions).numpy()
    det_actions, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    np.savez(tmp_path / "data.npz", obs=obs, actions=actions.numpy())

    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path / "model.zip"), str(tmp_path / "data.npz"), str(tmp_path / "out.npz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["policy_class"] == "DiffCatActorCriticPolicy"
    assert info["dist_class"] == type(model.policy.action_dist).__name__
    assert info["sampler_kwargs"] == KNOBS
    assert info["policy_kwargs"] == KNOBS
    loaded = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(loaded["det_actions"], det_actions)
    np.testing.assert_array_equal(loaded["log_prob"], log_prob)


def test_policy_save_load_keeps_sampler_knobs(tmp_path):
    """``policy.save`` rebuilds the policy from ``_get_constructor_parameters``, knobs included."""
    env = IdentityEnv(dim=5)
    policy = PPO(DiffCatActorCriticPolicy, env, policy_kwargs=KNOBS, seed=0, device="cpu").policy
    policy.save(tmp_path / "policy.pkl")
    loaded = DiffCatActorCriticPolicy.load(tmp_path / "policy.pkl", device="cpu")
    assert loaded.action_dist.sampler_kwargs == KNOBS
    obs = th.arange(5)  # Discrete observations, one-hot encoded by the policy
    with th.no_grad():
        th.testing.assert_close(loaded.get_distribution(obs).entropy(), policy.get_distribution(obs).entropy())

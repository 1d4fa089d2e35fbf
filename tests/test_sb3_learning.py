"""PPO with the drop-in policy learns CartPole-v1 (slow: about 30 s of CPU per seed, 100k steps).

Hyperparameters are rl-zoo3's tuned CartPole-v1 PPO ones (``hyperparams/ppo.yml``).
"""

import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from rl_diffcat.sb3 import DiffCatActorCriticPolicy


def linear(start: float):
    return lambda progress_remaining: progress_remaining * start


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppo_learns_cartpole(seed):
    th.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        DiffCatActorCriticPolicy,
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(0.001),
        clip_range=linear(0.2),
        policy_kwargs=dict(sampler="redge", n_steps=5, t_1=0.5),
        seed=seed,
        device="cpu",
    )
    model.learn(total_timesteps=100_000)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1000 + seed)
    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    print(f"seed {seed}: mean eval return {mean_return:.1f} +- {std_return:.1f}")
    # A random policy scores ~20; 475 is CartPole-v1's "solved" threshold (the cap is 500).
    assert mean_return >= 475

"""Tutorial 2: the diffusion-categorical distribution inside SB3's PPO, and its pathwise samples.

    python examples/tutorials/sb3_drop_in.py               # 20k PPO steps on CartPole-v1
    python examples/tutorials/sb3_drop_in.py --steps 256   # a smoke run

``DiffCatActorCriticPolicy`` swaps SB3's categorical distribution for ``DiffusionCategorical``.
PPO only uses the categorical law (sampling, log-probabilities, entropy), so it trains exactly as
with ``"MlpPolicy"``; what the policy adds is ``rsample()``: one-hot actions with a ReDGE gradient,
for any loss of the action you want to differentiate.
"""

import argparse

import torch
from stable_baselines3 import PPO

from rl_diffcat.sb3 import DiffCatActorCriticPolicy


def main(steps: int) -> torch.Tensor:
    model = PPO(DiffCatActorCriticPolicy, "CartPole-v1", policy_kwargs=dict(sampler="redge", n_steps=5, t_1=0.5), seed=0)
    model.learn(total_timesteps=steps)

    # The pathwise path: hard one-hot actions whose gradient reaches the policy's logits.
    obs, _ = model.policy.obs_to_tensor(model.get_env().reset())
    dist = model.policy.get_distribution(obs)
    one_hot = dist.rsample()  # (n_envs, 2), a one-hot per env, differentiable
    payoff = torch.tensor([0.0, 1.0])  # say, action 1 pays 1
    (one_hot * payoff).sum().backward()
    gradient = model.policy.action_net.weight.grad
    print(f"actions {dist.one_hot_to_actions(one_hot).tolist()}, gradient norm on the action layer {gradient.norm():.3g}")
    return gradient


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    main(parser.parse_args().steps)

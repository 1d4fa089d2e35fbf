"""Does the critic's action-gradient point where its values say? A check of a DiffCatSAC model.

    python examples/critic_gradient_check.py results/cartpole/runs/CartPole-v1__diffcat-sac__seed0/model.zip

The pathwise actor update needs dQ/da at the sampled one-hot action ``a``. The joint critic is only
ever trained on one-hot inputs, so the derivative of the network there is an extrapolation. This
script rolls the saved policy out, and for every visited state, factor ``i`` and category ``k != a_i``
compares

* the finite difference ``Q(s, a with factor i set to k) - Q(s, a)`` (what the critic *says*), with
* the directional derivative ``dQ/da . (e_k - e_{a_i})`` of the network at ``a`` (what
  ``q_gradient="autograd"`` feeds the actor).

``q_gradient="neighbours"`` (the default) uses the finite differences themselves. The script also
reports how often the policy's most likely action is the critic's best action. Prints a Markdown
table and writes it as CSV (``--out``).
"""

from __future__ import annotations

import argparse
from typing import Dict, List

import gymnasium as gym
import numpy as np
import torch

import rl_diffcat.envs  # noqa: F401  (registers our ids)
from rl_diffcat.agents import DiffCatSAC

from _tables import write_rows  # examples/_tables.py


def visited_states(model: DiffCatSAC, env_id: str, n_states: int, seed: int) -> torch.Tensor:
    """Observations met by the stochastic policy (the states the actor is trained on)."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    states = []
    for _ in range(n_states):
        states.append(obs)
        action, _ = model.predict(obs, deterministic=False)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return torch.as_tensor(np.array(states), dtype=torch.float32)


def gradient_check(model: DiffCatSAC, obs: torch.Tensor) -> Dict[str, float]:
    """Agreement of the critic's autograd derivative with its own finite differences."""
    with torch.no_grad():
        dist = model.actor.distribution(obs)
        probs_per_factor = dist.probs  # (n, sum K): the factors' probabilities, concatenated
        action = dist.sample()  # sampled one-hot actions: the vertices the actor is trained at
    hard = action.clone().requires_grad_(True)
    q_at_action = model.reduce_twin(model.critic(obs, hard)).sum()
    (grad,) = torch.autograd.grad(q_at_action, hard)
    with torch.no_grad():
        neighbours = model.reduce_twin(model.critic.neighbour_values(obs, action))  # (n, sum K)
        q_here = model.reduce_twin(model.critic(obs, action))  # (n, 1)
        finite = neighbours - q_here
        # d/dt Q(a + t (e_k - e_{a_i})) = g_k - g_{a_i}; the factor's current entry is g . a restricted
        own = torch.zeros_like(grad)
        start = 0
        for k in model.action_dims:
            block = slice(start, start + k)
            own[:, block] = (grad[:, block] * action[:, block]).sum(-1, keepdim=True)
            start += k
        directional = grad - own
        others = action == 0  # the neighbours that differ from a
        agree = ((directional * finite) > 0)[others].float().mean().item()
        scale = (directional[others].abs().mean() / finite[others].abs().mean().clamp_min(1e-12)).item()
        # the policy's most likely category vs the critic's best neighbour, per factor
        best_matches = []
        start = 0
        for k in model.action_dims:
            block = slice(start, start + k)
            best_matches.append(neighbours[:, block].argmax(-1) == probs_per_factor[:, block].argmax(-1))
            start += k
        policy_agrees = torch.stack(best_matches).float().mean().item()
    return {
        "sign_agreement": agree,
        "derivative_to_difference_scale": scale,
        "policy_mode_is_critic_best": policy_agrees,
    }


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="DiffCatSAC .zip files")
    parser.add_argument("--env", default="CartPole-v1", help="env id the models were trained on")
    parser.add_argument("--states", type=int, default=3000, help="visited states per model")
    parser.add_argument("--out", default="results/critic_gradient_check.csv")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for index, path in enumerate(args.models):
        model = DiffCatSAC.load(path, device="cpu")
        obs = visited_states(model, args.env, args.states, seed=100 + index)
        check = gradient_check(model, obs)
        rows.append({"model": path, **{key: f"{value:.3f}" for key, value in check.items()}})
    write_rows(rows, args.out)


if __name__ == "__main__":
    main()

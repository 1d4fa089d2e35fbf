"""Reference returns on the masked polynomial task, to read a compare's table against.

On ``rl_diffcat/PolyProg-Masked-D16-v0`` the return of an episode is its one reward. This prints
the mean over many episodes of three fixed policies: the optimum (fixed decisions kept, the best
value for the free ones), a uniform choice among the valid values, and the unconstrained optimum
``x_d = 1 iff c_d > 0.5`` played without looking at the masks (-1 whenever it breaks a fixed
decision): the ceiling, the floor, and what ignoring the masks costs.

    python examples/masked_polyprog_reference.py [--episodes 20000] [--env-id rl_diffcat/PolyProg-Masked-D16-v0]
"""

from __future__ import annotations

import argparse
from typing import Dict, List, Optional

import gymnasium as gym
import numpy as np

import rl_diffcat.envs  # noqa: F401  (registers the ids)


def reference_returns(env_id: str, episodes: int, seed: int = 0) -> Dict[str, float]:
    """Mean return of the optimal, uniform-valid and mask-blind greedy policies over ``episodes`` episodes."""
    env = gym.make(env_id).unwrapped
    rng = np.random.default_rng(seed)
    returns: Dict[str, List[float]] = {"optimal": [], "uniform valid": [], "greedy ignoring masks": []}
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        masks = env.action_masks().reshape(env.n_vars, 2)
        returns["optimal"].append(env.optimal_reward())
        uniform = np.array([rng.choice(np.flatnonzero(row)) for row in masks])
        returns["uniform valid"].append(env.reward(uniform))
        blind = (env.context > 0.5).astype(np.int64)
        broken = not masks[np.arange(env.n_vars), blind].all()
        returns["greedy ignoring masks"].append(-1.0 if broken else env.reward(blind))
    return {name: float(np.mean(values)) for name, values in returns.items()}


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="rl_diffcat/PolyProg-Masked-D16-v0")
    parser.add_argument("--episodes", type=int, default=20_000)
    args = parser.parse_args(argv)
    means = reference_returns(args.env_id, args.episodes)
    for name, mean in means.items():
        print(f"{args.env_id}, {name}: mean return {mean:.4f} over {args.episodes} episodes")
    return means


if __name__ == "__main__":
    main()

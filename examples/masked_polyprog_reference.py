"""Reference returns on the masked polynomial task, to read a compare's table against.

On ``rl_diffcat/PolyProg-Masked-D16-v0`` the return of an episode is its one reward. This prints
the mean over many episodes of three fixed policies: the optimum (fixed decisions kept, the best
value for the free ones), a uniform choice among the valid values, and the unconstrained optimum
``x_d = 1 iff c_d > 0.5`` played without looking at the masks (-1 whenever it breaks a fixed
decision): the ceiling, the floor, and what ignoring the masks costs.

    python examples/masked_polyprog_reference.py [--episodes 20000] [--env-id rl_diffcat/PolyProg-Masked-D16-v0] \
        [--seed 0] [--out results/masked_polyprog_reference.csv]

Prints and writes (CSV) each policy's mean return, its per-episode standard deviation and the
standard error of the mean.
"""

from __future__ import annotations

import argparse
from typing import Dict, List, Optional

import gymnasium as gym
import numpy as np

import rl_diffcat.envs  # noqa: F401  (registers the ids)

from _tables import write_rows  # examples/_tables.py


def episode_returns(env_id: str, episodes: int, seed: int = 0) -> Dict[str, np.ndarray]:
    """Per-episode returns of the optimal, uniform-valid and mask-blind greedy policies."""
    env = gym.make(env_id).unwrapped
    if not hasattr(env, "action_masks"):
        raise ValueError(f"{env_id} has no action masks: use a rl_diffcat/PolyProg-Masked-* id")
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
    return {name: np.asarray(values) for name, values in returns.items()}


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="rl_diffcat/PolyProg-Masked-D16-v0")
    parser.add_argument("--episodes", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (episode i: seed + i)")
    parser.add_argument("--out", default="results/masked_polyprog_reference.csv")
    args = parser.parse_args(argv)
    if args.episodes < 2:
        parser.error(f"--episodes must be >= 2 (for a standard deviation), got {args.episodes}")
    try:
        returns = episode_returns(args.env_id, args.episodes, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    rows = [
        {
            "env": args.env_id,
            "policy": name,
            "episodes": args.episodes,
            "mean_return": round(float(values.mean()), 4),
            "std": round(float(values.std(ddof=1)), 4),
            "standard_error": round(float(values.std(ddof=1) / np.sqrt(len(values))), 4),
        }
        for name, values in returns.items()
    ]
    write_rows(rows, args.out)
    return {row["policy"]: float(returns[row["policy"]].mean()) for row in rows}


if __name__ == "__main__":
    main()

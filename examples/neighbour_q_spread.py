"""How far apart a trained DiffCatSAC critic puts the categories of one factor, relative to ``|Q|``.

    python examples/neighbour_q_spread.py runs/diag/hc_auto0.01.zip rl_diffcat/HalfCheetah-Discrete-v0

With ``normalize_q`` the actor's Q term is ``Q / mean|Q|``, so what competes with ``alpha * H`` is
the spread of ``Q`` over one factor's categories divided by ``mean|Q|``. This rolls the saved
policy (stochastic) out for ``--steps`` env steps, takes every second visited state, samples an
action there, and prints, over states and factors, the quartiles of (best minus worst category)
and of the standard deviation over categories, both divided by the batch ``mean|Q(s, a)|``. These
are the ``sum(K_i)`` neighbour values the actor's gradient uses. Needs a MultiDiscrete
space whose factors all have the same number of categories.
"""

from __future__ import annotations

import argparse
from typing import List, Optional, Tuple

import gymnasium as gym
import numpy as np
import torch as th

import rl_diffcat.envs  # noqa: F401  (registers the rl_diffcat/ ids)
from rl_diffcat.agents import DiffCatSAC


def factor_spreads(model: DiffCatSAC, obs: th.Tensor) -> Tuple[np.ndarray, np.ndarray, float]:
    """Spread of the critic over each factor's categories at sampled actions, relative to ``|Q|``.

    :return: (max - min over a factor's categories) and (standard deviation over them), each of
        shape ``(batch, n_factors)`` and divided by the batch ``mean|Q(s, a)|``; and that mean.
    """
    dims = list(model.action_dims)
    if len(set(dims)) != 1:
        raise ValueError(f"needs factors of equal size, got {dims}")
    with th.no_grad():
        hard = model.actor.distribution(obs).sample()
        neighbours = model.reduce_twin(model.critic.neighbour_values(obs, hard)).view(len(obs), len(dims), dims[0])
        scale = model.reduce_twin(model.critic(obs, hard)).abs().mean()
    value_range = (neighbours.max(-1).values - neighbours.min(-1).values) / scale
    return value_range.numpy(), (neighbours.std(-1) / scale).numpy(), float(scale)


def visited_states(model: DiffCatSAC, env_id: str, steps: int, seed: int) -> th.Tensor:
    """Every second state of a stochastic roll-out of ``model``'s policy."""
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    states = []
    for _ in range(steps):
        action, _ = model.predict(obs, deterministic=False)
        states.append(obs)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    return th.as_tensor(np.array(states[::2]), dtype=th.float32)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a DiffCatSAC .zip")
    parser.add_argument("env_id")
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args(argv)

    th.set_num_threads(1)
    model = DiffCatSAC.load(args.model, device="cpu")
    obs = visited_states(model, args.env_id, args.steps, args.seed)
    value_range, value_std, scale = factor_spreads(model, obs)
    n_factors, n_categories = value_range.shape[1], model.action_dims[0]
    print(f"{len(obs)} states x {n_factors} factors of {n_categories} categories; mean|Q| = {scale:.2f}")
    for name, values in (("(max - min over a factor) / mean|Q|", value_range), ("std over a factor / mean|Q|", value_std)):
        q25, q50, q75 = np.percentile(values, [25, 50, 75])
        print(f"{name}: quartiles {q25:.4f} / {q50:.4f} / {q75:.4f}")


if __name__ == "__main__":
    main()

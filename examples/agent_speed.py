"""Env-steps/s and gradient-steps/s of DiffCatSAC against SB3's SAC, as ratios from one run.

    python examples/agent_speed.py                    # CPU: discretized vs continuous Pendulum
    python examples/agent_speed.py --device cuda

DiffCatSAC is timed with both ``q_gradient`` modes. All agents get the same network sizes
(``--net-arch``), batch size and replay ratio (one gradient step per env step). DiffCatSAC runs on ``rl_diffcat/Pendulum-Discrete-v0`` (11 bins), SB3's SAC
on ``Pendulum-v1``. The agents are timed in alternation, ``--repeats`` times each, and the best
time of each is kept, which damps the noise of a shared machine. Prints a Markdown table and
writes it as CSV (``--out``).
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Callable, Dict, List

import torch
from stable_baselines3 import SAC

import rl_diffcat.envs  # noqa: F401  (registers rl_diffcat/Pendulum-Discrete-v0)
from rl_diffcat.agents import DiffCatSAC

from _tables import write_rows  # examples/_tables.py

DISCRETE_ENV = "rl_diffcat/Pendulum-Discrete-v0"
# DiffCatSAC with both sources of the actor's dQ/da (see the README), then the reference.
AGENTS = ("DiffCatSAC[neighbours]", "DiffCatSAC[autograd]", "SAC")


def build(name: str, args: argparse.Namespace):
    common = dict(
        learning_starts=args.batch_size,
        batch_size=args.batch_size,
        train_freq=1,
        gradient_steps=1,
        buffer_size=100_000,
        policy_kwargs=dict(net_arch=args.net_arch),
        device=args.device,
        seed=0,
        verbose=0,
    )
    if name.startswith("DiffCatSAC"):
        q_gradient = name[len("DiffCatSAC[") : -1]
        return DiffCatSAC("MlpPolicy", DISCRETE_ENV, sampler=args.sampler, q_gradient=q_gradient, **common)
    return SAC("MlpPolicy", "Pendulum-v1", **common)


def best_time(fn: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--env-steps", type=int, default=1000, help="env steps (with learning) per timing")
    parser.add_argument("--grad-steps", type=int, default=1000, help="gradient steps per timing")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--net-arch", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--sampler", default="redge")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/agent_speed.csv")
    args = parser.parse_args(argv)

    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; net_arch {args.net_arch}; batch {args.batch_size}")
    models = {name: build(name, args) for name in AGENTS}
    for model in models.values():  # fill the buffer past learning_starts
        model.learn(2 * args.batch_size)

    env_time: Dict[str, List[float]] = {name: [] for name in models}
    grad_time: Dict[str, List[float]] = {name: [] for name in models}
    for _ in range(args.repeats):  # alternate the agents so both see the same machine load
        for name, model in models.items():
            env_time[name].append(best_time(lambda: model.learn(args.env_steps, reset_num_timesteps=False), 1))
            grad_time[name].append(best_time(lambda: model.train(args.grad_steps, args.batch_size), 1))

    rows = []
    for name in models:
        rows.append(
            {
                "agent": name,
                "env": "Pendulum-v1" if name == "SAC" else DISCRETE_ENV,
                "env_steps_per_s": round(args.env_steps / min(env_time[name]), 1),
                "grad_steps_per_s": round(args.grad_steps / min(grad_time[name]), 1),
            }
        )
    reference = rows[-1]
    for row in rows:
        for key in ("env_steps_per_s", "grad_steps_per_s"):
            row[f"{key}_ratio_vs_SAC"] = round(row[key] / reference[key], 2)
    write_rows(rows, args.out)


if __name__ == "__main__":
    main()

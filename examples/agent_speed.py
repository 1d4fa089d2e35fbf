"""Env-steps/s and gradient-steps/s of DiffCatSAC against SB3's SAC, as ratios from one run.

    python examples/agent_speed.py                    # CPU: discretized vs continuous Pendulum
    python examples/agent_speed.py --compile          # also DiffCatSAC with compile_update=True
    python examples/agent_speed.py --device cuda --compile --minatar

DiffCatSAC is timed with both ``q_gradient`` modes (and with ``--compile`` its ``torch.compile``d
update). All agents get the same network sizes (``--net-arch``), batch size and replay ratio (one
gradient step per env step). DiffCatSAC runs on ``rl_diffcat/Pendulum-Discrete-v0`` (11 bins),
SB3's SAC on ``Pendulum-v1``. ``--minatar`` adds DiffCatSAC and DiscreteSAC with the MinAtar CNN on
``rl_diffcat/MinAtar-Breakout-v0`` (SB3's SAC cannot act there: its actions are discrete), whose
ratios are to DiscreteSAC. The agents are timed in alternation, ``--repeats`` times each, and the
best time of each is kept, which damps the noise of a shared machine. Compilation happens before
the timing. Prints a Markdown table and writes it as CSV (``--out``).
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any, Callable, Dict, List

import torch
from stable_baselines3 import SAC

import rl_diffcat.envs  # noqa: F401  (registers rl_diffcat/Pendulum-Discrete-v0)
from rl_diffcat.agents import DiffCatSAC, DiscreteSAC
from rl_diffcat.envs.minatar import MinAtarCNN

from _tables import write_rows  # examples/_tables.py

DISCRETE_ENV = "rl_diffcat/Pendulum-Discrete-v0"
MINATAR_ENV = "rl_diffcat/MinAtar-Breakout-v0"


def agent_table(args: argparse.Namespace) -> Dict[str, Dict[str, Any]]:
    """name -> (algo class, env id, extra kwargs, reference name for the ratio)."""
    table = {
        "DiffCatSAC[neighbours]": dict(cls=DiffCatSAC, env=DISCRETE_ENV, kwargs=dict(q_gradient="neighbours"), ref="SAC"),
        "DiffCatSAC[autograd]": dict(cls=DiffCatSAC, env=DISCRETE_ENV, kwargs=dict(q_gradient="autograd"), ref="SAC"),
    }
    compiled = dict(compile_update=True, compile_kwargs=dict(mode=args.compile_mode) if args.compile_mode else None)
    if args.compile:
        for mode in ("neighbours", "autograd"):
            table[f"DiffCatSAC[{mode}, compiled]"] = dict(
                cls=DiffCatSAC, env=DISCRETE_ENV, kwargs=dict(q_gradient=mode, **compiled), ref="SAC"
            )
    table["SAC"] = dict(cls=SAC, env="Pendulum-v1", kwargs={}, ref="SAC")
    if args.minatar:
        cnn = dict(policy="CnnPolicy", policy_kwargs=dict(features_extractor_class=MinAtarCNN, net_arch=args.net_arch))
        table["DiffCatSAC[MinAtar CNN]"] = dict(cls=DiffCatSAC, env=MINATAR_ENV, kwargs=cnn, ref="DiscreteSAC[MinAtar CNN]")
        if args.compile:
            table["DiffCatSAC[MinAtar CNN, compiled]"] = dict(
                cls=DiffCatSAC, env=MINATAR_ENV, kwargs=dict(cnn, **compiled), ref="DiscreteSAC[MinAtar CNN]"
            )
        table["DiscreteSAC[MinAtar CNN]"] = dict(cls=DiscreteSAC, env=MINATAR_ENV, kwargs=cnn, ref="DiscreteSAC[MinAtar CNN]")
    return table


def build(spec: Dict[str, Any], args: argparse.Namespace):
    kwargs = dict(
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
    kwargs.update(spec["kwargs"])
    policy = kwargs.pop("policy", "MlpPolicy")
    if spec["cls"] is DiffCatSAC:
        kwargs["sampler"] = args.sampler
    return spec["cls"](policy, spec["env"], **kwargs)


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
    parser.add_argument("--compile", action="store_true", help="also time DiffCatSAC with compile_update=True")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode of --compile (e.g. reduce-overhead)")
    parser.add_argument("--minatar", action="store_true", help="also time the MinAtar CNN agents")
    parser.add_argument("--out", default="results/agent_speed.csv")
    args = parser.parse_args(argv)

    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; net_arch {args.net_arch}; batch {args.batch_size}")
    specs = agent_table(args)
    models = {name: build(spec, args) for name, spec in specs.items()}
    for model in models.values():  # fill the buffer past learning_starts (and compile)
        model.learn(2 * args.batch_size)

    env_time: Dict[str, List[float]] = {name: [] for name in models}
    grad_time: Dict[str, List[float]] = {name: [] for name in models}
    for _ in range(args.repeats):  # alternate the agents so all see the same machine load
        for name, model in models.items():
            env_time[name].append(best_time(lambda: model.learn(args.env_steps, reset_num_timesteps=False), 1))
            grad_time[name].append(best_time(lambda: model.train(args.grad_steps, args.batch_size), 1))

    rows = {}
    for name, spec in specs.items():
        rows[name] = {
            "agent": name,
            "env": spec["env"],
            "reference": spec["ref"],
            "env_steps_per_s": round(args.env_steps / min(env_time[name]), 1),
            "grad_steps_per_s": round(args.grad_steps / min(grad_time[name]), 1),
        }
    for row in rows.values():
        reference = rows[row["reference"]]
        for key in ("env_steps_per_s", "grad_steps_per_s"):
            row[f"{key}_ratio"] = round(row[key] / reference[key], 2)
    write_rows(list(rows.values()), args.out)


if __name__ == "__main__":
    main()

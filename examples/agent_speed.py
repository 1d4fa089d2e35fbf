"""Env-steps/s and gradient-steps/s of DiffCatSAC against SB3's SAC, as ratios from one run.

    python examples/agent_speed.py                    # CPU: discretized vs continuous Pendulum
    python examples/agent_speed.py --compile          # also DiffCatSAC with compile_update=True
    python examples/agent_speed.py --device cuda --compile --minatar
    python examples/agent_speed.py --device cuda --cuda-graph --minatar   # whole step as one CUDA graph
    python examples/agent_speed.py --halfcheetah --only "DiffCatSAC[HalfCheetah, neighbours]" "DiffCatSAC[HalfCheetah, autograd]"

DiffCatSAC is timed with both ``q_gradient`` modes (and with ``--compile`` its ``torch.compile``d
update; with ``--cuda-graph`` its ``cuda_graph=True`` step, with ``--compile`` also compiled).
All agents get the same network sizes (``--net-arch``), batch size and replay ratio (one gradient
step per env step). DiffCatSAC runs on ``rl_diffcat/Pendulum-Discrete-v0`` (11 bins), SB3's SAC on
``Pendulum-v1``. ``--minatar`` adds DiffCatSAC and DiscreteSAC with the MinAtar CNN on
``rl_diffcat/MinAtar-Breakout-v0`` (SB3's SAC cannot act there: its actions are discrete), whose
ratios are to DiscreteSAC. ``--halfcheetah`` adds DiffCatSAC on ``rl_diffcat/HalfCheetah-Discrete-v0``
(6 joints x 11 bins, so ``neighbours`` evaluates the critics at 61 actions per state: the sampled
one and its 60 neighbours) against SB3's SAC on ``HalfCheetah-v5`` (needs MuJoCo), in float32 and
with ``neighbour_dtype="bfloat16"`` (with ``--compile`` also compiled: the yml entry's setting).
The agents are timed in alternation, ``--repeats`` times each, and the best time of each is kept,
which damps the noise of a shared machine. Compilation happens before the timing. Prints a Markdown table and writes it as CSV (``--out``).
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
HALFCHEETAH_ENV = "rl_diffcat/HalfCheetah-Discrete-v0"


def agent_table(args: argparse.Namespace) -> Dict[str, Dict[str, Any]]:
    """name -> (algo class, env id, extra kwargs, reference name for the ratio)."""
    table = {
        "DiffCatSAC[neighbours]": dict(cls=DiffCatSAC, env=DISCRETE_ENV, kwargs=dict(q_gradient="neighbours"), ref="SAC"),
        "DiffCatSAC[autograd]": dict(cls=DiffCatSAC, env=DISCRETE_ENV, kwargs=dict(q_gradient="autograd"), ref="SAC"),
    }
    compile_modes = args.compile_mode or ["default"]

    def compiled(mode: str) -> Dict[str, Any]:
        return dict(compile_update=True, compile_kwargs=None if mode == "default" else dict(mode=mode))

    def tag(mode: str) -> str:
        return "compiled" if mode == "default" else f"compiled:{mode}"

    if args.compile:
        for cmode in compile_modes:
            for mode in ("neighbours", "autograd"):
                table[f"DiffCatSAC[{mode}, {tag(cmode)}]"] = dict(
                    cls=DiffCatSAC, env=DISCRETE_ENV, kwargs=dict(q_gradient=mode, **compiled(cmode)), ref="SAC"
                )
    if args.cuda_graph:
        for mode in ("neighbours", "autograd"):
            table[f"DiffCatSAC[{mode}, cuda-graph]"] = dict(
                cls=DiffCatSAC, env=DISCRETE_ENV, kwargs=dict(q_gradient=mode, cuda_graph=True), ref="SAC"
            )
            if args.compile:  # compiled losses (fewer kernels) inside the graph
                table[f"DiffCatSAC[{mode}, compiled, cuda-graph]"] = dict(
                    cls=DiffCatSAC, env=DISCRETE_ENV, kwargs=dict(q_gradient=mode, cuda_graph=True, **compiled("default")), ref="SAC"
                )
    table["SAC"] = dict(cls=SAC, env="Pendulum-v1", kwargs={}, ref="SAC")
    if args.minatar:
        cnn = dict(policy="CnnPolicy", policy_kwargs=dict(features_extractor_class=MinAtarCNN, net_arch=args.net_arch))
        table["DiffCatSAC[MinAtar CNN]"] = dict(cls=DiffCatSAC, env=MINATAR_ENV, kwargs=cnn, ref="DiscreteSAC[MinAtar CNN]")
        if args.compile:
            for cmode in compile_modes:
                table[f"DiffCatSAC[MinAtar CNN, {tag(cmode)}]"] = dict(
                    cls=DiffCatSAC, env=MINATAR_ENV, kwargs=dict(cnn, **compiled(cmode)), ref="DiscreteSAC[MinAtar CNN]"
                )
        if args.cuda_graph:
            for cls in (DiffCatSAC, DiscreteSAC):
                table[f"{cls.__name__}[MinAtar CNN, cuda-graph]"] = dict(
                    cls=cls, env=MINATAR_ENV, kwargs=dict(cnn, cuda_graph=True), ref="DiscreteSAC[MinAtar CNN]"
                )
        table["DiscreteSAC[MinAtar CNN]"] = dict(cls=DiscreteSAC, env=MINATAR_ENV, kwargs=cnn, ref="DiscreteSAC[MinAtar CNN]")
    if args.halfcheetah:
        for mode in ("neighbours", "autograd"):
            table[f"DiffCatSAC[HalfCheetah, {mode}]"] = dict(
                cls=DiffCatSAC, env=HALFCHEETAH_ENV, kwargs=dict(q_gradient=mode), ref="SAC[HalfCheetah]"
            )
            if mode == "neighbours":  # its hidden products on differences in bfloat16 (AMX CPUs, tensor cores)
                table["DiffCatSAC[HalfCheetah, neighbours, bf16]"] = dict(
                    cls=DiffCatSAC, env=HALFCHEETAH_ENV, kwargs=dict(neighbour_dtype="bfloat16"), ref="SAC[HalfCheetah]"
                )
                if args.compile:  # the HalfCheetah-Discrete entry of diffcat_sac.yml
                    table["DiffCatSAC[HalfCheetah, neighbours, bf16, compiled]"] = dict(
                        cls=DiffCatSAC, env=HALFCHEETAH_ENV, kwargs=dict(neighbour_dtype="bfloat16", compile_update=True),
                        ref="SAC[HalfCheetah]",
                    )
            if args.compile:
                for cmode in compile_modes:
                    table[f"DiffCatSAC[HalfCheetah, {mode}, {tag(cmode)}]"] = dict(
                        cls=DiffCatSAC, env=HALFCHEETAH_ENV, kwargs=dict(q_gradient=mode, **compiled(cmode)), ref="SAC[HalfCheetah]"
                    )
        table["SAC[HalfCheetah]"] = dict(cls=SAC, env="HalfCheetah-v5", kwargs={}, ref="SAC[HalfCheetah]")
    return table


def _references(specs: Dict[str, Dict[str, Any]], names: List[str]) -> set:
    return {specs[name]["ref"] for name in names}


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
    parser.add_argument(
        "--compile-mode", nargs="+", default=None,
        help="torch.compile modes of --compile, one row each (default: default; e.g. default reduce-overhead)",
    )
    parser.add_argument("--cuda-graph", action="store_true", help="also time the agents with cuda_graph=True (CUDA)")
    parser.add_argument("--minatar", action="store_true", help="also time the MinAtar CNN agents")
    parser.add_argument("--halfcheetah", action="store_true", help="also time DiffCatSAC and SAC on (discretized) HalfCheetah")
    parser.add_argument("--only", nargs="+", default=None, help="time only these agents (and their references)")
    parser.add_argument(
        "--budget", type=float, default=None,
        help="seconds: start no further repeat after this (the figures so far are still written)",
    )
    parser.add_argument("--out", default="results/agent_speed.csv")
    args = parser.parse_args(argv)
    for name in ("env_steps", "grad_steps", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if any(width < 1 for width in args.net_arch):
        parser.error(f"--net-arch takes positive layer widths, got {args.net_arch}")

    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; net_arch {args.net_arch}; batch {args.batch_size}")
    specs = agent_table(args)
    if args.only:
        unknown = set(args.only) - set(specs)
        if unknown:
            parser.error(f"--only: unknown agents {sorted(unknown)}; choose from {sorted(specs)}")
        specs = {name: spec for name, spec in specs.items() if name in args.only or name in _references(specs, args.only)}
    models = {}
    for name, spec in specs.items():
        try:  # one agent failing (a compile mode this torch lacks, say) must not lose the others
            model = build(spec, args)
            start = time.perf_counter()
            model.learn(2 * args.batch_size)  # fill the buffer past learning_starts (and compile)
            print(f"{name}: ready in {time.perf_counter() - start:.1f} s", flush=True)
            models[name] = model
        except Exception as exc:  # noqa: BLE001 - reported, then skipped
            print(f"{name}: FAILED ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", flush=True)
    specs = {name: spec for name, spec in specs.items() if name in models}

    env_time: Dict[str, List[float]] = {name: [] for name in models}
    grad_time: Dict[str, List[float]] = {name: [] for name in models}
    timing_start = time.perf_counter()
    for repeat in range(args.repeats):  # alternate the agents so all see the same machine load
        if repeat and args.budget is not None and time.perf_counter() - timing_start > args.budget:
            print(f"--budget: stopping after {repeat} repeat(s)", flush=True)
            break
        for name, model in models.items():
            env_time[name].append(best_time(lambda: model.learn(args.env_steps, reset_num_timesteps=False), 1))
            grad_time[name].append(best_time(lambda: model.train(args.grad_steps, args.batch_size), 1))
            # Printed as measured, so a run cut short by a time limit still leaves its figures.
            print(
                f"{name} (repeat {repeat + 1}): {args.env_steps / env_time[name][-1]:.1f} env-steps/s, "
                f"{args.grad_steps / grad_time[name][-1]:.1f} gradient-steps/s",
                flush=True,
            )

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
        reference = rows.get(row["reference"])
        for key in ("env_steps_per_s", "grad_steps_per_s"):
            row[f"{key}_ratio"] = round(row[key] / reference[key], 2) if reference else float("nan")
    write_rows(list(rows.values()), args.out)


if __name__ == "__main__":
    main()

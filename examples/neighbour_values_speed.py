"""Time ``OneHotCritic.neighbour_values`` (the critic at the sampled action and every action one
factor away, what DiffCatSAC's actor gradient reads) against a plain evaluation and, optionally,
against the same critic class at an earlier git revision.

    OMP_NUM_THREADS=1 python examples/neighbour_values_speed.py --nvec 11,11,11,11,11,11 2,2,2,2,2,2,2,2 3,3,5
    python examples/neighbour_values_speed.py --against 6eaff34~1 --compile
    python examples/neighbour_values_speed.py --device cuda --against old_policies.py

"plain" builds ``sum_i K_i`` one-hot rows per state (column ``j`` switched on in its factor, so
the sampled action itself recurs once per factor, as a loop over the columns gives) and runs the
whole critic on each, the first layer included. ``--against REV`` imports the neighbour-value code
as it was at ``REV`` (from git, or from a file of that path where git is missing) and times its
``neighbour_values`` too: ``agents/diffcat_sac/neighbours.py`` (run on today's critic class), or,
at revisions before #37 moved it there, ``agents/common/policies.py`` with its own ``OneHotCritic``. Every version gets the same
weights and inputs; the largest difference from the current values is printed beside the times,
so a faster row that computes something else shows. Each row is the median of ``--repeats``
calls, timed in alternation with ``time.process_time`` (CPU time of this process, all its torch
threads, which a busy machine disturbs less than wall time); on CUDA, wall time between synchronizations. Writes the table as CSV (``--out``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import FlattenExtractor

from _tables import write_rows  # examples/_tables.py
from rl_diffcat.agents.diffcat_sac import policies

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def critic_module_at(revision: str):
    """The neighbour-value code at ``revision`` (or in the file at that path), imported as a separate
    module: ``agents/diffcat_sac/neighbours.py``, or ``agents/common/policies.py`` before #37."""
    if os.path.isfile(revision):
        with open(revision) as f:
            source = f.read()
    else:
        for path in ("agents/diffcat_sac/neighbours.py", "agents/common/policies.py"):
            shown = subprocess.run(["git", "-C", REPO, "show", f"{revision}:{path}"], capture_output=True, text=True)
            if shown.returncode == 0:
                break
        if shown.returncode != 0:
            raise SystemExit(f"--against {revision}: no such file, and git could not show it: {shown.stderr.strip()}")
        source = shown.stdout
    path = os.path.join(tempfile.mkdtemp(), "policies_at_revision.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("policies_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # torch.compile re-imports a traced function's module by name
    spec.loader.exec_module(module)
    return module


def critic_class_at(module) -> type:
    """The critic class of a module from :func:`critic_module_at`: its own ``OneHotCritic`` (before
    #37), else today's with that module's tables and ``neighbour_values``."""
    if hasattr(module, "OneHotCritic"):
        return module.OneHotCritic

    class CriticAtRevision(policies.OneHotCritic):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            for name, table in module.neighbour_tables(self.action_dims, self.max_pair_table_rows).items():
                self.register_buffer(name, table, persistent=False)

        def neighbour_values(self, obs, one_hot_actions, matmul_dtype=None):
            return module.neighbour_values(self, obs, one_hot_actions, matmul_dtype)

    return CriticAtRevision


def plain_neighbour_values(critic: policies.OneHotCritic, obs: th.Tensor, one_hot: th.Tensor) -> Tuple[th.Tensor, ...]:
    """The same values as ``neighbour_values``, one full critic forward per (state, neighbour)."""
    batch, width = one_hot.shape
    rows = one_hot.unsqueeze(1).repeat(1, width, 1)  # row j: factor of column j switched to column j
    start = 0
    for k in critic.action_dims:
        rows[:, start : start + k, start : start + k] = th.eye(k, device=rows.device)
        start += k
    values = critic(obs.repeat_interleave(width, 0), rows.flatten(0, 1))
    return tuple(value.view(batch, width) for value in values)


def time_calls(calls: Dict[str, Callable[[], object]], repeats: int, device: th.device) -> Dict[str, float]:
    """Median seconds per call, the calls timed in alternation after two warm-up rounds: CPU time of
    this process on the CPU (every intra-op thread counted), wall time between synchronizations on
    CUDA (kernels run asynchronously)."""
    cuda = device.type == "cuda"
    clock = time.perf_counter if cuda else time.process_time
    for _ in range(2):
        for call in calls.values():
            call()
    times: Dict[str, List[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            if cuda:
                th.cuda.synchronize(device)
            tic = clock()
            call()
            if cuda:
                th.cuda.synchronize(device)
            times[name].append(clock() - tic)
    return {name: statistics.median(values) for name, values in times.items()}


def measure(
    nvec: List[int], batch: int, hidden: int, repeats: int, compile_: bool, against: Optional[object], device: str = "cpu", seed: int = 0
) -> List[Dict[str, object]]:
    device = th.device(device)
    obs_space = spaces.Box(-1.0, 1.0, (17,))
    action_space = spaces.MultiDiscrete(nvec)

    def critic_from(module) -> policies.OneHotCritic:
        return critic_class_at(module)(obs_space, action_space, [hidden, hidden], FlattenExtractor(obs_space), 17)

    th.manual_seed(seed)
    current = critic_from(policies).to(device)
    generator = th.Generator().manual_seed(seed)
    obs = th.rand(batch, 17, generator=generator).to(device)
    actions = [th.randint(0, k, (batch,), generator=generator) for k in nvec]
    one_hot = th.cat([th.nn.functional.one_hot(a, k).float() for a, k in zip(actions, nvec)], dim=1).to(device)
    versions: Dict[str, Callable[[], Tuple[th.Tensor, ...]]] = {
        "current": lambda: current.neighbour_values(obs, one_hot),
        "plain": lambda: plain_neighbour_values(current, obs, one_hot),
    }
    if against is not None:
        older = critic_from(against).to(device)
        older.load_state_dict(current.state_dict())
        versions["against"] = lambda: older.neighbour_values(obs, one_hot)
    if compile_:
        versions = {name: th.compile(call) for name, call in versions.items()}
    with th.no_grad():
        reference = versions["current"]()
        errors = {
            name: max(float((got - want).abs().max()) for got, want in zip(call(), reference)) for name, call in versions.items()
        }
        seconds = time_calls(versions, repeats, device)
    # the pair table evaluates a once; the broadcast (on broadcast_device_types) once per factor
    broadcast = device.type in policies.OneHotCritic.broadcast_device_types
    rows_per_state = sum(nvec) if broadcast else 1 + sum(k - 1 for k in nvec)
    return [
        {
            "nvec": "x".join(map(str, nvec)),
            "device": device.type,
            "version": name,
            "compiled": compile_,
            "ms per call": round(seconds[name] * 1e3, 2),
            "ratio to current": round(seconds[name] / seconds["current"], 3),
            "max abs difference": f"{errors[name]:.1e}",
            "rows per state (current)": rows_per_state,
        }
        for name in versions
    ]


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nvec", nargs="+", default=["11,11,11,11,11,11"], help="MultiDiscrete spaces, e.g. 11,11,11 2,2,2,2")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256, help="width of the critic's two hidden layers")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="time torch.compile'd calls (as compile_update=True runs them)")
    parser.add_argument(
        "--against", default=None, metavar="REV", help="also time neighbour_values as it was at this git revision (or in this file)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="results/neighbour_values_speed.csv")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    against = critic_module_at(args.against) if args.against else None
    rows: List[Dict[str, object]] = []
    for text in args.nvec:
        rows += measure([int(k) for k in text.split(",")], args.batch, args.hidden, args.repeats, args.compile, against, args.device)
    if against is not None:
        for row in rows:
            row["version"] = row["version"].replace("against", f"at {args.against}")
    write_rows(rows, args.out)


if __name__ == "__main__":
    sys.exit(main())

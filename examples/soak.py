"""Soak test: one long DiffCatSAC run, checked every 10k env steps for what goes wrong slowly.

    python examples/soak.py                                   # CPU: 200k steps on CartPole-v1
    python examples/soak.py --steps 1000000 --device cuda --cuda-graph

Every ``--every`` env steps it records: the number of non-finite parameters (policy, targets,
temperature), the temperature ``alpha`` and whether it lies within ``ent_coef_bounds``, the
process's resident memory, the replay buffer's size and the env-steps/s of the last interval.
It prints a line per record, writes them as CSV (``--out``) and exits non-zero when any record
failed a check (a non-finite parameter, ``alpha`` out of bounds). The agent uses the tuned
CartPole settings of ``rl_diffcat/hyperparams/diffcat_sac.yml`` with a constant learning rate,
so the last steps learn as much as the first.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import time
from typing import Any, Dict, List

import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from rl_diffcat.agents import DiffCatSAC


def resident_mb() -> float:
    """This process's resident memory now, in MB (Linux ``/proc``; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


class SoakRecorder(BaseCallback):
    """Record the soak checks every ``every`` env steps."""

    def __init__(self, every: int, out: str) -> None:
        super().__init__()
        self.every = every
        self.out = out
        self.rows: List[Dict[str, Any]] = []
        self._last = (0, time.perf_counter())

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.rows.append(self.record())
            print(", ".join(f"{key} {value}" for key, value in self.rows[-1].items()), flush=True)
            self.write()  # a soak that is cut short keeps its records
        return True

    def write(self) -> None:
        """Write every record so far to ``out`` (CSV), replacing the file atomically."""
        os.makedirs(os.path.dirname(os.path.abspath(self.out)), exist_ok=True)
        with open(f"{self.out}.tmp", "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(f"{self.out}.tmp", self.out)

    def record(self) -> Dict[str, Any]:
        model = self.model
        tensors = list(model.policy.parameters()) + list(model.critic_target.parameters())
        tensors += [model.log_ent_coef] if model.log_ent_coef is not None else []
        nonfinite = sum(int((~th.isfinite(t)).sum()) for t in tensors)
        alpha = float(model.current_ent_coef)
        low, high = model.ent_coef_bounds
        steps, clock = self.num_timesteps, time.perf_counter()
        rate = (steps - self._last[0]) / (clock - self._last[1])
        self._last = (steps, clock)
        return {
            "step": steps,
            "nonfinite_params": nonfinite,
            "alpha": f"{alpha:.4g}",
            # log(alpha) is clamped to the bounds in float32: allow its rounding
            "alpha_in_bounds": low * (1 - 1e-6) <= alpha <= high * (1 + 1e-6),
            "rss_mb": f"{resident_mb():.0f}",
            "buffer_size": model.replay_buffer.size(),
            "env_steps_per_s": f"{rate:.0f}",
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=10_000, help="env steps between records")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cuda-graph", action="store_true", help="capture each gradient step as one CUDA graph")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/soak.csv")
    args = parser.parse_args()
    th.set_num_threads(1)
    model = DiffCatSAC(
        "MlpPolicy", "CartPole-v1", learning_rate=1e-3, batch_size=128, tau=0.01, target_entropy_scale=0.5,
        normalize_q=True, twin_q="mean", policy_kwargs=dict(net_arch=[64, 64]), cuda_graph=args.cuda_graph,
        device=args.device, seed=args.seed,
    )
    recorder = SoakRecorder(args.every, args.out)
    start = time.perf_counter()
    model.learn(args.steps, callback=recorder)
    print(f"{args.steps} env steps in {time.perf_counter() - start:.0f} s on {model.device}")
    failed = [row["step"] for row in recorder.rows if row["nonfinite_params"] or not row["alpha_in_bounds"]]
    print(f"wrote {args.out}; " + (f"FAILED at steps {failed}" if failed else "every record passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

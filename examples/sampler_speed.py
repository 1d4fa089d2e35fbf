"""Sampler forward+backward time against torch's gumbel_softmax(hard=True), as ratios from one run.

    python examples/sampler_speed.py                        # CPU, small sizes
    python examples/sampler_speed.py --device cuda --sizes 65536x18 4096x1024 1024x32768 256x262144

Prints a Markdown table and writes it as CSV (``--out``). Columns: milliseconds per forward+backward
for each path, the ratio to ``torch.nn.functional.gumbel_softmax(hard=True)`` measured in the same
run, and the achieved bandwidth of the fused path counting the minimal traffic of a fused kernel
(forward: read logits and noise, write the sample; backward: read logits, noise and the output
gradient, write the logits gradient: 7 float32 tensors of the input's size).
"""

from __future__ import annotations

import argparse
import platform
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from rl_diffcat import samplers

from _tables import write_rows  # examples/_tables.py


def time_fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor, min_run_time: float) -> float:
    """Median seconds of one forward + backward of ``sum(fn(logits) * w)``."""
    weight = torch.randn_like(logits)
    leaf = logits.clone().requires_grad_(True)

    def step():
        leaf.grad = None
        (fn(leaf) * weight).sum().backward()

    for _ in range(3):  # warm-up (and compilation for the compiled path)
        step()
    timer = benchmark.Timer(stmt="step()", globals={"step": step})
    return timer.blocked_autorange(min_run_time=min_run_time).median


def redge_with(mode: str, n_steps: int, t_1: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(leaf: torch.Tensor) -> torch.Tensor:
        samplers.set_fast_path(mode)
        try:
            return samplers.redge(leaf, n_steps, t_1, validate_args=False)
        finally:
            samplers.set_fast_path("auto")

    return run


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", nargs="+", default=["4096x18", "1024x1024", "64x32768"], help="BATCHxK")
    parser.add_argument("--n-steps", type=int, default=5)
    parser.add_argument("--t-1", type=float, default=0.5)
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds of timing per cell")
    parser.add_argument("--paths", nargs="+", default=["off", "eager", "compiled"], help="redge fast-path modes")
    parser.add_argument("--out", default="results/sampler_speed.csv")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; redge n_steps={args.n_steps} t_1={args.t_1}")
    rows: List[Dict[str, object]] = []
    for size in args.sizes:
        batch, k = (int(v) for v in size.lower().split("x"))
        logits = torch.randn(batch, k, device=device)
        base = time_fwd_bwd(lambda x: F.gumbel_softmax(x, tau=1.0, hard=True), logits, args.min_run_time)
        row: Dict[str, object] = {"size": f"{batch}x{k}", "gumbel_softmax_ms": round(base * 1e3, 3)}
        for mode in args.paths:
            t = time_fwd_bwd(redge_with(mode, args.n_steps, args.t_1), logits, args.min_run_time)
            row[f"redge_{mode}_ms"] = round(t * 1e3, 3)
            row[f"redge_{mode}_ratio"] = round(t / base, 2)
            row[f"redge_{mode}_GBps"] = round(7 * 4 * logits.numel() / t / 1e9, 1)
        rows.append(row)
        print(row, flush=True)

    write_rows(rows, args.out)


if __name__ == "__main__":
    main()

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
    # torch.utils.benchmark times on one thread unless told: use the threads the header reports
    timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def redge_with(path: str, n_steps: int, t_1: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``path`` is a fast-path mode, or ``triton@TILE[:STAGES]`` for the Triton kernels with other
    launch options (tile elements, pipeline stages)."""
    mode, _, options = path.partition("@")
    tile, _, stages = options.partition(":")

    def run(leaf: torch.Tensor) -> torch.Tensor:
        samplers.set_fast_path(mode)
        if options:
            from rl_diffcat.samplers import triton as triton_redge

            triton_redge.set_launch_options(int(tile) if tile else None, int(stages) if stages else None)
        try:
            return samplers.redge(leaf, n_steps, t_1, validate_args=False)
        finally:
            samplers.set_fast_path("auto")
            if options:
                triton_redge.set_launch_options()

    return run


def profile_paths(fns: Dict[str, Callable[[torch.Tensor], torch.Tensor]], logits: torch.Tensor, iters: int = 20) -> None:
    """Print each path's kernels with their GPU time per forward+backward, and the host time."""
    from torch.profiler import ProfilerActivity, profile

    weight = torch.randn_like(logits)
    leaf = logits.clone().requires_grad_(True)
    for name, fn in fns.items():
        def step():
            leaf.grad = None
            (fn(leaf) * weight).sum().backward()

        for _ in range(3):
            step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(iters):
                step()
            torch.cuda.synchronize()
        events = [e for e in prof.key_averages() if e.self_device_time_total > 0]
        # Kernels only: the op that launched a kernel reports the same device time again.
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        events = sorted(kernels or events, key=lambda e: -e.self_device_time_total)
        gpu_us = sum(e.self_device_time_total for e in events) / iters
        print(f"  {name}: {gpu_us:.0f} us of kernels per fwd+bwd, {len(events)} distinct kernels")
        for e in events[:8]:
            print(f"    {e.self_device_time_total / iters:8.1f} us  x{e.count // iters:<3d} {e.key[:90]}")


def copy_bandwidth(device: torch.device, min_run_time: float, n_bytes: int = 1 << 30) -> float:
    """GB/s of a device-to-device copy of ``n_bytes`` (bytes read plus bytes written): the ceiling."""
    src = torch.randn(n_bytes // 4, device=device)
    dst = torch.empty_like(src)
    timer = benchmark.Timer(stmt="dst.copy_(src)", globals={"dst": dst, "src": src}, num_threads=torch.get_num_threads())
    return 2 * n_bytes / timer.blocked_autorange(min_run_time=min_run_time).median / 1e9


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", nargs="+", default=["4096x18", "1024x1024", "64x32768"], help="BATCHxK")
    parser.add_argument("--n-steps", type=int, default=5)
    parser.add_argument("--t-1", type=float, default=0.5)
    parser.add_argument("--min-run-time", type=float, default=1.0, help="seconds of timing per cell")
    parser.add_argument(
        "--paths", nargs="+", default=None,
        help="redge fast-path modes, or triton@TILE (default: off eager compiled, plus triton on CUDA with triton)",
    )
    parser.add_argument("--profile", action="store_true", help="CUDA: also list the kernels of gumbel_softmax and of the first path, with their time")
    parser.add_argument("--out", default="results/sampler_speed.csv")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    paths = args.paths or ["off", "eager", "compiled"] + (
        ["triton"] if device.type == "cuda" and samplers.triton_available() else []
    )
    for path in paths:
        mode = path.partition("@")[0]
        if mode not in samplers.FAST_PATH_MODES:
            parser.error(f"unknown path {path!r}: a mode of {samplers.FAST_PATH_MODES} or triton@TILE[:STAGES]")
        if mode == "triton" and not samplers.triton_available():
            parser.error(f"path {path!r} needs the triton package")
    print(f"device: {name}; torch {torch.__version__}; redge n_steps={args.n_steps} t_1={args.t_1}")
    if device.type == "cuda":
        print(f"device-to-device copy: {copy_bandwidth(device, args.min_run_time):.0f} GB/s (read + write)")
    rows: List[Dict[str, object]] = []
    sizes = []
    for size in args.sizes:
        batch, _, k = size.lower().partition("x")
        if not (batch.isdigit() and k.isdigit() and int(batch) > 0 and int(k) > 0):
            parser.error(f"--sizes takes BATCHxK with positive integers (e.g. 4096x18), got {size!r}")
        sizes.append((int(batch), int(k)))
    for batch, k in sizes:
        logits = torch.randn(batch, k, device=device)
        base = time_fwd_bwd(lambda x: F.gumbel_softmax(x, tau=1.0, hard=True), logits, args.min_run_time)
        row: Dict[str, object] = {"size": f"{batch}x{k}", "gumbel_softmax_ms": round(base * 1e3, 3)}
        for mode in paths:
            t = time_fwd_bwd(redge_with(mode, args.n_steps, args.t_1), logits, args.min_run_time)
            row[f"redge_{mode}_ms"] = round(t * 1e3, 3)
            row[f"redge_{mode}_ratio"] = round(t / base, 2)
            row[f"redge_{mode}_GBps"] = round(7 * 4 * logits.numel() / t / 1e9, 1)
        rows.append(row)
        print(row, flush=True)
        if args.profile and device.type == "cuda":
            fns = {"gumbel_softmax": lambda x: F.gumbel_softmax(x, tau=1.0, hard=True)}
            fns[f"redge_{paths[0]}"] = redge_with(paths[0], args.n_steps, args.t_1)
            profile_paths(fns, logits)

    write_rows(rows, args.out)


if __name__ == "__main__":
    main()

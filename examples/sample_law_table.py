"""How far the law of ReDGE's hard samples is from ``pi``, as a function of ``n_steps`` and ``t_1``.

ReDGE draws its hard one-hot from the last posterior mean of a few DDIM steps, not from ``pi``
itself, so the hard samples follow ``pi`` only approximately. For fixed random logits (``K = 10``)
we draw ``N`` hard samples per setting and report the total-variation distance

    TV(q, pi) = 1/2 sum_k |q_k - pi_k|

between their empirical frequencies ``q`` and ``pi``, next to the mean TV of ``N`` exact ``Cat(pi)``
samples (the Monte-Carlo noise floor of the hard column). Because the hard sample is ``Cat(soft)``, its law is exactly
``E[soft]``; the ``tv_law`` column estimates that mean from the soft samples of the same noise,
which removes most of the sampling noise (its floor is much lower than the hard one).

Usage::

    python examples/sample_law_table.py                        # full table, writes results/sample_law/
    python examples/sample_law_table.py --quick --out /tmp/sl   # seconds-long smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import List, Optional

import pandas as pd
import torch
from torch import Tensor

from rl_diffcat.samplers import make_sampler, sample_one_hot, set_validation

SAMPLERS = ("redge", "redge_cov")
N_STEPS_GRID = (2, 3, 5, 10, 20)
T_1_GRID = (0.1, 0.3, 0.5, 0.7, 0.9)
FLOOR_DRAWS = 10


def total_variation(q: Tensor, p: Tensor) -> float:
    """``1/2 sum_k |q_k - p_k|``."""
    return 0.5 * float((q.double() - p.double()).abs().sum())


def markdown_grid(frame: pd.DataFrame, value: str) -> str:
    """Rows ``n_steps``, columns ``t_1``, cells ``value``, as a GitHub Markdown table."""
    grid = frame.pivot(index="n_steps", columns="t_1", values=value)
    lines = ["| n_steps \\ t_1 | " + " | ".join(f"{t:g}" for t in grid.columns) + " |",
             "|---|" + "---|" * len(grid.columns)]
    lines += [f"| {n} | " + " | ".join(f"{v:.4f}" for v in row) + " |" for n, row in grid.iterrows()]
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/sample_law", help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny grid and sample count (smoke test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the logits and the samplers")
    parser.add_argument("--n-values", type=int, default=10, help="number of categories K")
    parser.add_argument("--n-samples", type=int, default=100_000, help="samples per setting")
    parser.add_argument("--logit-scale", type=float, default=1.5, help="logits ~ N(0, scale^2)")
    args = parser.parse_args(argv)
    if args.n_values < 2 or args.n_samples < 1:
        parser.error(f"--n-values must be >= 2 and --n-samples >= 1, got {args.n_values} and {args.n_samples}")
    if not math.isfinite(args.logit_scale) or args.logit_scale < 0:
        parser.error(f"--logit-scale must be a finite number >= 0, got {args.logit_scale}")
    if args.quick and args.n_samples == parser.get_default("n_samples"):  # an explicit count is kept
        args.n_samples = 2000
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)
    set_validation(False)
    os.makedirs(args.out, exist_ok=True)
    n_grid, t_grid = ((2, 5), (0.1, 0.9)) if args.quick else (N_STEPS_GRID, T_1_GRID)
    start = time.time()

    logits = args.logit_scale * torch.randn(args.n_values, generator=torch.Generator().manual_seed(args.seed))
    pi = logits.softmax(-1)
    batch = logits.expand(args.n_samples, args.n_values)
    # Noise floor: mean TV of N exact Cat(pi) samples over a few independent draws.
    floor_gen = torch.Generator().manual_seed(args.seed)
    tv_floor = sum(
        total_variation(sample_one_hot(pi.expand(args.n_samples, args.n_values), floor_gen).mean(0), pi)
        for _ in range(FLOOR_DRAWS)
    ) / FLOOR_DRAWS

    rows = []
    with torch.no_grad():
        for sampler in SAMPLERS:
            for n_steps in n_grid:
                for t_1 in t_grid:
                    sample = make_sampler(sampler, n_steps=n_steps, t_1=t_1)
                    # Same seed for both calls: the soft samples are those the hard ones are drawn from.
                    seed = args.seed + 1
                    hard = sample(batch, hard=True, generator=torch.Generator().manual_seed(seed))
                    soft = sample(batch, hard=False, generator=torch.Generator().manual_seed(seed))
                    rows.append(dict(sampler=sampler, n_steps=n_steps, t_1=t_1,
                                     tv_hard=total_variation(hard.mean(0), pi),
                                     tv_law=total_variation(soft.mean(0), pi),
                                     tv_floor=tv_floor, n_samples=args.n_samples))
    frame = pd.DataFrame(rows)
    path = os.path.join(args.out, "sample_law_tv.csv")
    frame.to_csv(path, index=False)

    text = [
        f"TV(law of hard samples, pi), K={args.n_values}, logits ~ N(0, {args.logit_scale}^2) (seed {args.seed}), "
        f"{args.n_samples} samples per cell;\nnoise floor of the hard column (mean TV of {FLOOR_DRAWS} draws of "
        f"as many exact Cat(pi) samples): {tv_floor:.4f}\n"
    ]
    for value, title in [("tv_hard", "TV of the empirical law of hard samples"),
                         ("tv_law", "TV of E[soft] (the exact law of the hard sample, low-noise estimate)")]:
        for sampler in SAMPLERS:
            text += [f"### {sampler}: {title}\n", markdown_grid(frame[frame["sampler"] == sampler], value) + "\n"]
    print("\n".join(text))
    with open(os.path.join(args.out, "sample_law_tv.md"), "w") as file:
        file.write("\n".join(text))
    print(f"wrote {path} and sample_law_tv.md in {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()

"""Learning-curve statistics of a compare, per algo: how early a run first reached a threshold and
how often it fell back under it afterwards.

    python examples/curve_stats.py results/cartpole/eval_curves.csv --threshold 475

Final returns hide how a run got there: on CartPole every agent ends at the 500 cap. This reads the
``eval_curves.csv`` that ``rl-diffcat compare`` writes and prints, per (env, algo): the mean return
over all evaluations (averaged over seeds), the first evaluation step at or above ``--threshold``
(mean and worst seed; runs that never reach it are counted), and the number of later evaluations
below it, summed over seeds. Prints a Markdown table and writes it as CSV (``--out``).
"""

from __future__ import annotations

import argparse
from typing import Dict, List

import pandas as pd

from _tables import write_rows  # examples/_tables.py


def curve_stats(curves: pd.DataFrame, threshold: float) -> List[Dict[str, object]]:
    """One row per (env, algo) from the compare's evaluation curves."""
    rows = []
    for (env, algo), runs in curves.groupby(["env", "algo"], sort=False):
        firsts, dips, never = [], 0, 0
        for _, run in runs.groupby("seed"):
            run = run.sort_values("step")
            reached = run[run["mean_return"] >= threshold]
            if reached.empty:
                never += 1
                continue
            first = reached["step"].iloc[0]
            firsts.append(first)
            dips += int(((run["step"] > first) & (run["mean_return"] < threshold)).sum())
        rows.append(
            {
                "env": env,
                "algo": algo,
                "seeds": runs["seed"].nunique(),
                "mean_of_evaluations": round(runs.groupby("seed")["mean_return"].mean().mean(), 1),
                "first_step_at_threshold_mean": round(sum(firsts) / len(firsts)) if firsts else "never",
                "first_step_at_threshold_worst": max(firsts) if firsts else "never",
                "seeds_never_at_threshold": never,
                "evaluations_below_after_first": dips,
            }
        )
    return rows


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curves", help="eval_curves.csv of a compare")
    parser.add_argument("--threshold", type=float, required=True, help="return that counts as solved")
    parser.add_argument("--out", default="results/curve_stats.csv")
    args = parser.parse_args(argv)
    write_rows(curve_stats(pd.read_csv(args.curves), args.threshold), args.out)


if __name__ == "__main__":
    main()

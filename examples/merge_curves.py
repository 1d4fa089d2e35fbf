"""Merge evaluation curves from several compares and tabulate final returns per (env, algo).

    python examples/merge_curves.py docs/figures/compare_halfcheetah_sac_eval_curves.csv \
        results/halfcheetah/eval_curves.csv --out merged.csv --table merged_summary.csv

``rl-diffcat compare --report-only`` aggregates the run folders of one results folder. Seeds run
elsewhere (another session with ``--first-seed``, a device machine whose checkpoints are too big
to bring back) often leave only their ``eval_curves.csv``. This merges such files, refuses a
(env, algo, seed) that two files both hold, and prints per (env, algo) the final return of every
seed, their mean ± std, the IQM with its 95% stratified-bootstrap interval
(``rl_diffcat.benchmark.stats``, as in the compare's ``summary.md``) and the mean of evaluations.
A seed whose curve stops short of the group's last step is listed as ``to <step>`` and left out
of the aggregates, as ``summary.md`` does with runs in progress. ``--png`` draws the finished seeds'
final returns as the compare's ``final_scores.png`` does.
"""

from __future__ import annotations

import argparse
import os
from typing import Dict, List, Sequence

import pandas as pd

from _tables import write_rows  # examples/_tables.py
from rl_diffcat.benchmark.plots import plot_final_scores
from rl_diffcat.benchmark.stats import bootstrap_ci

KEY = ["env", "algo", "seed"]


def merge_curves(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate evaluation curves; each (env, algo, seed) must come from one file only."""
    owners: Dict[tuple, int] = {}
    for index, frame in enumerate(frames):
        for run in frame[KEY].drop_duplicates().itertuples(index=False):
            if tuple(run) in owners:
                raise ValueError(f"run {tuple(run)} is in input {owners[tuple(run)] + 1} and input {index + 1}")
            owners[tuple(run)] = index
    return pd.concat(frames, ignore_index=True).sort_values(KEY + ["step"], ignore_index=True)


def seed_finals(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (env, algo, seed): its last step and return, its mean of evaluations, and whether it
    finished (reached the last step of its (env, algo))."""
    runs = curves.sort_values("step").groupby(KEY, sort=False)
    seeds = runs.agg(step=("step", "last"), final_return=("mean_return", "last"), mean_of_evaluations=("mean_return", "mean"))
    seeds = seeds.reset_index()
    seeds["finished"] = seeds["step"] == seeds.groupby(["env", "algo"])["step"].transform("max")
    return seeds.sort_values(KEY, kind="stable", ignore_index=True)


def final_returns(curves: pd.DataFrame, n_resamples: int = 10_000) -> List[Dict[str, object]]:
    """One row per (env, algo): per-seed finals, mean ± std and IQM [95% CI] of the finished seeds."""
    rows = []
    for (env, algo), seeds in seed_finals(curves).groupby(["env", "algo"], sort=False):
        done = seeds[seeds["finished"]]
        cells = [
            f"{seed.seed}: {seed.final_return:.1f}" if seed.finished else f"{seed.seed}: to {seed.step}"
            for seed in seeds.itertuples()
        ]
        scores = done["final_return"].astype(float)
        estimate, low, high = bootstrap_ci(scores.to_numpy(), "iqm", n_resamples=n_resamples) if len(done) else (float("nan"),) * 3
        rows.append(
            {
                "env": env,
                "algo": algo,
                "step": int(seeds["step"].max()),
                "seeds_finished": f"{len(done)} of {len(seeds)}",
                "final_per_seed": "; ".join(cells),
                "final_mean": round(scores.mean(), 1),
                "final_std": round(scores.std(ddof=1), 1) if len(done) > 1 else 0.0,
                "iqm": round(estimate, 1),
                "iqm_ci95": f"[{low:.1f}, {high:.1f}]",
                "mean_of_evaluations": round(done["mean_of_evaluations"].mean(), 1) if len(done) else float("nan"),
            }
        )
    return rows


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curves", nargs="+", help="eval_curves.csv files of compares (or a run's eval.csv)")
    parser.add_argument("--out", required=True, help="the merged curves, as CSV")
    parser.add_argument("--table", default="results/merged_summary.csv", help="the table, as CSV")
    parser.add_argument(
        "--png", help="also draw the finished seeds' final returns (IQM, 95%% CI and every seed, a panel per env) to this PNG"
    )
    args = parser.parse_args(argv)
    merged = merge_curves([pd.read_csv(path) for path in args.curves])
    for path in (args.out, args.png):
        if path:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    merged.to_csv(args.out, index=False)
    print(f"wrote {args.out} ({len(merged)} rows)")
    write_rows(final_returns(merged), args.table)
    if args.png:
        finished = seed_finals(merged)
        print(f"wrote {plot_final_scores(finished[finished['finished']], args.png)}")


if __name__ == "__main__":
    main()

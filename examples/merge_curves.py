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
of the aggregates, as ``summary.md`` does with runs in progress.
"""

from __future__ import annotations

import argparse
from typing import Dict, List, Sequence

import pandas as pd

from _tables import write_rows  # examples/_tables.py
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


def final_returns(curves: pd.DataFrame, n_resamples: int = 10_000) -> List[Dict[str, object]]:
    """One row per (env, algo): per-seed finals, mean ± std and IQM [95% CI] of the finished seeds."""
    rows = []
    for (env, algo), runs in curves.groupby(["env", "algo"], sort=False):
        last_step = runs["step"].max()
        finals, cells, auc = [], [], []
        for seed, run in runs.groupby("seed"):
            run = run.sort_values("step")
            if run["step"].iloc[-1] == last_step:
                finals.append(float(run["mean_return"].iloc[-1]))
                auc.append(float(run["mean_return"].mean()))
                cells.append(f"{seed}: {finals[-1]:.1f}")
            else:
                cells.append(f"{seed}: to {run['step'].iloc[-1]}")
        scores = pd.Series(finals, dtype=float)
        estimate, low, high = bootstrap_ci(scores.to_numpy(), "iqm", n_resamples=n_resamples) if finals else (float("nan"),) * 3
        rows.append(
            {
                "env": env,
                "algo": algo,
                "step": int(last_step),
                "seeds_finished": f"{len(finals)} of {runs['seed'].nunique()}",
                "final_per_seed": "; ".join(cells),
                "final_mean": round(scores.mean(), 1),
                "final_std": round(scores.std(ddof=1), 1) if len(finals) > 1 else 0.0,
                "iqm": round(estimate, 1),
                "iqm_ci95": f"[{low:.1f}, {high:.1f}]",
                "mean_of_evaluations": round(sum(auc) / len(auc), 1) if auc else float("nan"),
            }
        )
    return rows


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curves", nargs="+", help="eval_curves.csv files of compares (or a run's eval.csv)")
    parser.add_argument("--out", required=True, help="the merged curves, as CSV")
    parser.add_argument("--table", default="results/merged_summary.csv", help="the table, as CSV")
    args = parser.parse_args(argv)
    merged = merge_curves([pd.read_csv(path) for path in args.curves])
    merged.to_csv(args.out, index=False)
    print(f"wrote {args.out} ({len(merged)} rows)")
    write_rows(final_returns(merged), args.table)


if __name__ == "__main__":
    main()

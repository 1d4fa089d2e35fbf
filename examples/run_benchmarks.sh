#!/usr/bin/env bash
# Run the compares behind BENCHMARKS.md's tables: each preset's summary table, curves and plots.
# The columns that count evaluations against a threshold come from examples/curve_stats.py, and
# the masked task's reference returns from examples/masked_polyprog_reference.py: the commands
# beside each table in BENCHMARKS.md. Each preset is a `rl-diffcat compare` configuration
# (rl_diffcat/benchmark/presets.py); the algorithm hyperparameters are in rl_diffcat/hyperparams/*.yml.
#
#   bash examples/run_benchmarks.sh                 # every table (days of CPU time: 5 seeds x 5 algos)
#   bash examples/run_benchmarks.sh quick cartpole  # only some presets
#   JOBS=4 DEVICE=cpu bash examples/run_benchmarks.sh cartpole
#
# Re-running resumes: finished runs (results/<preset>/runs/*/done.json) are skipped.
# Each preset writes results/<preset>/{summary.md,eval_curves.csv,runs.csv,learning_curves_<env>.png}.
# LunarLander-v3 needs Box2D, HalfCheetah MuJoCo, minatar MinAtar: pip install "rl-diffcat[all]".
# minatar is meant for a GPU (DEVICE=cuda); not in the default list.
set -euo pipefail

JOBS="${JOBS:-1}"
DEVICE="${DEVICE:-auto}"
PRESETS=("$@")
if [ ${#PRESETS[@]} -eq 0 ]; then
  PRESETS=(quick cartpole acrobot lunarlander pendulum halfcheetah masked)
fi

for preset in "${PRESETS[@]}"; do
  echo "=== rl-diffcat compare --preset ${preset} --jobs ${JOBS} --device ${DEVICE}"
  # A failed run makes compare exit 1; go on with the next preset (the table marks it failed).
  rl-diffcat compare --preset "${preset}" --jobs "${JOBS}" --device "${DEVICE}" || echo "preset ${preset}: some runs failed, see results/${preset}/runs.csv"
done

#!/usr/bin/env bash
# A MinAtar pilot that fits one device call (BENCHMARKS.md "MinAtar pilot"), plus the CUDA checks
# of the code changed since the last GPU run:
#
#   OUT=results/gpu_pilot bash examples/gpu_minatar_pilot.sh
#
# 1. Breakout and SpaceInvaders, DiffCatSAC (redge), DiscreteSAC, PPO and PPO with the drop-in
#    distribution, SEEDS seeds of STEPS env steps, trained on the machine's CPU cores (one torch
#    thread per run) for TRAIN_LIMIT seconds. With MinAtar's small CNN and batch 64 the per-step
#    actor call dominates, and it is no faster on the GPU (BENCHMARKS "Speed on the GPU", run 5:
#    312 env steps/s with cuda_graph=True); the GPU machine's gain here is its 16 cores.
#    Runs checkpoint every EVAL_FREQ steps, so the report shows unfinished runs "in progress" with
#    their curves up to the last checkpoint.
# 2. Meanwhile, on the GPU: the CUDA tests of the agents (the neighbour tables of 6eaff34, the
#    CUDA-graphed update).
# 3. After training is stopped: the report (`compare --report-only`), then
#    examples/neighbour_values_speed.py on CUDA against the critic before 6eaff34 (AGAINST: a copy
#    of that file, since the device tree has no git history).
# Logs, CSVs and a tarball of the results (no checkpoints) go to $OUT.
set -uo pipefail
OUT="${OUT:-results/gpu_pilot}"
RESULTS="${RESULTS:-results/minatar_pilot}"
STEPS="${STEPS:-100000}"
SEEDS="${SEEDS:-3}"
EVAL_FREQ="${EVAL_FREQ:-10000}"
TRAIN_LIMIT="${TRAIN_LIMIT:-420}"
SAC_JOBS="${SAC_JOBS:-12}"
PPO_JOBS="${PPO_JOBS:-4}"
AGAINST="${AGAINST:-}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
start=$(date +%s)

nvidia-smi -L || true
echo "cores: $(nproc)"; lscpu | grep -i -E "model name|^thread|^core" || true
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

common=(--preset minatar --seeds "$SEEDS" --steps "$STEPS" --eval-freq "$EVAL_FREQ" --checkpoint-freq "$EVAL_FREQ"
        --device cpu --results "$RESULTS")
echo "=== 1. training (limit ${TRAIN_LIMIT} s)"
$PY -m rl_diffcat.cli compare "${common[@]}" --algos diffcat-sac discrete-sac --jobs "$SAC_JOBS" >"$OUT/compare_sac.log" 2>&1 &
sac=$!
$PY -m rl_diffcat.cli compare "${common[@]}" --algos ppo ppo-diffcat --jobs "$PPO_JOBS" >"$OUT/compare_ppo.log" 2>&1 &
ppo=$!

echo "=== 2. CUDA tests"
timeout "${TEST_LIMIT:-200}" $PY -m pytest -q -rxX -p no:cacheprovider tests/test_cuda_graph.py tests/test_agents.py \
  -k "cuda" >"$OUT/tests.log" 2>&1
tail -n 3 "$OUT/tests.log"

while kill -0 $sac 2>/dev/null || kill -0 $ppo 2>/dev/null; do
  (( $(date +%s) - start >= TRAIN_LIMIT )) && break
  sleep 5
done
echo "stopping training at $(( $(date +%s) - start )) s"
kill -9 $sac $ppo 2>/dev/null
pkill -TERM -f "rl_diffcat.cli train .*--eval-csv $RESULTS/" ; sleep 2; pkill -KILL -f "rl_diffcat.cli train .*--eval-csv $RESULTS/"
tail -n 4 "$OUT/compare_sac.log" "$OUT/compare_ppo.log"

echo "=== 3. report"
$PY -m rl_diffcat.cli compare "${common[@]}" --algos diffcat-sac discrete-sac ppo ppo-diffcat --report-only \
  >"$OUT/report.log" 2>&1
tail -n 40 "$OUT/report.log"
if [ -n "$AGAINST" ]; then
  timeout "${SPEED_LIMIT:-60}" $PY examples/neighbour_values_speed.py --device cuda --against "$AGAINST" \
    --nvec 11,11,11,11,11,11 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2 3,3,5 18 --repeats 30 \
    --out "$OUT/neighbour_values_speed_cuda.csv" 2>&1 | tail -n 20
fi
tar czf "$OUT/minatar_pilot.tar.gz" --exclude='*.zip' --exclude='*.pkl' --exclude='tb' "$RESULTS"
ls -la "$OUT"
echo "done at $(( $(date +%s) - start )) s"

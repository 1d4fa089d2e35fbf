#!/usr/bin/env bash
# The CUDA checks and speed figures of issue #7 in one run (what BENCHMARKS.md's GPU tables quote).
#
#   OUT=results/gpu bash examples/gpu_checks.sh
#
# 1. the kernel tests on CUDA: Triton ReDGE kernels, the fused chain, the CUDA-graphed SAC update
#    (compile mode reduce-overhead, and cuda_graph=True's whole-step graph), the compiled update
#    against eager, the neighbour values on every path, the CUDA smoke runs;
# 2. examples/sampler_speed.py at the four sizes: the Triton and compiled paths against
#    gumbel_softmax(hard=True), the copy-bandwidth ceiling, and a kernel-level profile
#    (SAMPLER_PATHS="--paths triton@1024 triton@4096:3 ..." times other launch options);
# 3. examples/agent_speed.py on CUDA: DiffCatSAC eager, with CUDA-graphed losses and with the
#    whole step as one CUDA graph (cuda_graph=True) vs SB3's SAC, and on MinAtar vs DiscreteSAC.
# About 6 minutes on an H200 (run 3 of BENCHMARKS.md took 310 s before the cuda_graph agents were
# added; most of it compiling). The device command is in BENCHMARKS.md.
# Each step has its own time limit and the script goes on past a failed one; logs and CSVs go to $OUT.
set -uo pipefail
OUT="${OUT:-results/gpu}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"

nvidia-smi -L || true
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"

echo "=== 1. CUDA tests"
timeout "${TEST_LIMIT:-180}" $PY -m pytest -q -rxX -p no:cacheprovider -k "not interpreter" \
  tests/test_triton_redge.py tests/test_fused.py tests/test_cuda_graph.py tests/test_agents.py::test_cuda_graph_update_matches_eager_on_cuda \
  tests/test_agents.py::test_smoke_on_cuda tests/test_agents.py::test_inductor_compiled_update_matches_eager_on_cuda \
  tests/test_agents.py::test_neighbour_values_switch_one_factor_at_a_time 2>&1 | tee "$OUT/tests.log"

echo "=== 2. sampler speed"
timeout "${SAMPLER_LIMIT:-90}" $PY examples/sampler_speed.py --device cuda --min-run-time 0.2 --profile \
  --sizes 65536x18 4096x1024 1024x32768 256x262144 ${SAMPLER_PATHS:-"--paths" triton compiled} \
  --out "$OUT/sampler_speed_cuda.csv" 2>&1 | tee "$OUT/sampler_speed.log"

echo "=== 3. agent speed"
timeout "${AGENT_LIMIT:-300}" $PY examples/agent_speed.py --device cuda --compile --compile-mode reduce-overhead --cuda-graph \
  --minatar --env-steps 200 --grad-steps 300 --repeats 2 --budget "${AGENT_BUDGET:-60}" --out "$OUT/agent_speed_cuda.csv" \
  --only "DiffCatSAC[neighbours]" "DiffCatSAC[neighbours, compiled:reduce-overhead]" \
  "DiffCatSAC[autograd, compiled:reduce-overhead]" "DiffCatSAC[MinAtar CNN, compiled:reduce-overhead]" \
  "DiffCatSAC[neighbours, cuda-graph]" "DiffCatSAC[autograd, cuda-graph]" "DiffCatSAC[neighbours, compiled, cuda-graph]" \
  "DiffCatSAC[MinAtar CNN, cuda-graph]" "DiscreteSAC[MinAtar CNN, cuda-graph]" \
  2>&1 | tee "$OUT/agent_speed.log"

"""Which part of the pair-table neighbour path differs compiled vs eager on CUDA (throwaway diagnostic)."""
import sys, time, traceback
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import FlattenExtractor
from rl_diffcat.agents.common.policies import OneHotCritic

sys.path.insert(0, "tests")  # run from the repository root: python docs/gpu/h200_2026-11-27/run3_cuda_neighbour_compile.py
dev = "cuda" if th.cuda.is_available() else "cpu"
obs_space = spaces.Box(-1.0, 1.0, (4,))
OneHotCritic.broadcast_device_types = ()
for nvec in ([3, 2], [11] * 6, [3, 3, 5]):
    for path, rows in (("pair", 16384), ("gather", 0)):
        OneHotCritic.max_pair_table_rows = rows
        th.manual_seed(0)
        c = OneHotCritic(obs_space, spaces.MultiDiscrete(nvec), [16, 16], FlattenExtractor(obs_space), 4).to(dev)
        obs = th.rand(16, 4, device=dev)
        oh = th.cat([th.nn.functional.one_hot(th.randint(0, k, (16,), device=dev), k).float() for k in nvec], 1)
        with th.no_grad():
            eager = c.neighbour_values(obs, oh)
            comp = th.compile(c.neighbour_values)(obs, oh)
        print("forward", nvec, path, max(float((e - g).abs().max()) for e, g in zip(eager, comp)), flush=True)
import test_agents
for path, rows in (("pair", 16384), ("gather", 0)):
    OneHotCritic.max_pair_table_rows = rows
    tic = time.time()
    try:
        test_agents.check_inductor_update_matches_eager(dev)
        print("update", path, "matches", round(time.time() - tic), "s", flush=True)
    except AssertionError as error:
        print("update", path, "DIFFERS", str(error).splitlines()[:4], flush=True)

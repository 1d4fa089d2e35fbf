"""Scratch: where does a compiled DiffCatSAC gradient step spend its host time on CUDA?"""
import cProfile, pstats, io, time, sys
import torch
import rl_diffcat.envs  # noqa
from rl_diffcat.agents import DiffCatSAC
from stable_baselines3 import SAC

def build(cls, env, fused=False, compiled=True, **kw):
    pk = dict(net_arch=[256, 256])
    if fused:
        pk["optimizer_kwargs"] = dict(fused=True)
    extra = dict(compile_update=True, compile_kwargs=dict(mode="reduce-overhead")) if compiled else {}
    return cls("MlpPolicy", env, learning_starts=256, batch_size=256, train_freq=1, gradient_steps=1,
               buffer_size=100000, policy_kwargs=pk, device="cuda", seed=0, verbose=0, **extra, **kw)

def timed(fn):
    torch.cuda.synchronize(); t = time.perf_counter(); fn(); torch.cuda.synchronize(); return time.perf_counter() - t

models = {
    "compiled": build(DiffCatSAC, "rl_diffcat/Pendulum-Discrete-v0"),
    "compiled+fused": build(DiffCatSAC, "rl_diffcat/Pendulum-Discrete-v0", fused=True),
    "SAC": build(SAC, "Pendulum-v1", compiled=False),
}
for name, m in models.items():
    t = time.perf_counter(); m.learn(512); print(name, "ready", round(time.perf_counter() - t, 1), flush=True)
for rep in range(2):
    for name, m in models.items():
        g = timed(lambda: m.train(300, 256))
        print(f"{name} rep{rep}: {300 / g:.1f} grad-steps/s ({1000 * g / 300:.2f} ms/step)", flush=True)

m = models["compiled"]
pr = cProfile.Profile(); pr.enable(); m.train(300, 256); torch.cuda.synchronize(); pr.disable()
for key in ("tottime", "cumulative"):
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats(key).print_stats(35); print(s.getvalue()[:9000], flush=True)

from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    m.train(50, 256); torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60), flush=True)
print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60), flush=True)

"""``cuda_graph=True``: the whole gradient step captured as one CUDA graph. The CUDA tests check it
is the same algorithm as the eager step (same parameters after several steps on the same
minibatches and random numbers); the CPU tests check the option's errors, the optimizer
conversions and that a model saved while graphed loads and trains on a CPU."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from conftest import requires_cuda
from rl_diffcat.agents import DiffCatSAC, DiscreteSAC
from rl_diffcat.agents.common.cuda_graph import (
    GraphedStep,
    make_capturable,
    release_capturable,
    set_learning_rate,
    stale_streams_redirected,
)
from test_agents import SMALL, FactoredEnv


def test_cuda_graph_needs_a_cuda_device():
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device.*cuda_graph=False"):
        DiffCatSAC("MlpPolicy", "CartPole-v1", device="cpu", cuda_graph=True, **SMALL)


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_cuda_graph_refuses_the_compile_modes_that_graph_the_losses(mode):
    with pytest.raises(ValueError, match="captures the whole step itself"):
        DiffCatSAC("MlpPolicy", "CartPole-v1", device="cpu", cuda_graph=True, compile_update=True,
                   compile_kwargs=dict(mode=mode), **SMALL)


def test_cuda_graph_must_be_a_bool():
    with pytest.raises(ValueError, match="cuda_graph must be True or False"):
        DiscreteSAC("MlpPolicy", "CartPole-v1", cuda_graph="yes", **SMALL)


def test_graph_signature_tells_shapes_and_values_apart():
    sig = GraphedStep._signature
    a = th.zeros(4, 3)
    base = sig([a, 0.99], "spec")
    assert sig([th.ones(4, 3), 0.99], "spec") == base  # new values, same graph
    assert sig([th.zeros(5, 3), 0.99], "spec") != base  # new batch size
    assert sig([a.double(), 0.99], "spec") != base
    assert sig([a, 0.9], "spec") != base  # a new discount is baked into the graph
    assert sig([a, 0.99], "other spec") != base
    # real minibatches: two samples of the same buffer share a signature (their tree specs are equal)
    from stable_baselines3.common.type_aliases import ReplayBufferSamples
    from torch.utils import _pytree as pytree

    def batch():
        return ReplayBufferSamples(*(th.randn(4, 3) for _ in range(5)), discounts=None), 0.99

    (leaves_1, spec_1), (leaves_2, spec_2) = pytree.tree_flatten(batch()), pytree.tree_flatten(batch())
    assert sig(leaves_1, spec_1) == sig(leaves_2, spec_2)


def test_capturable_optimizer_round_trip():
    """make_capturable gives tensor step counts and learning rates; release_capturable takes them
    back to what a non-graphed Adam holds, and the next steps are unchanged."""
    th.manual_seed(0)
    param = th.nn.Parameter(th.randn(5))
    twin = th.nn.Parameter(param.detach().clone())
    opt, opt_twin = th.optim.Adam([param], lr=1e-2), th.optim.Adam([twin], lr=1e-2)
    for p, o in ((param, opt), (twin, opt_twin)):
        p.grad = th.ones(5)
        o.step()
    make_capturable(opt, th.device("cpu"))
    group = opt.param_groups[0]
    assert group["capturable"] and isinstance(group["lr"], th.Tensor)
    lr = group["lr"]
    set_learning_rate(opt, 5e-3)
    assert group["lr"] is lr and float(lr) == pytest.approx(5e-3)  # written in place
    set_learning_rate(opt, 1e-2)
    release_capturable(opt)
    assert not group["capturable"] and group["lr"] == pytest.approx(1e-2) and isinstance(group["lr"], float)
    assert opt.state[param]["step"].device.type == "cpu"
    for p, o in ((param, opt), (twin, opt_twin)):
        p.grad = th.full((5,), 0.5)
        o.step()
    assert th.allclose(param, twin)


def test_stale_stream_override_is_on_only_inside_the_capture():
    """PyTorch's switch for stale autograd streams (where this torch has it) is on while capturing
    and back to its previous value afterwards, also when the step raises."""
    getter = getattr(th._C, "_override_stale_capture_stream", None)
    with stale_streams_redirected() as applied:
        assert applied == (getter is not None and hasattr(th.autograd.graph, "set_override_stale_capture_stream"))
        if applied:
            assert getter()
    if not applied:
        return
    assert not getter()
    with pytest.raises(RuntimeError, match="boom"):
        with stale_streams_redirected():
            raise RuntimeError("boom")
    assert not getter()


def test_release_leaves_a_capturable_optimizer_the_user_chose():
    """Only what make_capturable converted is undone: an optimizer built capturable stays so."""
    chosen = th.optim.Adam([th.nn.Parameter(th.zeros(2))], lr=1e-3, capturable=True)
    make_capturable(chosen, th.device("cpu"))
    release_capturable(chosen)
    assert chosen.param_groups[0]["capturable"]
    converted = th.optim.Adam([th.nn.Parameter(th.zeros(2))], lr=1e-3)
    make_capturable(converted, th.device("cpu"))
    saved = converted.state_dict()  # the mark travels with a saved model
    reloaded = th.optim.Adam([th.nn.Parameter(th.zeros(2))], lr=1e-3)
    reloaded.load_state_dict(saved)
    release_capturable(reloaded)
    assert not reloaded.param_groups[0]["capturable"] and isinstance(reloaded.param_groups[0]["lr"], float)


def test_capturable_rejects_optimizers_without_the_mode():
    opt = th.optim.SGD([th.nn.Parameter(th.zeros(2))], lr=0.1)
    with pytest.raises(ValueError, match="no capturable mode"):
        make_capturable(opt, th.device("cpu"))


def test_model_saved_with_capturable_optimizers_loads_and_trains_on_cpu(tmp_path):
    """What a graphed model's file holds (capturable optimizers, tensor learning rates), loaded
    where graphs cannot run, with cuda_graph=False."""
    model = DiffCatSAC("MlpPolicy", FactoredEnv(spaces.Discrete(3)), seed=0, device="cpu", **SMALL).learn(80)
    for optimizer in model.optimizers:
        make_capturable(optimizer, model.device)
    model.cuda_graph = True  # as saved by a graphed model
    model.save(tmp_path / "model")
    with pytest.raises(ValueError, match="cuda_graph=False"):
        DiffCatSAC.load(tmp_path / "model", env=model.env, device="cpu")
    loaded = DiffCatSAC.load(tmp_path / "model", env=model.env, device="cpu", cuda_graph=False)
    assert not loaded.cuda_graph
    for optimizer in loaded.optimizers:
        assert not optimizer.param_groups[0]["capturable"] and isinstance(optimizer.param_groups[0]["lr"], float)
    loaded.learn(60, reset_num_timesteps=False)
    assert all(th.isfinite(p).all() for p in loaded.policy.parameters())


# -- on CUDA -------------------------------------------------------------------------------------

GRAPH_CASES = [
    (DiffCatSAC, dict(q_gradient="neighbours")),
    (DiffCatSAC, dict(q_gradient="autograd", max_grad_norm=1.0)),
    (DiffCatSAC, dict(sampler="gumbel_softmax", env=spaces.MultiDiscrete([3, 2]))),
    (DiscreteSAC, {}),
]


def train_on_fixed_batches(model, steps, seed=1):
    np.random.seed(seed)  # SB3's replay buffer samples with numpy's global generator
    th.manual_seed(seed)
    model.train(steps, batch_size=SMALL["batch_size"])


@requires_cuda
@pytest.mark.parametrize("algo, kwargs", GRAPH_CASES)
def test_cuda_graph_step_is_the_eager_step(algo, kwargs):
    """The same minibatches and the same generator state: after warm-up, capture and several
    replays, the graphed model holds the eager model's parameters and temperature."""
    kwargs = dict(kwargs)
    env = FactoredEnv(kwargs.pop("env", spaces.Discrete(3)))
    settings = dict(SMALL, learning_starts=200, **kwargs)
    eager = algo("MlpPolicy", env, seed=0, device="cuda", **settings).learn(200)  # fills the buffer only
    graphed = algo("MlpPolicy", env, seed=0, device="cuda", cuda_graph=True, **settings)
    graphed.policy.load_state_dict(eager.policy.state_dict())
    graphed.replay_buffer = eager.replay_buffer
    graphed.set_logger(eager.logger)
    for model in (eager, graphed):
        train_on_fixed_batches(model, 10)
    assert graphed._graphed_step.replays == 10 - 3  # warm-up calls, then one capture and replays
    for (name, p_eager), p_graphed in zip(eager.policy.named_parameters(), graphed.policy.parameters()):
        assert th.allclose(p_eager, p_graphed, rtol=1e-4, atol=1e-5), name
    if eager.log_ent_coef is not None:
        assert th.allclose(eager.log_ent_coef, graphed.log_ent_coef, rtol=1e-5, atol=1e-6)
        assert graphed.ent_coef_optimizer.param_groups[0]["capturable"]


@requires_cuda
def test_cuda_graph_trains_and_takes_new_learning_rates():
    """A graphed run learns with finite parameters, and a new learning rate reaches the captured
    graph (written into the optimizers' tensor learning rates, not baked into the kernels)."""
    model = DiffCatSAC("MlpPolicy", "CartPole-v1", seed=0, device="cuda", cuda_graph=True, **SMALL).learn(300)
    assert model._graphed_step.replays > 0
    assert all(th.isfinite(p).all() for p in model.policy.parameters())
    model.learning_rate = 0.0  # Adam with a zero learning rate leaves the parameters where they are
    model._setup_lr_schedule()
    frozen = [p.clone() for p in model.actor.parameters()]
    replays = model._graphed_step.replays
    model.train(5, batch_size=SMALL["batch_size"])
    assert model._graphed_step.replays == replays + 5
    assert all(th.equal(a, b) for a, b in zip(frozen, model.actor.parameters()))


RESUME_AFTER_LOAD = """
import sys, torch as th
from rl_diffcat.agents import DiffCatSAC
small = dict(learning_starts=50, batch_size=16, buffer_size=1000, policy_kwargs=dict(net_arch=[16, 16]))
model = DiffCatSAC("MlpPolicy", "CartPole-v1", seed=0, device="cuda", cuda_graph=True, **small).learn(300)
model.save(sys.argv[1])
loaded = DiffCatSAC.load(sys.argv[1], env=model.env, device="cuda")
assert loaded.cuda_graph and loaded._graphed_step.replays == 0
before = [p.clone() for p in loaded.policy.parameters()]
loaded.learn(100, reset_num_timesteps=False)
assert loaded._graphed_step.replays > 0
assert any(not th.equal(a, b) for a, b in zip(before, loaded.policy.parameters()))
"""


@requires_cuda
@pytest.mark.xfail(
    reason="seen on an H200 with torch 2.11 (2026-11-26): the capture after load() failed in the critic's "
    "backward ('operation would make the legacy stream depend on a capturing blocking stream': an autograd "
    "node holding the default stream). torch >= 2.13 lets the capture redirect such streams "
    "(stale_streams_redirected); not yet run on CUDA with it",
    strict=False,
)
def test_cuda_graph_resumes_after_load(tmp_path):
    """A graphed model's file loads on CUDA and trains on, capturing its graph anew. Run in its own
    process: a capture that fails leaves CUDA's random-number state unusable for the process."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", RESUME_AFTER_LOAD, str(tmp_path / "model")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

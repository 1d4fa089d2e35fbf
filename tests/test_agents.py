"""Agents: SB3 conventions, spaces, samplers, the pathwise actor gradient and input errors.

Short runs only (the learning checks are in ``test_agents_learning.py``, marked slow)."""

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from torch.nn import functional as F
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from conftest import requires_cuda
from rl_diffcat.agents import DiffCatSAC, DiscreteSAC
from rl_diffcat.agents.diffcat_sac.policies import OneHotCritic
from rl_diffcat.samplers import SAMPLERS

SMALL = dict(learning_starts=50, batch_size=16, buffer_size=1000, policy_kwargs=dict(net_arch=[16, 16]))


class FactoredEnv(gym.Env):
    """Tiny task for any observation/action space: reward = fraction of factors equal to the
    target the observation encodes (``obs`` of the first factor > 0.5 means "pick the last action")."""

    def __init__(self, action_space: spaces.Space, obs_kind: str = "vector") -> None:
        self.action_space = action_space
        self.n_factors = int(np.prod(action_space.shape)) if action_space.shape else 1
        vector = spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)
        image = spaces.Box(0, 255, shape=(36, 36, 1), dtype=np.uint8)
        self.obs_kind = obs_kind
        self.observation_space = {
            "vector": vector,
            "image": image,
            "dict": spaces.Dict({"vec": vector, "img": image}),
        }[obs_kind]
        self._t = 0

    def _obs(self):
        self._bit = self.np_random.integers(2)
        vec = np.full(4, float(self._bit), dtype=np.float32)
        img = np.full((36, 36, 1), 255 * self._bit, dtype=np.uint8)
        return {"vector": vec, "image": img, "dict": {"vec": vec, "img": img}}[self.obs_kind]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action):
        action = np.asarray(action).reshape(-1)
        reward = float(np.mean(action == self._bit))
        self._t += 1
        return self._obs(), reward, False, self._t >= 10, {}


ACTION_SPACES = {
    "discrete": spaces.Discrete(3),
    "multidiscrete": spaces.MultiDiscrete([2, 3, 4]),
    "multibinary": spaces.MultiBinary(5),
}


@pytest.mark.parametrize("space", list(ACTION_SPACES))
def test_diffcat_sac_action_spaces(space):
    env = FactoredEnv(ACTION_SPACES[space])
    model = DiffCatSAC("MlpPolicy", env, seed=0, **SMALL).learn(150)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype))
    # deterministic = argmax of every factor's logits
    logits = model.actor.logits(model.policy.obs_to_tensor(obs)[0])[0]
    expected = [part.argmax().item() for part in th.split(logits, model.actor.action_dims)]
    assert np.asarray(action).reshape(-1).tolist() == expected


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
@pytest.mark.parametrize("obs_kind,policy", [("image", "CnnPolicy"), ("dict", "MultiInputPolicy")])
def test_image_and_dict_observations(algo, obs_kind, policy):
    model = algo(policy, FactoredEnv(spaces.Discrete(2), obs_kind), seed=0, **dict(SMALL, buffer_size=200))
    model.learn(80)
    obs = model.env.reset()
    assert model.predict(obs, deterministic=True)[0].shape == (1,)


@pytest.mark.filterwarnings("ignore:rich is experimental")
@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_vec_env_logger_and_evaluate(algo, tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = algo("MlpPolicy", env, seed=0, **SMALL)
    model.set_logger(configure(str(tmp_path), ["csv", "tensorboard"]))
    model.learn(200, log_interval=1, progress_bar=True)
    logged = open(tmp_path / "progress.csv").readline().strip().split(",")
    for key in ["train/actor_loss", "train/critic_loss", "train/ent_coef", "train/entropy", "train/q_mean"]:
        assert key in logged, key
    assert list(tmp_path.glob("events.out.tfevents*"))
    mean_return, _ = evaluate_policy(model, env, n_eval_episodes=2)
    assert mean_return >= 1.0  # any CartPole episode pays at least one step: this checks it ran
    rows = list(csv.DictReader(open(tmp_path / "progress.csv")))
    entropies = [float(row["train/entropy"]) for row in rows if row["train/entropy"]]
    assert entropies and all(0.0 <= h <= np.log(2) + 1e-6 for h in entropies)  # of a 2-action policy


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_seeded_runs_are_reproducible(algo):
    def run():
        model = algo("MlpPolicy", "CartPole-v1", seed=3, **SMALL).learn(120)
        return th.cat([p.detach().flatten() for p in model.policy.parameters()])

    assert th.equal(run(), run())


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_trains_without_nan(sampler):
    model = DiffCatSAC(
        "MlpPolicy", FactoredEnv(spaces.MultiDiscrete([3, 2])), sampler=sampler,
        sampler_kwargs=dict(n_steps=4, t_1=0.4, tau=0.7), seed=0, **SMALL,
    ).learn(300)
    for p in model.policy.parameters():
        assert th.isfinite(p).all()
    assert np.isfinite(model.logger.name_to_value["train/actor_loss"])


@pytest.mark.parametrize("q_gradient", ["neighbours", "autograd"])
@pytest.mark.parametrize("sampler", ["redge", "straight_through"])
def test_actor_gradient_flows_through_the_sampled_action(sampler, q_gradient):
    """With alpha = 0 the actor loss is -min_i Q_i(s, a~): it has a gradient only through a~."""
    model = DiffCatSAC(
        "MlpPolicy", FactoredEnv(spaces.MultiDiscrete([3, 2])), sampler=sampler, q_gradient=q_gradient, seed=0, **SMALL
    )
    model.learn(100)
    data = model.replay_buffer.sample(32)
    for p in model.actor.parameters():
        p.grad = None
    actor_loss, _ = model.actor_loss(data.observations, th.tensor(0.0))
    actor_loss.backward()
    grad_norm = sum(p.grad.abs().sum() for p in model.actor.parameters() if p.grad is not None)
    assert grad_norm > 0


def test_neighbour_gradient_equals_autograd_for_a_linear_critic():
    """A critic linear in the action is its own multilinear extension: both q_gradient modes must
    give the same actor gradient for the same sampled action (and the same value)."""
    space = spaces.MultiDiscrete([3, 2, 4])
    model = DiffCatSAC(
        "MlpPolicy", FactoredEnv(space), seed=0, **{**SMALL, "policy_kwargs": dict(net_arch=dict(pi=[16], qf=[]))}
    )
    obs = th.rand(8, 4)
    action = model.actor.distribution(obs, sampler="redge").rsample()
    grads, values = [], []
    for mode in ("neighbours", "autograd"):
        model.q_gradient = mode
        q = model.pathwise_q(obs, action)
        values.append(q.detach())
        grads.append(th.autograd.grad(q.sum(), model.actor.logits_net.weight, retain_graph=True)[0])
    th.testing.assert_close(values[0], values[1])
    th.testing.assert_close(grads[0], grads[1])
    assert grads[0].abs().sum() > 0


def _halfcheetah_sized_critic(q_offset: float = 130.0):
    """A DiffCatSAC on 6 factors of 11 with HalfCheetah's critic width, its Q shifted to about
    ``q_offset`` (HalfCheetah's Q scale at 20k steps) so that rounding Q itself would show."""
    model = DiffCatSAC("MlpPolicy", FactoredEnv(spaces.MultiDiscrete([11] * 6)), seed=0, **{**SMALL, "policy_kwargs": dict(net_arch=[256, 256])})
    for q_net in model.critic.q_networks:
        with th.no_grad():
            q_net[-1].bias.fill_(q_offset)
    return model


def _centered(values: th.Tensor) -> th.Tensor:
    """Neighbour values minus their mean within each factor: all the actor's gradient sees."""
    grouped = values.view(values.shape[0], 6, 11)
    return grouped - grouped.mean(-1, keepdim=True)


def test_bfloat16_neighbours_keep_the_differences_that_plain_bfloat16_loses():
    model = _halfcheetah_sized_critic()
    obs = th.rand(64, 4)
    actions = th.randint(0, 11, (64, 6))
    one_hot = model.buffer_one_hot(actions)
    with th.no_grad():
        exact = model.critic.neighbour_values(obs, one_hot)
        low = model.critic.neighbour_values(obs, one_hot, th.bfloat16)
        with th.autocast("cpu", dtype=th.bfloat16):  # every product and its output in bfloat16
            plain = model.critic.neighbour_values(obs, one_hot)
    for want, got, rounded in zip(exact, low, plain):
        signal = _centered(want).pow(2).mean().sqrt()
        assert signal > 0
        assert (_centered(got) - _centered(want)).pow(2).mean().sqrt() < 0.02 * signal
        assert (_centered(rounded.float()) - _centered(want)).pow(2).mean().sqrt() > 0.2 * signal  # why the differences


@pytest.mark.parametrize("path", ["pair_table", "broadcast"])
def test_bfloat16_neighbours_take_q_at_a_from_their_float32_anchor(path, monkeypatch):
    """The bfloat16 path already runs the float32 layers on ``a`` as its anchor: ``a``'s own columns
    hold that float32 Q(s, a), and the output layer runs once per critic, not again for ``a``."""
    monkeypatch.setattr(OneHotCritic, "broadcast_device_types", ("cpu",) if path == "broadcast" else ())
    model = _halfcheetah_sized_critic()
    obs = th.rand(16, 4)
    actions = th.randint(0, 11, (16, 6))
    one_hot = model.buffer_one_hot(actions)
    calls = []
    hooks = [q_net[-1].register_forward_hook(lambda *_: calls.append(1)) for q_net in model.critic.q_networks]
    with th.no_grad():
        values = model.critic.neighbour_values(obs, one_hot, th.bfloat16)
    for hook in hooks:
        hook.remove()
    assert len(calls) == 2 * len(values)  # anchor rows and neighbour rows, per critic; no third pass
    with th.no_grad():
        at_a = model.critic(obs, one_hot)
    own_columns = actions + th.arange(6) * 11
    for got, want in zip(values, at_a):
        if path == "pair_table":  # a's columns are the anchor itself
            th.testing.assert_close(got.gather(1, own_columns), want.expand(-1, 6))
        else:  # the broadcast evaluates a once per factor, as a (bfloat16-rounded) difference of zero
            th.testing.assert_close(got.gather(1, own_columns), want.expand(-1, 6), rtol=1e-3, atol=1e-2)


def test_bfloat16_neighbours_give_the_float32_actor_gradient():
    model = _halfcheetah_sized_critic()
    obs = th.rand(64, 4)
    action = model.actor.distribution(obs, sampler="redge").rsample()
    grads = []
    for dtype in ("float32", "bfloat16"):
        model.neighbour_dtype = dtype
        q = model.pathwise_q(obs, action)
        grads.append(th.autograd.grad(q.sum(), model.actor.logits_net.weight, retain_graph=True)[0].flatten())
    cosine = grads[0] @ grads[1] / (grads[0].norm() * grads[1].norm())
    assert cosine > 0.999 and grads[0].norm() > 0


def test_bfloat16_neighbours_train_and_bad_dtype_is_refused():
    model = DiffCatSAC("MlpPolicy", FactoredEnv(spaces.MultiDiscrete([3, 2])), seed=0, neighbour_dtype="bfloat16", **SMALL).learn(100)
    assert model.neighbour_dtype == "bfloat16"
    assert all(th.isfinite(p).all() for p in model.policy.parameters())
    with pytest.raises(ValueError, match="neighbour_dtype must be one of"):
        DiffCatSAC("MlpPolicy", FactoredEnv(spaces.MultiDiscrete([3, 2])), neighbour_dtype="float16", **SMALL)
    with pytest.raises(ValueError, match="neighbour_dtype must be one of"):
        model.neighbour_dtype = "float16"
    assert model.neighbour_dtype == "bfloat16"


def test_load_takes_neighbour_dtype_over_the_saved_one(tmp_path):
    """SB3's ``load(path, **kwargs)`` sets attributes; this one is a property and must not be shadowed."""
    model = DiffCatSAC("MlpPolicy", FactoredEnv(spaces.MultiDiscrete([3, 2])), seed=0, neighbour_dtype="bfloat16", **SMALL)
    model.save(tmp_path / "model")
    assert DiffCatSAC.load(tmp_path / "model")._neighbour_matmul_dtype == th.bfloat16
    loaded = DiffCatSAC.load(tmp_path / "model", neighbour_dtype="float32")
    assert loaded.neighbour_dtype == "float32" and loaded._neighbour_matmul_dtype is None
    assert "neighbour_dtype" not in loaded.__dict__
    with pytest.raises(ValueError, match="neighbour_dtype must be one of"):
        DiffCatSAC.load(tmp_path / "model", neighbour_dtype="float16")


def test_auto_neighbour_dtype_takes_bfloat16_only_with_hardware_support(monkeypatch):
    from rl_diffcat.agents.diffcat_sac.diffcat_sac import resolve_neighbour_dtype

    for amx, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(th.cpu, "_is_amx_tile_supported", lambda amx=amx: amx)
        assert resolve_neighbour_dtype("auto", th.device("cpu")) == expected
    monkeypatch.undo()
    assert resolve_neighbour_dtype("float32", th.device("cpu")) == "float32"
    assert resolve_neighbour_dtype("bfloat16", th.device("cpu")) == "bfloat16"
    # "auto" gives exactly the actor signal of the dtype it resolves to on this machine
    model = _halfcheetah_sized_critic()
    obs = th.rand(16, 4)
    action = model.actor.distribution(obs, sampler="redge").rsample()
    model.neighbour_dtype = "auto"
    q_auto = model.pathwise_q(obs, action)
    model.neighbour_dtype = resolve_neighbour_dtype("auto", model.device)
    assert th.equal(q_auto, model.pathwise_q(obs, action))


@pytest.mark.parametrize(
    "algo,kwargs",
    [
        (DiffCatSAC, dict(q_gradient="autograd")),
        (DiffCatSAC, dict(backup_entropy=False)),
        (DiffCatSAC, dict(normalize_q=False, twin_q="mean", max_grad_norm=1.0)),
        (DiscreteSAC, dict(backup_entropy=False, twin_q="mean", max_grad_norm=1.0)),
    ],
)
def test_stabilizer_options_train(algo, kwargs):
    model = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL, **kwargs).learn(150)
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_exact_target_option():
    """``exact_target``: the critic's target is r + gamma (1 - d) [sum_a' pi(a'|s') min_j Q'_j(s', a')
    + alpha H(pi(.|s'))], recomputed here by enumerating a'; no draw of a', so no seed matters."""
    model = DiffCatSAC("MlpPolicy", "CartPole-v1", exact_target=True, seed=0, **SMALL).learn(100)
    data, alpha = model.replay_buffer.sample(16), th.tensor(0.3)
    with th.no_grad():
        dist = model.actor.distribution(data.next_observations)
        all_q = [model.critic_target(data.next_observations, F.one_hot(th.full((16,), a), 2).float()) for a in range(2)]
        min_q = th.cat([th.min(*q) for q in all_q], dim=1)  # (16, 2)
        next_v = (dist.probs * min_q).sum(-1, keepdim=True) + alpha * dist.entropy().unsqueeze(-1)
        target = data.rewards + (1 - data.dones) * model.gamma * next_v
        expected = model.td_loss(model.critic(data.observations, model.buffer_one_hot(data.actions)), target)
    losses = []
    for seed in (1, 2):
        th.manual_seed(seed)
        losses.append(model.critic_loss(data, model.gamma, alpha)[0].item())
    assert losses[0] == losses[1] == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="exact_target"):
        DiffCatSAC("MlpPolicy", FactoredEnv(spaces.MultiBinary(3)), exact_target=True, **SMALL)


def test_sampled_target_draws_next_actions_from_the_policy():
    """Without ``exact_target`` the target critics see ``a' ~ pi(.|s')``: over 400 draws the share of
    each action per next state is pi's (4 standard errors), not the argmax's 0 or 1."""
    model = DiffCatSAC("MlpPolicy", "CartPole-v1", seed=0, **SMALL).learn(100)
    data, seen = model.replay_buffer.sample(16), []
    critic_target = model.critic_target.forward
    model.critic_target.forward = lambda obs, action: seen.append(action) or critic_target(obs, action)
    th.manual_seed(1)
    for _ in range(400):
        model.critic_loss(data, model.gamma, th.tensor(0.0))
    shares = th.stack(seen).mean(0)  # (16, 2)
    with th.no_grad():
        probs = model.actor.distribution(data.next_observations).probs
    assert probs.min() > 0.05  # an early policy: the argmax would be far from pi
    assert (shares - probs).abs().max() < 4 * 0.5 / 400**0.5


@pytest.mark.parametrize("q_gradient", ["neighbours", "autograd"])
def test_normalize_q_makes_the_actor_step_independent_of_the_scale_of_q(q_gradient):
    """With ``normalize_q`` (the default) and ``alpha = 0`` the actor's gradient is unchanged when the
    critics' outputs are multiplied by 10; without it the gradient grows 10-fold."""

    def actor_gradient(model):
        model.actor.zero_grad()
        th.manual_seed(0)
        model.actor_loss(data.observations, th.tensor(0.0))[0].backward()
        return th.cat([p.grad.flatten() for p in model.actor.parameters() if p.grad is not None])

    for normalize_q, growth in ((True, 1.0), (False, 10.0)):
        model = DiffCatSAC("MlpPolicy", "CartPole-v1", seed=0, normalize_q=normalize_q, q_gradient=q_gradient, **SMALL)
        model.learn(100)
        data = model.replay_buffer.sample(16)
        before = actor_gradient(model)
        with th.no_grad():
            for q_net in model.critic.q_networks:
                q_net[-1].weight.mul_(10.0)
                q_net[-1].bias.mul_(10.0)
        th.testing.assert_close(actor_gradient(model), growth * before, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_backup_entropy_puts_alpha_in_the_target_or_leaves_it_out(algo):
    def losses(**kwargs):
        model = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL, **kwargs).learn(100)
        data = model.replay_buffer.sample(16, env=None)
        values = []
        for alpha in (0.0, 5.0):
            th.manual_seed(1)  # the same a' ~ pi for DiffCatSAC's sampled target
            values.append(model.critic_loss(data, model.gamma, th.tensor(alpha))[0].item())
        return values

    without = losses(backup_entropy=False)
    assert without[0] == without[1]
    with_entropy = losses()
    assert with_entropy[0] != pytest.approx(with_entropy[1], rel=1e-3)


def grad_norm(params):
    return th.linalg.vector_norm(th.cat([p.grad.flatten() for p in params])).item()


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_twin_q_reduction_and_gradient_clipping(algo):
    q1, q2 = th.tensor([[1.0], [4.0]]), th.tensor([[3.0], [2.0]])
    assert th.equal(algo("MlpPolicy", "CartPole-v1", **SMALL).reduce_twin((q1, q2)), th.tensor([[1.0], [2.0]]))
    model = algo("MlpPolicy", "CartPole-v1", twin_q="mean", max_grad_norm=1.0, **SMALL)
    assert th.equal(model.reduce_twin((q1, q2)), th.tensor([[2.0], [3.0]]))
    params = [p for group in model.critic.optimizer.param_groups for p in group["params"]]
    loss = 1e3 * sum(p.sum() for p in params)  # a gradient far larger than the clip
    model.optimizer_step(model.critic.optimizer, loss)
    assert grad_norm(params) == pytest.approx(1.0, rel=1e-4)
    model.max_grad_norm = None
    model.optimizer_step(model.critic.optimizer, 1e3 * sum(p.sum() for p in params))
    assert grad_norm(params) > 100


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_critic_target_takes_per_sample_discounts(algo):
    """n-step buffers hand the critic loss one discount per sample (``gamma^k``, k = rewards summed)."""
    model = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL).learn(100)
    data, alpha = model.replay_buffer.sample(16), th.tensor(0.2)

    def loss(discounts):
        th.manual_seed(1)  # the same next actions a' ~ pi for DiffCatSAC's sampled target
        return model.critic_loss(data, discounts, alpha)[0]

    assert loss(th.full((16, 1), model.gamma)).item() == pytest.approx(loss(model.gamma).item(), rel=1e-6)
    # A zero discount leaves the reward alone as the target.
    current = model.critic(data.observations, model.buffer_one_hot(data.actions)) if algo is DiffCatSAC else tuple(
        q.gather(1, data.actions.long()) for q in model.critic(data.observations))
    assert loss(th.zeros(16, 1)).item() == pytest.approx(model.td_loss(current, data.rewards).item(), rel=1e-5)


def test_temperature_step_is_the_gradient_step_of_its_loss():
    """alpha moves as Adam on L(log alpha) = log alpha * (H - H_target) would move it: down while
    the policy is more random than the target, up while it is less."""
    model = DiffCatSAC("MlpPolicy", "CartPole-v1", seed=0, **SMALL)
    twin = model.log_ent_coef.detach().clone().requires_grad_(True)
    reference = th.optim.Adam([twin], lr=model.ent_coef_optimizer.param_groups[0]["lr"])
    for entropy in (model.target_entropy + 0.3, model.target_entropy + 0.1, model.target_entropy - 0.5):
        before = model.log_ent_coef.item()
        model.ent_coef_update(th.tensor(entropy))
        reference.zero_grad()
        (twin * (th.tensor(entropy) - model.target_entropy)).sum().backward()
        reference.step()
        assert th.equal(model.log_ent_coef.detach(), twin.detach())
        assert (model.log_ent_coef.item() < before) == (entropy > model.target_entropy)


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_temperature_stays_within_bounds(algo):
    # An unreachable target (the max entropy) drives alpha up; it must stop at the bound.
    model = algo(
        "MlpPolicy", "CartPole-v1", target_entropy_scale=1.0, ent_coef="auto_0.5", ent_coef_bounds=(1e-3, 0.6),
        learning_rate=0.05, seed=0, **{k: v for k, v in SMALL.items() if k != "learning_rate"},
    ).learn(200)
    assert 1e-3 - 1e-9 <= model.current_ent_coef.item() <= 0.6 + 1e-6
    assert model.target_entropy == pytest.approx(np.log(2))


def test_fixed_temperature():
    model = DiffCatSAC("MlpPolicy", "CartPole-v1", ent_coef=0.05, seed=0, **SMALL).learn(100)
    assert model.log_ent_coef is None and model.current_ent_coef.item() == pytest.approx(0.05)


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_box_action_space_points_to_sac(algo):
    with pytest.raises(ValueError, match="stable_baselines3.SAC") as error:
        algo("MlpPolicy", "Pendulum-v1")
    # binning the actions only helps the agent that takes MultiDiscrete spaces
    assert ("DiscretizeAction" in str(error.value)) == (algo is DiffCatSAC)


@pytest.mark.parametrize("space", ["multidiscrete", "multibinary"])
def test_discrete_sac_points_to_diffcat_sac(space):
    with pytest.raises(ValueError, match="DiffCatSAC"):
        DiscreteSAC("MlpPolicy", FactoredEnv(ACTION_SPACES[space]))


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
@pytest.mark.parametrize(
    "kwargs,argument",
    [
        (dict(learning_rate=-1e-3), "learning_rate"),
        (dict(target_entropy_scale=0.0), "target_entropy_scale"),
        (dict(target_entropy_scale=1.5), "target_entropy_scale"),
        (dict(ent_coef=-0.1), "ent_coef"),
        (dict(ent_coef="autox"), "ent_coef"),
        (dict(ent_coef_bounds=(1.0, 0.1)), "ent_coef_bounds"),
        (dict(twin_q="max"), "twin_q"),
        (dict(tau=0.0), "tau"),
        (dict(policy_kwargs=dict(n_critics=0)), "n_critics"),
        (dict(batch_size=0), "batch_size"),
        (dict(buffer_size=0), "buffer_size"),  # SB3 would make it 1 without a word
        (dict(learning_starts=-5), "learning_starts"),
        (dict(gradient_steps=0), r"gradient_steps must be an integer >= 1 \(or -1"),  # SB3 would never train
        (dict(train_freq=0), "train_freq"),  # SB3 would fail in learn, with a bare AssertionError
        (dict(train_freq=(0, "episode")), r"train_freq\[0\]"),
        (dict(train_freq=(4, "epoch")), "train_freq"),
        (dict(n_steps=0), "n_steps"),
        (dict(learning_starts=1e4), r"learning_starts must be an integer >= 0, got 10000.0 \(YAML reads 1e4 as a float"),
        (dict(target_update_interval=0), "target_update_interval"),  # ZeroDivisionError in train
        (dict(ent_coef_bounds=(0.1,)), r"ent_coef_bounds must be a pair"),  # failed to unpack
        (dict(ent_coef_bounds=None), r"ent_coef_bounds must be a pair"),
        (dict(tau="0.1"), r"tau \(Polyak coefficient\)"),  # a TypeError from '<'
        (dict(gamma="0.99"), "gamma"),
        (dict(ent_coef="auto_5"), r"starts the tuned temperature at 5, outside ent_coef_bounds"),  # silently became 1
        (dict(ent_coef="auto", ent_coef_bounds=(1e-3, 0.5)), r"starts the tuned temperature at 1, outside"),
        # bool("False") is True: a flag given as a string must not switch the option on
        (dict(backup_entropy="False"), "backup_entropy must be True or False, got 'False'"),
        (dict(compile_update="False"), "compile_update must be True or False"),
    ],
)
def test_bad_hyperparameters_name_the_argument(algo, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        algo("MlpPolicy", "CartPole-v1", **kwargs)


@pytest.mark.parametrize("flag", ["exact_target", "normalize_q"])
def test_diffcat_sac_flags_must_be_bools(flag):
    with pytest.raises(ValueError, match=f"{flag} must be True or False, got 'False'"):
        DiffCatSAC("MlpPolicy", "CartPole-v1", **{flag: "False"})
    assert getattr(DiffCatSAC("MlpPolicy", "CartPole-v1", **{flag: np.bool_(False)}), flag) is False


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_sb3_spellings_of_the_schedule_are_accepted(algo):
    model = algo("MlpPolicy", "CartPole-v1", train_freq=(1, "episode"), gradient_steps=-1, **{**SMALL, "learning_starts": 0})
    model.learn(60)  # -1: one gradient step per env step of each episode
    assert model._n_updates >= 50
    # what YAML files and --hyperparams give: a list, numpy numbers (SB3 itself takes only a tuple of an int)
    for train_freq in ([2, "episode"], np.int64(4), (np.int64(4), "step")):
        algo("MlpPolicy", "CartPole-v1", train_freq=train_freq, **SMALL).learn(60)
    algo("MlpPolicy", "CartPole-v1", learning_rate=np.float32(3e-4), tau=np.float32(0.01), ent_coef=np.float32(0.1), **SMALL)


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_targets_are_updated_every_target_update_interval_gradient_steps(algo, monkeypatch):
    import rl_diffcat.agents.common.categorical_sac as categorical_sac

    calls = []
    original = categorical_sac.polyak_update
    monkeypatch.setattr(categorical_sac, "polyak_update", lambda *args: (calls.append(args[2]), original(*args)))
    model = algo("MlpPolicy", "CartPole-v1", target_update_interval=4, **SMALL).learn(90)  # one gradient step per env step
    assert model._n_updates == 40
    assert len(calls) == 2 * 10  # critics and batch-norm statistics, every 4th step (SB3's counting: 40)


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        (dict(sampler="gumbel"), "sampler"),
        (dict(sampler_kwargs=dict(n_steps=1)), "n_steps"),
        (dict(sampler_kwargs=dict(t_1=1.5)), "t_1"),
        (dict(sampler_kwargs=dict(steps=3)), "sampler_kwargs"),
        (dict(q_gradient="finite"), "q_gradient"),
    ],
)
def test_bad_sampler_settings(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        DiffCatSAC("MlpPolicy", "CartPole-v1", **kwargs)


def losses_and_gradients(model, loss_fn, args, seed=0):
    """Loss value and the gradients it sends to the model's parameters, for one fixed minibatch."""
    model.policy.zero_grad(set_to_none=True)
    th.manual_seed(seed)
    loss, _ = loss_fn(*args)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.policy.named_parameters() if p.grad is not None}


def assert_same_losses_and_gradients(model, twin, rtol=1.3e-6, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-6):
    """``twin`` (same parameters, compiled update) computes ``model``'s losses and gradients on one
    fixed minibatch, drawing the same random numbers."""
    data, alpha = model.replay_buffer.sample(16), th.tensor(0.2, device=model.device)
    for method in ("critic", "actor"):
        args = (data, model.gamma, alpha) if method == "critic" else (data.observations, alpha, getattr(data, "action_masks", None))
        want_loss, want_grads = losses_and_gradients(model, getattr(model, f"{method}_loss"), args)
        got_loss, got_grads = losses_and_gradients(twin, getattr(twin, f"_{method}_loss_fn"), args)
        th.testing.assert_close(got_loss, want_loss, rtol=rtol, atol=atol)
        assert got_grads.keys() == want_grads.keys() and want_grads
        for name in want_grads:
            th.testing.assert_close(got_grads[name], want_grads[name], rtol=grad_rtol, atol=grad_atol)


@pytest.mark.parametrize(
    "algo,kwargs",
    [
        (DiffCatSAC, {}),
        (DiffCatSAC, dict(q_gradient="autograd", exact_target=True)),
        (DiffCatSAC, dict(neighbour_dtype="bfloat16")),
        (DiscreteSAC, {}),
    ],
)
def test_compiled_update_matches_eager(algo, kwargs):
    """compile_update traces the critic and actor losses into graphs: same losses and gradients as
    the eager methods on a fixed minibatch. Here through the ``aot_eager`` backend (traced forward,
    AOT-derived backward, no code generation, so it stays fast); the code-generating backend is
    checked in the slow test below and on CUDA."""
    model = algo("MlpPolicy", FactoredEnv(spaces.Discrete(3)), seed=0, **{**SMALL, **kwargs}).learn(100)
    twin = type(model)("MlpPolicy", model.env, seed=0, compile_update=True, compile_kwargs=dict(backend="aot_eager"), **{**SMALL, **kwargs})
    twin.policy.load_state_dict(model.policy.state_dict())
    assert_same_losses_and_gradients(model, twin)
    twin.replay_buffer = model.replay_buffer
    twin.learn(50, reset_num_timesteps=False)  # the whole loop runs compiled
    assert all(th.isfinite(p).all() for p in twin.policy.parameters())


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("q_gradient", ["neighbours", "autograd", "neighbours:bfloat16", "neighbours:auto"])
def test_losses_trace_into_single_graphs(sampler, q_gradient):
    """No graph break in either loss: each compiles to one graph (fewer launches and host syncs)."""
    import torch._dynamo

    q_gradient, _, dtype = q_gradient.partition(":")
    model = DiffCatSAC("MlpPolicy", FactoredEnv(spaces.MultiDiscrete([3, 2])), sampler=sampler, q_gradient=q_gradient,
                       neighbour_dtype=dtype or "float32", seed=0, **SMALL).learn(60)
    data, alpha = model.replay_buffer.sample(16), th.tensor(0.1)
    for fn, args in ((model.critic_loss, (data, model.gamma, alpha)), (model.actor_loss, (data.observations, alpha))):
        explanation = torch._dynamo.explain(fn)(*args)
        assert explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_losses_trace_into_single_graphs_with_image_observations(algo):
    """SB3's preprocess_obs asks is_image_space (numpy) on every call: the agents decide it once,
    so a CNN policy's losses also compile to one graph each, and images are still scaled."""
    import torch._dynamo

    model = algo("CnnPolicy", FactoredEnv(spaces.Discrete(3), obs_kind="image"), seed=0, **SMALL).learn(40)
    assert model.actor.scale_images and model.critic.scale_images
    data, alpha = model.replay_buffer.sample(8), th.tensor(0.1)
    for fn, args in ((model.critic_loss, (data, model.gamma, alpha)), (model.actor_loss, (data.observations, alpha))):
        explanation = torch._dynamo.explain(fn)(*args)
        assert explanation.graph_break_count == 0, explanation.break_reasons
    obs = th.full((1, 1, 36, 36), 255.0)
    seen = []
    hook = model.actor.features_extractor.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    model.actor.logits(obs)
    hook.remove()
    assert th.allclose(seen[0], th.ones_like(obs))


def test_compile_update_is_not_saved(tmp_path):
    """The compiled functions are rebuilt on load, not pickled."""
    model = DiffCatSAC("MlpPolicy", FactoredEnv(spaces.Discrete(3)), seed=0, compile_update=True,
                       compile_kwargs=dict(backend="aot_eager"), **SMALL).learn(80)
    model.save(tmp_path / "model")
    loaded = DiffCatSAC.load(tmp_path / "model", env=model.env)
    assert loaded.compile_update and loaded.compile_kwargs == dict(backend="aot_eager")
    assert loaded._critic_loss_fn is not loaded.critic_loss  # compiled again
    loaded.learn(40, reset_num_timesteps=False)


def check_inductor_update_matches_eager(device, compile_kwargs=None, q_gradient="neighbours"):
    """torch.compile's default (code-generating) backend, with eager random numbers so both paths
    draw the same samples: same losses and gradients as the eager methods."""
    from torch._inductor import config

    kwargs = dict(SMALL, q_gradient=q_gradient)
    model = DiffCatSAC("MlpPolicy", FactoredEnv(spaces.MultiDiscrete([3, 2])), seed=0, device=device, **kwargs).learn(100)
    with config.patch(fallback_random=True):
        twin = type(model)(
            "MlpPolicy", model.env, seed=0, device=device, compile_update=True, compile_kwargs=compile_kwargs, **kwargs
        )
        twin.policy.load_state_dict(model.policy.state_dict())
        assert_same_losses_and_gradients(model, twin, rtol=1e-5, atol=1e-6, grad_atol=1e-5)
        twin.replay_buffer = model.replay_buffer
        twin.learn(50, reset_num_timesteps=False)
    assert all(th.isfinite(p).all() for p in twin.policy.parameters())


@pytest.mark.slow
def test_inductor_compiled_update_matches_eager_on_cpu():
    """Slow: tens of seconds of C++ compilation on CPU."""
    check_inductor_update_matches_eager("cpu")


@requires_cuda
def test_inductor_compiled_update_matches_eager_on_cuda():
    check_inductor_update_matches_eager("cuda")


@requires_cuda
@pytest.mark.parametrize(
    "q_gradient",
    [
        "neighbours",
        pytest.param(
            "autograd",
            marks=pytest.mark.xfail(
                reason="known: on an H200 the compiled actor gradient differed from eager in 24 of 64 "
                "entries of the first layer (max 0.0097); matches on CPU (aot_eager); cause not found yet"
            ),
        ),
    ],
)
def test_cuda_graph_update_matches_eager_on_cuda(q_gradient):
    """compile mode "reduce-overhead" replays the update as CUDA graphs, whose outputs the next
    replay overwrites: same losses and gradients, and a training loop that keeps nothing stale."""
    check_inductor_update_matches_eager("cuda", dict(mode="reduce-overhead"), q_gradient)


@requires_cuda
@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_smoke_on_cuda(algo):
    model = algo("MlpPolicy", "CartPole-v1", device="cuda", seed=0, **SMALL).learn(150)
    assert model.actor.logits_net.weight.is_cuda
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_polyak_update_is_sb3s_arithmetic_in_multi_tensor_ops():
    from stable_baselines3.common.utils import polyak_update as sb3_polyak_update

    from rl_diffcat.agents.common.categorical_sac import polyak_update

    gen = th.Generator().manual_seed(0)
    params = [th.randn(7, 5, generator=gen), th.randn(5, generator=gen)]
    for tau in (0.005, 0.3, 1.0):
        ours = [th.randn(p.shape, generator=gen) for p in params]
        theirs = [t.clone() for t in ours]
        polyak_update(params, ours, tau)
        sb3_polyak_update(params, theirs, tau)
        assert all(th.equal(a, b) for a, b in zip(ours, theirs))  # bit for bit
    polyak_update([], [], 0.5)  # no batch-norm statistics: nothing to do
    with pytest.raises(ValueError, match="2 parameters for 1 target"):
        polyak_update(params, params[:1], 0.5)


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_target_critics_track_the_critics_after_load(algo, tmp_path):
    """The parameter lists the target update walks are rebuilt on load, not saved: after loading,
    the update moves the loaded target critics toward the loaded critics."""
    model = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL).learn(120)
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", env=model.env)
    assert all(a is b for a, b in zip(loaded.critic_target_params, loaded.critic_target.parameters()))
    before = [p.clone() for p in loaded.critic_target.parameters()]
    loaded.learn(60, reset_num_timesteps=False)
    assert any(not th.equal(a, b) for a, b in zip(before, loaded.critic_target.parameters()))

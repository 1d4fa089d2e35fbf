"""Our gymnasium envs: registration, the env checkers, the discretising wrapper, the polynomial task, MinAtar."""

import itertools
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

import rl_diffcat.envs as rl_envs
from rl_diffcat.envs import DiscretizeAction, MaskedPolynomialProgramming, PolynomialProgramming, list_envs

# The checkers are pointed at the made env on purpose: for *-Discrete ids the wrapper is the env under test.
pytestmark = pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version")


def _skip_without_extra(env_id: str) -> None:
    extra = list_envs()[env_id]
    if extra is not None and not rl_envs.extra_installed(extra):
        pytest.skip(f"{env_id} needs the optional extra {extra!r}: pip install 'rl-diffcat[{extra}]'")


@pytest.mark.parametrize("env_id", sorted(list_envs()))
def test_registered_env_passes_checkers(env_id):
    _skip_without_extra(env_id)
    env = gym.make(env_id)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.spec.id == env_id
    env.close()
    # SB3's own env factory asks for render_mode="rgb_array" by default.
    vec_env = make_vec_env(env_id, n_envs=2, seed=0)
    vec_env.reset()
    vec_env.step(np.stack([vec_env.action_space.sample() for _ in range(2)]))
    vec_env.close()


def test_list_envs_names_extras_and_everything_is_registered():
    envs = list_envs()
    assert set(envs.values()) == {None, "box2d", "mujoco", "minatar"}
    assert envs["rl_diffcat/HalfCheetah-Discrete-v0"] == "mujoco"
    assert envs["rl_diffcat/PolyProg-D4-v0"] is None and envs["rl_diffcat/PolyProg-Masked-D16-v0"] is None
    assert all(env_id in gym.registry for env_id in envs)
    installed = list_envs(installed_only=True)
    assert all(extra is None or rl_envs.extra_installed(extra) for extra in installed.values())


def test_discretized_id_maps_each_continuous_task_to_ours():
    assert rl_envs.discretized_id("Pendulum-v1") == "rl_diffcat/Pendulum-Discrete-v0"
    assert rl_envs.discretized_id("HalfCheetah-v5") == "rl_diffcat/HalfCheetah-Discrete-v0"
    assert rl_envs.discretized_id("HalfCheetah-v4") is None and rl_envs.discretized_id("CartPole-v1") is None
    for env_id in list_envs():
        if env_id.endswith("-Discrete-v0"):
            base_id = gym.spec(env_id).kwargs["env_id"]
            assert rl_envs.discretized_id(base_id) == env_id


def test_registration_is_idempotent():
    before = {env_id: gym.spec(env_id) for env_id in list_envs()}
    rl_envs.register_envs()
    assert all(gym.spec(env_id) is spec for env_id, spec in before.items())


def test_module_prefix_makes_env_without_explicit_import():
    code = (
        "import gymnasium as gym; "
        "env = gym.make('rl_diffcat.envs:rl_diffcat/Pendulum-Discrete-v0'); "
        "print(env.action_space)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "MultiDiscrete([11])" in out.stdout


def test_unknown_id_is_rejected_with_known_ids():
    with pytest.raises(ValueError, match="known ids.*rl_diffcat/PolyProg-D4-v0"):
        rl_envs.make_env("rl_diffcat/NoSuchEnv-v0")


@pytest.mark.parametrize(
    "env_id, extra",
    [("rl_diffcat/HalfCheetah-Discrete-v0", "mujoco"), ("rl_diffcat/LunarLanderContinuous-Discrete-v0", "box2d")],
)
def test_missing_extra_error_names_the_extra(monkeypatch, env_id, extra):
    from rl_diffcat.envs import registration

    monkeypatch.setitem(registration.EXTRA_MODULES, extra, "module_that_is_not_installed")
    with pytest.raises(ImportError, match=rf"pip install 'rl-diffcat\[{extra}\]'"):
        gym.make(env_id)
    with pytest.raises(ImportError, match=rf"rl-diffcat\[{extra}\]"):
        rl_envs.make_env(env_id)


# ---- DiscretizeAction -------------------------------------------------------------------------


class _BoxActionEnv(gym.Env):
    """Minimal env with a 2-D Box action space, for wrapper tests independent of any extra."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self, low=-2.0, high=(1.0, 3.0, 0.5, 0.0, 7.0, -1.0)):
        low, high = np.full((2, 3), low, dtype=np.float32), np.reshape(high, (2, 3)).astype(np.float32)
        self.action_space = spaces.Box(low, high, dtype=np.float32)
        self.last_action = None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.last_action = action
        return np.zeros(1, dtype=np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("bins", [2, 3, 11])
def test_discretize_round_trip_bins_to_action_to_bins(bins):
    env = DiscretizeAction(_BoxActionEnv(), bins=bins)
    assert env.action_space == spaces.MultiDiscrete([bins] * 6)
    assert env.n_joint_actions == bins**6
    box = env.env.action_space
    for idx in itertools.islice(itertools.product(range(bins), repeat=6), 0, None, max(1, bins**6 // 200)):
        action = env.action(np.array(idx))
        assert action.shape == box.shape and action.dtype == box.dtype
        assert box.contains(action)
        np.testing.assert_array_equal(env.to_bins(action), idx)


def test_discretize_bins_hit_bounds_evenly():
    env = DiscretizeAction(_BoxActionEnv(), bins=5)
    box = env.env.action_space
    np.testing.assert_allclose(env.action(np.zeros(6, dtype=int)), box.low)
    np.testing.assert_allclose(env.action(np.full(6, 4)), box.high)
    steps = np.diff(env.bin_values, axis=1)
    np.testing.assert_allclose(steps, np.repeat(steps[:, :1], 4, axis=1))
    env.reset(seed=0)
    env.step(np.full(6, 2))
    np.testing.assert_allclose(env.env.last_action, (box.low + box.high) / 2, rtol=1e-6)


def test_discretized_pendulum_keeps_time_limit_and_passes_kwargs():
    env = gym.make("rl_diffcat/Pendulum-Discrete-v0", bins=5, g=3.0)
    assert env.action_space == spaces.MultiDiscrete([5])
    assert env.unwrapped.g == 3.0
    assert env.spec.max_episode_steps == gym.spec("Pendulum-v1").max_episode_steps
    env.reset(seed=0)
    n_steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        n_steps += 1
        assert not terminated
    assert n_steps == env.spec.max_episode_steps


@pytest.mark.parametrize("bins", [1, 0, -3, 2.5, True, "11", [3, 3, 3, 3, 3, 1], [3] * 5, (3,) * 7, [3, 3, 3, 3, 3, 2.0]])
def test_discretize_rejects_bad_bins(bins):
    with pytest.raises(ValueError, match="bins must be an integer >= 2"):
        DiscretizeAction(_BoxActionEnv(), bins=bins)


def test_discretize_takes_a_bin_count_per_dimension():
    bins = (2, 3, 5, 11, 4, 3)
    env = DiscretizeAction(_BoxActionEnv(), bins=list(bins))
    box = env.env.action_space
    assert env.action_space == spaces.MultiDiscrete(list(bins)) and env.bins == bins
    assert env.n_joint_actions == 2 * 3 * 5 * 11 * 4 * 3
    low, high = box.low.astype(np.float64).reshape(-1), box.high.astype(np.float64).reshape(-1)  # a (2, 3) Box
    for d, n in enumerate(bins):  # each dimension its own even grid from low to high
        np.testing.assert_allclose(env.bin_values[d], low[d] + np.arange(n) * (high[d] - low[d]) / (n - 1))
    np.testing.assert_allclose(env.action(np.zeros(6, dtype=int)), box.low)
    np.testing.assert_allclose(env.action(np.array(bins) - 1), box.high)
    for idx in itertools.product(*(range(n) for n in bins)):
        np.testing.assert_array_equal(env.to_bins(env.action(np.array(idx))), idx)
    with pytest.raises(ValueError, match=r"entry d in \[0, bins\[d\]\), bins=\[2, 3, 5, 11, 4, 3\]"):
        env.action(np.array([0, 3, 0, 0, 0, 0]))  # 3 is past dimension 1's last bin
    assert np.all(env.to_bins(box.high + 10) == np.array(bins) - 1)  # clipped to each dimension's last bin


def test_discretized_env_id_takes_per_dimension_bins():
    env = gym.make("rl_diffcat/Pendulum-Discrete-v0", bins=[7])
    assert env.action_space == spaces.MultiDiscrete([7])


def test_discretize_rejects_non_box_and_unbounded_spaces():
    with pytest.raises(ValueError, match="needs a Box action space.*Discrete"):
        DiscretizeAction(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="finite action bounds"):
        DiscretizeAction(_BoxActionEnv(low=-np.inf))


def test_discretize_rejects_out_of_range_bins():
    env = DiscretizeAction(_BoxActionEnv(), bins=3)
    with pytest.raises(ValueError, match=r"6 bin indices in \[0, 3\)"):
        env.action(np.full(6, 3))
    np.testing.assert_array_equal(env.action(np.full(6, 2.0)), env.action(np.full(6, 2)))  # whole floats are indices
    for fraction in (2.7, -0.5, np.nan):  # truncated, these were valid bins
        with pytest.raises(ValueError, match="bin indices"):
            env.action(np.full(6, fraction))
    with pytest.raises(ValueError, match="finite continuous action"):
        env.to_bins(np.full(6, np.nan))


# ---- Polynomial programming -------------------------------------------------------------------


@pytest.mark.parametrize("n_vars", [1, 3, 6])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_polynomial_optimum_matches_brute_force(n_vars, p):
    env = PolynomialProgramming(n_vars=n_vars, p=p)
    for seed in range(3):
        _, reset_info = env.reset(seed=seed)
        rewards = {x: env.reward(np.array(x)) for x in itertools.product((0, 1), repeat=n_vars)}
        best_x = max(rewards, key=rewards.get)
        assert reset_info["optimal_reward"] == pytest.approx(rewards[best_x], abs=1e-12)
        assert env.optimal_reward() == pytest.approx(rewards[best_x], abs=1e-12)
        assert rewards[tuple(env.optimal_action())] == pytest.approx(rewards[best_x], abs=1e-12)
        # Stepping with any action reports the same optimum and the exact regret.
        action = np.array(next(iter(rewards)))
        _, reward, terminated, truncated, info = env.step(action)
        assert terminated and not truncated
        assert reward == rewards[tuple(action)]
        assert info["regret"] == pytest.approx(rewards[best_x] - reward, abs=1e-12)


def test_polynomial_paper_default_target():
    # ReDGE paper setting: c = 0.45 everywhere, p = 2, so the optimum x = 0 scores -0.45^2.
    env = PolynomialProgramming(n_vars=5, p=2.0, target=0.45)
    obs, info = env.reset(seed=0)
    np.testing.assert_allclose(obs, 0.45)
    np.testing.assert_array_equal(env.optimal_action(), np.zeros(5))
    assert info["optimal_reward"] == pytest.approx(-float(np.float32(0.45)) ** 2)
    assert env.reward(np.ones(5)) == pytest.approx(-float(1 - np.float32(0.45)) ** 2)


def test_polynomial_context_changes_per_episode_and_is_seeded():
    env = PolynomialProgramming(n_vars=8)
    first, _ = env.reset(seed=1)
    second, _ = env.reset()
    again, _ = env.reset(seed=1)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, again)
    assert np.all((first > 0) & (first < 1))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_vars": 0}, "n_vars must be a positive integer"),
        ({"p": 0.0}, "p must be > 0"),
        ({"target": 1.5}, r"target must lie in \[0, 1\]"),
    ],
)
def test_polynomial_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PolynomialProgramming(**kwargs)


def test_polynomial_rgb_render_shows_context_and_action():
    env = PolynomialProgramming(n_vars=3, target=0.5, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.array([1, 0, 1]))
    frame = env.render()
    assert frame.shape == (16, 24, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame[0, ::8, 0], [127, 127, 127])
    np.testing.assert_array_equal(frame[8, ::8, 0], [255, 0, 255])


def test_polynomial_rejects_non_binary_action():
    env = PolynomialProgramming(n_vars=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="3 binary decisions"):
        env.step(np.array([0, 2, 1]))


def test_masked_polynomial_masks_the_fixed_decisions_and_its_optimum_is_the_best_valid_action():
    env = MaskedPolynomialProgramming(n_vars=6, fixed_fraction=0.4)
    fixed_counts = []
    for episode in range(200):
        _, info = env.reset(seed=episode)
        masks = env.action_masks().reshape(6, 2)
        assert masks.any(axis=1).all()  # every decision keeps a value
        fixed_counts.append(int((~masks).any(axis=1).sum()))
        valid = [np.array(x) for x in itertools.product((0, 1), repeat=6) if masks[np.arange(6), list(x)].all()]
        best = max(env.reward(x) for x in valid)  # brute force over the valid actions
        assert info["optimal_reward"] == pytest.approx(best)
        assert masks[np.arange(6), env.optimal_action()].all()
    # 1200 decisions, each fixed with probability 0.4: within 4 standard deviations
    assert abs(np.sum(fixed_counts) / 1200 - 0.4) < 4 * np.sqrt(0.4 * 0.6 / 1200)


def test_masked_polynomial_pays_the_worst_reward_for_a_broken_decision():
    env = MaskedPolynomialProgramming(n_vars=8, fixed_fraction=0.5)
    env.reset(seed=3)
    masks = env.action_masks().reshape(8, 2)
    fixed = np.flatnonzero(~masks.all(axis=1))
    best = env.optimal_action()
    _, reward, _, _, info = env.step(best)
    assert info["broken_decisions"] == 0 and info["regret"] == pytest.approx(0.0)
    env.reset(seed=3)
    breaking = best.copy()
    breaking[fixed[:2]] = 1 - breaking[fixed[:2]]
    _, reward, _, _, info = env.step(breaking)
    assert reward == -1.0 and info["broken_decisions"] == 2 and info["regret"] == pytest.approx(info["optimal_reward"] + 1.0)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, True, "0.2"])
def test_masked_polynomial_rejects_bad_fixed_fraction(fraction):
    with pytest.raises(ValueError, match="fixed_fraction must be a probability in"):
        MaskedPolynomialProgramming(fixed_fraction=fraction)


def test_masked_polynomial_takes_a_numpy_fixed_fraction():
    assert MaskedPolynomialProgramming(fixed_fraction=np.float32(0.5)).fixed_fraction == 0.5


# ---- MinAtar -----------------------------------------------------------------------------------


@pytest.mark.parametrize("game", sorted(rl_envs.MINATAR_GAMES))
def test_minatar_obs_channel_first_and_seeded(game):
    pytest.importorskip("minatar", reason="needs the minatar extra: pip install 'rl-diffcat[minatar]'")
    env = gym.make(f"rl_diffcat/MinAtar-{game}-v0")
    channels = env.observation_space.shape[0]
    assert env.observation_space.shape == (channels, 10, 10)
    assert env.observation_space.dtype == np.uint8

    def rollout(seed):
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        trajectory = [obs]
        for _ in range(30):
            obs, *_ = env.step(env.action_space.sample())
            trajectory.append(obs)
        return np.stack(trajectory)

    first = rollout(3)
    assert set(np.unique(first)) <= {0, 1}
    np.testing.assert_array_equal(first, rollout(3))


def test_minatar_seeded_reset_forgets_the_last_episode_and_bad_actions_raise():
    pytest.importorskip("minatar", reason="needs the minatar extra: pip install 'rl-diffcat[minatar]'")

    def rollout(env):
        obs, _ = env.reset(seed=11)
        trajectory = [obs]
        for action in np.random.default_rng(11).integers(0, 3, 40):
            obs, _, terminated, *_ = env.step(action)
            trajectory.append(obs)
            if terminated:
                break
        return np.stack(trajectory)

    fresh = rollout(gym.make("rl_diffcat/MinAtar-Breakout-v0"))
    used = gym.make("rl_diffcat/MinAtar-Breakout-v0")
    used.reset(seed=123)
    for _ in range(5):
        used.step(2)  # the sticky-action memory held this action into the next episode
    np.testing.assert_array_equal(rollout(used), fresh)
    for action in (-1, 3):
        with pytest.raises(ValueError, match=r"outside the action space Discrete\(3\)"):
            used.unwrapped.step(action)


def test_minatar_rgb_render_and_float_obs():
    pytest.importorskip("minatar", reason="needs the minatar extra: pip install 'rl-diffcat[minatar]'")
    env = gym.make("rl_diffcat/MinAtar-Breakout-v0", render_mode="rgb_array", obs_dtype=np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    frame = env.render()
    assert frame.shape == (10, 10, 3) and frame.dtype == np.uint8 and frame.any()


def test_minatar_cnn_trains_with_sb3_dqn():
    pytest.importorskip("minatar", reason="needs the minatar extra: pip install 'rl-diffcat[minatar]'")
    from stable_baselines3 import DQN

    env = gym.make("rl_diffcat/MinAtar-Breakout-v0")
    model = DQN(
        "CnnPolicy",
        env,
        policy_kwargs=dict(features_extractor_class=rl_envs.MinAtarCNN, net_arch=[32]),
        buffer_size=500,
        learning_starts=32,
        batch_size=16,
        seed=0,
    )
    before = [p.detach().clone() for p in model.q_net.features_extractor.parameters()]
    model.learn(100)
    after = list(model.q_net.features_extractor.parameters())
    assert any(not np.allclose(b.numpy(), a.detach().numpy()) for b, a in zip(before, after))
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert env.action_space.contains(int(action))


def test_minatar_cnn_rejects_flat_space():
    with pytest.raises(ValueError, match=r"channel-first image Box of shape \(C, H, W\)"):
        rl_envs.MinAtarCNN(spaces.Box(0, 1, shape=(10,)))

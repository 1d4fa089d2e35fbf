"""Loading a file never runs code from it (:mod:`rl_diffcat.serialization`).

Crafted files carry a payload that writes a marker file when unpickled: loaded as they are, they
are refused with an error naming what they would load and leave no marker; with the opt-in
(``trust_file=True``) the marker appears, which shows the payload is real. Every genuine file
(models of our agents and of SB3's algorithms, replay buffers, statistics, checkpoints) still
loads, equal to what was saved and to what SB3's own (unrestricted) loading gives.
"""

import base64
import json
import os
import pickle
import zipfile

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

from rl_diffcat.agents import DiffCatSAC, DiscreteSAC
from rl_diffcat.benchmark import checkpoint
from rl_diffcat.benchmark.algos import load_model
from rl_diffcat.benchmark.normalization import legacy_stats_path, save_stats, stats_path, wrap_training_env
from rl_diffcat.cli import main
from rl_diffcat.serialization import UnsafeFileError, load_vec_normalize, restricted_model_data, safe_load, save_vec_normalize

ENV = "CartPole-v1"
SAC_SMALL = dict(buffer_size=300, learning_starts=20, batch_size=8, policy_kwargs=dict(net_arch=[8]), seed=0)


class WritesMarker:
    """Unpickled, runs ``touch <path>`` through ``os.system`` (the classic payload)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch '{self.path}'",))


class CallsPickledFunction:
    """Unpickled, calls a function pickled by value (cloudpickle) that writes the marker: the
    payload a ``:serialized:`` entry of SB3's data can hold without naming ``os.system``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return ((lambda path: open(path, "w").close()), (self.path,))


PAYLOADS = {
    "reduce": (lambda marker: pickle.dumps(WritesMarker(marker)), "posix.system" if os.name == "posix" else "nt.system"),
    "cloudpickled function": (lambda marker: cloudpickle.dumps(CallsPickledFunction(marker)), "cloudpickle.cloudpickle."),
}


def _rewrite_zip(source, target, edit):
    """Copy the model ``.zip`` at ``source`` to ``target``, with ``edit`` applied to its ``data`` JSON."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    edit(data)
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


def _crafted_model(source, target, key, payload):
    """A genuine model file with ``payload`` (pickle bytes) put into its ``key`` entry, as SB3 stores
    what JSON cannot hold."""

    def edit(data):
        data[key] = {":type:": "<class 'object'>", ":serialized:": base64.b64encode(payload).decode()}

    _rewrite_zip(source, target, edit)


def _assert_same_model(loaded, reference):
    """``loaded`` has ``reference``'s parameters (exactly), spaces, schedule and policy settings."""
    assert type(loaded.policy) is type(reference.policy)
    assert loaded.observation_space == reference.observation_space and loaded.action_space == reference.action_space
    state, expected = loaded.policy.state_dict(), reference.policy.state_dict()
    assert state.keys() == expected.keys()
    for name in expected:
        assert state[name].dtype == expected[name].dtype and th.equal(state[name], expected[name]), name
    for progress in (1.0, 0.3):
        assert loaded.lr_schedule(progress) == reference.lr_schedule(progress)
    assert loaded.policy_kwargs == reference.policy_kwargs
    assert loaded.num_timesteps == reference.num_timesteps and loaded._n_updates == reference._n_updates


# -- genuine models --------------------------------------------------------------------------------
class RandomEnv(gym.Env):
    """An env with the given spaces, random observations and episodes of about 10 steps."""

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 1.0, False, bool(self.np_random.random() < 0.1), {}


BOX = spaces.Box(-1, 1, (3,), np.float32)
OBSERVATIONS = {
    "box": BOX,
    "dict": spaces.Dict({"a": BOX, "b": spaces.Discrete(4)}),
    "image": spaces.Box(0, 255, (36, 36, 3), np.uint8),
    "discrete": spaces.Discrete(5),
    "multidiscrete": spaces.MultiDiscrete([3, 4]),
    "multibinary": spaces.MultiBinary(4),
}
ACTIONS = {"discrete": spaces.Discrete(3), "multidiscrete": spaces.MultiDiscrete([2, 3]), "multibinary": spaces.MultiBinary(3)}


def _policy(observation, prefix=""):
    return prefix + {"dict": "MultiInputPolicy", "image": "CnnPolicy"}.get(observation, "MlpPolicy")


def _sac(algo, observation, action, **kwargs):
    policy_kwargs = dict(net_arch=[8], **({"features_extractor_kwargs": {"features_dim": 8}} if observation == "image" else {}))
    env = RandomEnv(OBSERVATIONS[observation], ACTIONS[action])
    return algo(_policy(observation), env, **{**SAC_SMALL, "policy_kwargs": policy_kwargs, **kwargs}).learn(30)


def _ppo_diffcat(observation, action):
    import rl_diffcat.sb3

    policy = getattr(rl_diffcat.sb3, _policy(observation, "DiffCat"))
    return PPO(policy, RandomEnv(OBSERVATIONS[observation], ACTIONS[action]), n_steps=16, batch_size=8, seed=0).learn(16)


def _maskable_ppo(policy):
    from sb3_contrib import MaskablePPO

    import rl_diffcat.envs  # noqa: F401  (registers the masked env)
    from rl_diffcat.sb3.maskable import MaskableDiffCatActorCriticPolicy

    policy = MaskableDiffCatActorCriticPolicy if policy == "diffcat" else policy
    return MaskablePPO(policy, "rl_diffcat/PolyProg-Masked-D4-v0", n_steps=16, batch_size=8, seed=0).learn(16)


GENUINE_MODELS = {
    **{f"diffcat-sac-{obs}-obs": (lambda obs=obs: _sac(DiffCatSAC, obs, "discrete")) for obs in OBSERVATIONS},
    **{f"diffcat-sac-{act}-action": (lambda act=act: _sac(DiffCatSAC, "box", act)) for act in ("multidiscrete", "multibinary")},
    "discrete-sac-box-obs": lambda: _sac(DiscreteSAC, "box", "discrete"),
    "discrete-sac-dict-obs": lambda: _sac(DiscreteSAC, "dict", "discrete"),
    "discrete-sac-image-obs": lambda: _sac(DiscreteSAC, "image", "discrete"),
    "diffcat-sac-schedule-nstep-tanh": lambda: DiffCatSAC(
        "MlpPolicy", ENV, learning_rate=LinearSchedule(1e-3, 0.0, 1.0), n_steps=3,
        **{**SAC_SMALL, "policy_kwargs": dict(net_arch=[8], activation_fn=th.nn.Tanh, optimizer_class=th.optim.AdamW)},
    ).learn(30),  # fmt: skip
    "discrete-sac-normalize-fixed-alpha": lambda: DiscreteSAC("MlpPolicy", VecNormalize(make_vec_env(ENV, n_envs=2)), ent_coef=0.1, **SAC_SMALL).learn(30),
    "diffcat-sac-action-masks": lambda: _masked_sac(),
    **{f"ppo-diffcat-{obs}-obs": (lambda obs=obs: _ppo_diffcat(obs, "discrete")) for obs in ("box", "dict", "image")},
    **{f"ppo-diffcat-{act}-action": (lambda act=act: _ppo_diffcat("box", act)) for act in ("multidiscrete", "multibinary")},
    "ppo-box-action": lambda: PPO("MlpPolicy", RandomEnv(BOX, BOX), n_steps=16, batch_size=8, seed=0).learn(16),
    "ppo-schedules-normalize": lambda: PPO(
        "MlpPolicy", VecNormalize(make_vec_env(ENV, n_envs=2)), learning_rate=LinearSchedule(1e-3, 0.0, 1.0),
        clip_range=LinearSchedule(0.2, 0.0, 1.0), clip_range_vf=0.1, n_steps=16, batch_size=8, seed=0,
        policy_kwargs=dict(activation_fn=th.nn.ReLU, net_arch=dict(pi=[8], vf=[8])),
    ).learn(32),  # fmt: skip
    "a2c-multibinary-obs": lambda: A2C("MlpPolicy", RandomEnv(OBSERVATIONS["multibinary"], ACTIONS["multidiscrete"]), n_steps=8, seed=0).learn(16),
    "maskable-ppo": lambda: _maskable_ppo("MlpPolicy"),
    "maskable-ppo-diffcat": lambda: _maskable_ppo("diffcat"),
}


def _masked_sac():
    import rl_diffcat.envs  # noqa: F401

    return DiffCatSAC("MlpPolicy", "rl_diffcat/PolyProg-Masked-D4-v0", n_steps=2, **SAC_SMALL).learn(30)


def _rl_zoo_schedule_model():
    pytest.importorskip("rl_zoo3")
    from rl_zoo3.utils import linear_schedule

    return DiffCatSAC("MlpPolicy", ENV, learning_rate=linear_schedule(1e-3), **SAC_SMALL).learn(30)


GENUINE_MODELS["diffcat-sac-rl-zoo3-schedule"] = _rl_zoo_schedule_model


@pytest.mark.parametrize("name", sorted(GENUINE_MODELS))
def test_every_genuine_model_loads_as_sb3_loads_it(name, tmp_path):
    """Models of our agents, of PPO with our drop-in policy and of SB3/sb3-contrib's algorithms, on
    every kind of space, load without the opt-in, with the parameters saved and everything SB3's
    unrestricted load gives."""
    model = GENUINE_MODELS[name]()
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = safe_load(type(model), path, device="cpu")
    _assert_same_model(loaded, model)
    trusted = type(model).load(path, device="cpu", **({"trust_file": True} if hasattr(model, "use_action_masks") else {}))
    assert sorted(vars(loaded)) == sorted(vars(trusted))
    _assert_same_model(loaded, trusted)
    # Every pickled entry comes back as cloudpickle gives it: same type, same state (pickled again, the same bytes).
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    restricted = restricted_model_data(path.read_bytes(), type(model), None, str(path))
    assert restricted.keys() == {key for key, item in data.items() if isinstance(item, dict) and ":serialized:" in item}
    for key, value in restricted.items():
        unrestricted = cloudpickle.loads(base64.b64decode(data[key][":serialized:"]))
        assert type(value) is type(unrestricted) and cloudpickle.dumps(value) == cloudpickle.dumps(unrestricted), key


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_agents_load_restricted_by_default(algo, tmp_path):
    """Our agents' own ``load`` is the restricted one (no ``safe_load`` needed)."""
    model = algo("MlpPolicy", ENV, **SAC_SMALL).learn(30)
    model.save(tmp_path / "model.zip")
    _crafted_model(tmp_path / "model.zip", tmp_path / "crafted.zip", "observation_space", PAYLOADS["reduce"][0](tmp_path / "marker"))
    with pytest.raises(UnsafeFileError, match=r"entry 'observation_space'\) would load posix\.system"):
        algo.load(tmp_path / "crafted.zip")
    assert not (tmp_path / "marker").exists()
    _assert_same_model(algo.load(tmp_path / "model"), model)  # the suffix may be left out, as in SB3


# -- crafted models ---------------------------------------------------------------------------------
LOADERS = {
    "DiffCatSAC.load": (DiffCatSAC, lambda path, **kw: DiffCatSAC.load(path, device="cpu", **kw)),
    "DiscreteSAC.load": (DiscreteSAC, lambda path, **kw: DiscreteSAC.load(path, device="cpu", **kw)),
    "safe_load(PPO)": (PPO, lambda path, **kw: safe_load(PPO, path, device="cpu", **kw)),
}


@pytest.fixture(scope="module")
def genuine_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("genuine")
    paths = {}
    for name, (algo, _) in LOADERS.items():
        model = algo("MlpPolicy", ENV, **SAC_SMALL).learn(30) if algo is not PPO else PPO("MlpPolicy", ENV, n_steps=16, batch_size=8).learn(16)
        paths[name] = folder / f"{algo.__name__}.zip"
        model.save(paths[name])
    return paths


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
@pytest.mark.parametrize("entry", ["observation_space", "policy_class", "policy_kwargs", "_last_obs"])
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_crafted_model_is_refused_and_runs_nothing(loader, entry, payload, genuine_files, tmp_path):
    make_payload, refused = PAYLOADS[payload]
    marker = tmp_path / "marker"
    _crafted_model(genuine_files[loader], tmp_path / "crafted.zip", entry, make_payload(marker))
    load = LOADERS[loader][1]
    with pytest.raises(UnsafeFileError, match=rf"crafted\.zip \(entry '{entry}'\) would load {refused}.*trust_file=True"):
        load(tmp_path / "crafted.zip")
    assert not marker.exists()
    # The payload is real: trusted, the file runs it (what SB3's own load does, silently).
    try:
        load(tmp_path / "crafted.zip", trust_file=True)
    except Exception:  # noqa: BLE001 - the entry now holds what the payload returned, not what the model needs
        pass
    assert marker.exists()


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_pickled_function_in_a_schedule_entry_is_not_run(loader, genuine_files, tmp_path):
    """A schedule entry is where genuine files may hold a pickled function (a lambda learning rate):
    it is never run; the model loads with the class's default and a warning naming the entry."""
    marker = tmp_path / "marker"
    _crafted_model(genuine_files[loader], tmp_path / "crafted.zip", "lr_schedule", PAYLOADS["cloudpickled function"][0](marker))
    algo, load = LOADERS[loader]
    with pytest.warns(UserWarning, match="lr_schedule hold pickled functions, which were not run"):
        load(tmp_path / "crafted.zip")
    assert not marker.exists()
    _crafted_model(genuine_files[loader], tmp_path / "os_system.zip", "lr_schedule", PAYLOADS["reduce"][0](marker))
    with pytest.raises(UnsafeFileError, match="would load posix.system"):  # not a pickled function: refused
        load(tmp_path / "os_system.zip")
    assert not marker.exists()


def test_lambda_learning_rate_model_loads_with_the_default_schedule(tmp_path):
    """A genuine file with a lambda learning rate: its function is not run; the model loads (same
    parameters) with PPO's default learning rate, and with the opt-in, with the saved lambda."""
    model = PPO("MlpPolicy", ENV, learning_rate=lambda progress: 1e-3 * progress, n_steps=16, batch_size=8).learn(16)
    model.save(tmp_path / "model.zip")
    with pytest.warns(UserWarning, match=r"learning_rate, lr_schedule hold pickled functions.*\{'learning_rate': 0.0003\}"):
        loaded = safe_load(PPO, tmp_path / "model.zip")
    assert loaded.learning_rate == 3e-4 and loaded.lr_schedule(0.5) == 3e-4
    for name, value in model.policy.state_dict().items():
        assert th.equal(loaded.policy.state_dict()[name], value)
    assert safe_load(PPO, tmp_path / "model.zip", trust_file=True).lr_schedule(0.5) == pytest.approx(5e-4)
    kept = safe_load(PPO, tmp_path / "model.zip", custom_objects={"learning_rate": 1e-4, "lr_schedule": lambda _: 1e-4})
    assert kept.learning_rate == 1e-4


# -- replay buffers ----------------------------------------------------------------------------------
def _masked_sac_buffer(n_steps):
    import rl_diffcat.envs  # noqa: F401

    return DiffCatSAC("MlpPolicy", "rl_diffcat/PolyProg-Masked-D4-v0", n_steps=n_steps, **SAC_SMALL)


BUFFER_MODELS = {
    "plain": lambda: DiffCatSAC("MlpPolicy", ENV, **SAC_SMALL),
    "n-step": lambda: DiscreteSAC("MlpPolicy", ENV, n_steps=3, **SAC_SMALL),
    "optimize-memory-usage": lambda: DiffCatSAC("MlpPolicy", ENV, optimize_memory_usage=True, replay_buffer_kwargs=dict(handle_timeout_termination=False), **SAC_SMALL),
    "dict-obs": lambda: DiffCatSAC("MultiInputPolicy", RandomEnv(OBSERVATIONS["dict"], ACTIONS["multidiscrete"]), **SAC_SMALL),
    "action-masks": lambda: _masked_sac_buffer(1),
    "action-masks-n-step": lambda: _masked_sac_buffer(3),
    "full": lambda: DiffCatSAC("MlpPolicy", ENV, **{**SAC_SMALL, "buffer_size": 50}),
}


def _buffer_state(buffer):
    """Every attribute of ``buffer`` but its spaces, dict observations flattened to ``name.key``."""
    state = {}
    for name, value in vars(buffer).items():
        if name in ("observation_space", "action_space"):
            continue
        if isinstance(value, dict) and value and all(isinstance(item, np.ndarray) for item in value.values()):
            state.update({f"{name}.{key}": item for key, item in value.items()})
        else:
            state[name] = value
    return state


def _assert_same_buffer(loaded, saved):
    assert type(loaded) is type(saved)
    assert loaded.observation_space == saved.observation_space and loaded.action_space == saved.action_space
    state, expected = _buffer_state(loaded), _buffer_state(saved)
    assert state.keys() == expected.keys()
    for name, value in expected.items():
        if isinstance(value, np.ndarray):
            assert state[name].dtype == value.dtype and state[name].shape == value.shape, name
            np.testing.assert_array_equal(state[name], value, err_msg=name)
        else:
            assert state[name] == value and type(state[name]) is type(value), name


@pytest.mark.parametrize("kind", sorted(BUFFER_MODELS))
def test_replay_buffer_round_trip_is_exact(kind, tmp_path):
    """``save_replay_buffer``/``load_replay_buffer`` of our agents, and the checkpoint functions for
    any SB3 model, write no pickle and restore every array and attribute exactly; a buffer that
    is not full is written cut to its filled rows."""
    model = BUFFER_MODELS[kind]().learn(60)
    buffer = model.replay_buffer
    model.save_replay_buffer(tmp_path / "buffer.npz")
    fresh = BUFFER_MODELS[kind]()
    fresh.load_replay_buffer(tmp_path / "buffer.npz")
    _assert_same_buffer(fresh.replay_buffer, buffer)
    assert fresh.replay_buffer.sample(4).rewards.shape == (4, 1)
    with np.load(tmp_path / "buffer.npz", allow_pickle=False) as stored:  # data only; only the filled rows
        assert stored["rewards"].shape[0] == (buffer.buffer_size if buffer.full else buffer.pos + 1) < 300

    checkpoint.save_replay_buffer(model, str(tmp_path / "checkpoint_buffer.npz"))
    other = BUFFER_MODELS[kind]()
    checkpoint.load_replay_buffer(other, str(tmp_path / "checkpoint_buffer.npz"))
    _assert_same_buffer(other.replay_buffer, buffer)


def test_replay_buffer_path_without_suffix_gets_npz(tmp_path):
    model = DiffCatSAC("MlpPolicy", ENV, **SAC_SMALL).learn(30)
    model.save_replay_buffer(tmp_path / "buffer")
    assert (tmp_path / "buffer.npz").exists()
    fresh = DiffCatSAC("MlpPolicy", ENV, **SAC_SMALL)
    fresh.load_replay_buffer(tmp_path / "buffer")
    _assert_same_buffer(fresh.replay_buffer, model.replay_buffer)


@pytest.mark.parametrize("load", ["model.load_replay_buffer", "checkpoint.load_replay_buffer"])
def test_crafted_pickle_buffer_is_refused_and_runs_nothing(load, tmp_path):
    """A genuine buffer pickled with a payload riding along (it would load normally after running
    it) is refused without the opt-in; so is a genuine buffer pickled by SB3, which loads with it."""
    model = DiffCatSAC("MlpPolicy", ENV, **SAC_SMALL).learn(30)
    buffer, marker = model.replay_buffer, tmp_path / "marker"
    buffer.payload = WritesMarker(marker)
    with open(tmp_path / "buffer.pkl", "wb") as file:
        pickle.dump(buffer, file)
    del buffer.payload
    fresh = DiffCatSAC("MlpPolicy", ENV, **SAC_SMALL)
    call = fresh.load_replay_buffer if load.startswith("model") else (lambda path, **kw: checkpoint.load_replay_buffer(fresh, path, **kw))
    with pytest.raises(UnsafeFileError, match=r"buffer\.pkl is a pickle file .*loading it can run code.*trust_file=True"):
        call(str(tmp_path / "buffer.pkl"))
    assert not marker.exists()
    call(str(tmp_path / "buffer.pkl"), trust_file=True)
    assert marker.exists()

    # An old (genuine) pickle from SB3's save_replay_buffer: refused, then loaded with the opt-in.
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    OffPolicyAlgorithm.save_replay_buffer(model, tmp_path / "sb3.pkl")
    with pytest.raises(UnsafeFileError, match="sb3.pkl is a pickle file"):
        call(str(tmp_path / "sb3.pkl"))
    call(str(tmp_path / "sb3.pkl"), trust_file=True)
    _assert_same_buffer(fresh.replay_buffer, model.replay_buffer)


def test_crafted_data_only_buffer_is_refused(tmp_path):
    """An ``.npz`` naming a class outside the allowlist, or holding an object array, loads nothing."""
    model = DiffCatSAC("MlpPolicy", ENV, **SAC_SMALL).learn(30)
    model.save_replay_buffer(tmp_path / "buffer.npz")
    with np.load(tmp_path / "buffer.npz", allow_pickle=False) as stored:
        members = {name: stored[name] for name in stored.files}
    meta = json.loads(members["__rl_diffcat__"].tobytes())
    meta["class"] = {"module": "subprocess", "qualname": "Popen"}
    with open(tmp_path / "popen.npz", "wb") as file:
        np.savez(file, **{**members, "__rl_diffcat__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
    with pytest.raises(UnsafeFileError, match="names the class subprocess.Popen"):
        model.load_replay_buffer(tmp_path / "popen.npz")
    meta["class"] = {"module": "stable_baselines3.common.utils", "qualname": "FloatSchedule"}  # admitted in a model, not a buffer
    with open(tmp_path / "schedule.npz", "wb") as file:
        np.savez(file, **{**members, "__rl_diffcat__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
    with pytest.raises(UnsafeFileError, match="names the class stable_baselines3.common.utils.FloatSchedule"):
        model.load_replay_buffer(tmp_path / "schedule.npz")

    marker = tmp_path / "marker"
    objects = np.empty(1, dtype=object)
    objects[0] = WritesMarker(marker)
    with open(tmp_path / "objects.npz", "wb") as file:
        np.savez(file, **{**members, "rewards": objects})
    with pytest.raises(ValueError, match="allow_pickle=False"):
        model.load_replay_buffer(tmp_path / "objects.npz")
    assert not marker.exists()


# -- VecNormalize statistics ---------------------------------------------------------------------------
NORMALIZERS = {
    "box": lambda: VecNormalize(make_vec_env(ENV, n_envs=2), gamma=0.95, clip_obs=5.0),
    "dict-keys": lambda: VecNormalize(
        make_vec_env(lambda: RandomEnv(spaces.Dict({"a": BOX, "b": BOX, "c": spaces.Discrete(3)}), ACTIONS["discrete"]), n_envs=2),
        norm_obs_keys=["a", "b"], norm_reward=False,
    ),  # fmt: skip
    "no-obs": lambda: VecNormalize(make_vec_env(ENV), norm_obs=False, training=False, epsilon=1e-6),
}


def _stepped(normalizer):
    normalizer.reset()
    for _ in range(40):
        normalizer.step(np.array([normalizer.action_space.sample() for _ in range(normalizer.num_envs)]))
    return normalizer


def _assert_same_statistics(loaded, saved):
    for name in ("training", "norm_obs", "norm_reward", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys"):
        assert getattr(loaded, name) == getattr(saved, name) and type(getattr(loaded, name)) is type(getattr(saved, name)), name
    assert loaded.observation_space == saved.observation_space
    pairs = [(loaded.ret_rms, saved.ret_rms)]
    if hasattr(saved, "obs_rms"):
        rms = saved.obs_rms if isinstance(saved.obs_rms, dict) else {None: saved.obs_rms}
        back = loaded.obs_rms if isinstance(loaded.obs_rms, dict) else {None: loaded.obs_rms}
        assert rms.keys() == back.keys()
        pairs += [(back[key], rms[key]) for key in rms]
    for restored, original in pairs:
        for field in ("mean", "var"):
            assert getattr(restored, field).dtype == getattr(original, field).dtype
            np.testing.assert_array_equal(getattr(restored, field), getattr(original, field))
        assert restored.count == original.count and type(restored.count) is type(original.count)


@pytest.mark.parametrize("kind", sorted(NORMALIZERS))
def test_statistics_round_trip_is_exact(kind, tmp_path):
    saved = _stepped(NORMALIZERS[kind]())
    path = save_vec_normalize(saved, tmp_path / "stats")
    assert path == str(tmp_path / "stats.npz")
    loaded = load_vec_normalize(path, NORMALIZERS[kind]().venv)
    _assert_same_statistics(loaded, saved)
    _assert_same_statistics(loaded, VecNormalize.load(_pickled(saved, tmp_path / "sb3.pkl"), NORMALIZERS[kind]().venv))
    obs, normalized = saved.get_original_obs(), [normalizer.normalize_obs(saved.get_original_obs()) for normalizer in (loaded, saved)]
    for key in obs if isinstance(obs, dict) else [None]:
        np.testing.assert_array_equal(*(n if key is None else n[key] for n in normalized))


def _pickled(normalizer, path):
    normalizer.save(str(path))
    return str(path)


def test_crafted_and_old_pickle_statistics_need_the_opt_in(tmp_path):
    saved = _stepped(NORMALIZERS["box"]())
    saved.payload = WritesMarker(tmp_path / "marker")
    saved.save(str(tmp_path / "crafted.pkl"))
    del saved.payload
    saved.save(str(tmp_path / "old.pkl"))
    for name in ("crafted.pkl", "old.pkl"):
        with pytest.raises(UnsafeFileError, match=rf"{name} is a pickle file \(VecNormalize statistics.*trust_file=True"):
            load_vec_normalize(tmp_path / name, make_vec_env(ENV, n_envs=2))
        with pytest.raises(UnsafeFileError):
            wrap_training_env(make_vec_env(ENV, n_envs=2), {}, str(tmp_path / name))
    assert not (tmp_path / "marker").exists()
    load_vec_normalize(tmp_path / "crafted.pkl", make_vec_env(ENV, n_envs=2), trust_file=True)
    assert (tmp_path / "marker").exists()
    _assert_same_statistics(load_vec_normalize(tmp_path / "old.pkl", make_vec_env(ENV, n_envs=2), trust_file=True), saved)


def test_statistics_that_do_not_fit_the_env_are_refused(tmp_path):
    path = save_vec_normalize(_stepped(NORMALIZERS["box"]()), tmp_path / "stats.npz")
    with pytest.raises(ValueError, match=r"statistics of shape \(4,\) for observations of shape \(3,\)"):
        load_vec_normalize(path, make_vec_env(lambda: RandomEnv(BOX, ACTIONS["discrete"])))


def test_save_stats_writes_npz_beside_the_model_and_removes_an_old_pickle(tmp_path):
    model = PPO("MlpPolicy", VecNormalize(make_vec_env(ENV)), n_steps=16, batch_size=8).learn(16)
    target = stats_path(str(tmp_path / "model.zip"))
    assert target == str(tmp_path / "model_vecnormalize.npz")
    (tmp_path / "model_vecnormalize.pkl").write_bytes(b"stale")
    assert legacy_stats_path(target) == str(tmp_path / "model_vecnormalize.pkl")
    assert save_stats(model, target) == target and not (tmp_path / "model_vecnormalize.pkl").exists()
    _assert_same_statistics(load_vec_normalize(target, make_vec_env(ENV)), model.get_vec_normalize_env())


# -- checkpoints -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", ["diffcat-sac", "ppo"])
def test_checkpoint_loads_and_a_tampered_one_is_refused(algo, tmp_path):
    """A checkpoint (model, buffer, statistics) written by ``write_checkpoint`` loads back exactly
    through the functions a resumed run calls; with a tampered model, buffer or statistics file
    they refuse and run nothing."""
    params = {"normalize": True, **({"learning_starts": 20, "batch_size": 8, "buffer_size": 300} if algo != "ppo" else {"n_steps": 16, "batch_size": 8})}
    from rl_diffcat.benchmark.algos import make_model

    model = make_model(algo, ENV, params, seed=0, device="cpu").learn(40)
    state = checkpoint.write_checkpoint(str(tmp_path / "checkpoint"), model, {"config": {}, "eval": {}})
    state = checkpoint.read_checkpoint(str(tmp_path / "checkpoint"))
    assert state["vecnormalize"].endswith("_vecnormalize.npz")
    assert (state["replay_buffer"] or ".npz").endswith(".npz")
    resumed = load_model(algo, ENV, params, state["model"], seed=1, device="cpu", vecnormalize_stats=state["vecnormalize"])
    for name, value in model.policy.state_dict().items():
        assert th.equal(resumed.policy.state_dict()[name], value), name
    _assert_same_statistics(resumed.get_vec_normalize_env(), model.get_vec_normalize_env())
    if state["replay_buffer"]:
        checkpoint.load_replay_buffer(resumed, state["replay_buffer"])
        _assert_same_buffer(resumed.replay_buffer, model.replay_buffer)

    marker = tmp_path / "marker"
    _crafted_model(state["model"], state["model"], "observation_space", PAYLOADS["reduce"][0](marker))
    with pytest.raises(UnsafeFileError, match="would load posix.system"):
        load_model(algo, ENV, params, state["model"], seed=1, device="cpu", vecnormalize_stats=state["vecnormalize"])
    with open(state["vecnormalize"], "wb") as file:
        pickle.dump(WritesMarker(marker), file)
    with pytest.raises(UnsafeFileError, match="is a pickle file"):
        load_model(algo, ENV, params, state["model"], seed=1, device="cpu", vecnormalize_stats=state["vecnormalize"])
    if state["replay_buffer"]:
        with open(state["replay_buffer"], "wb") as file:
            pickle.dump(WritesMarker(marker), file)
        with pytest.raises(UnsafeFileError, match="is a pickle file"):
            checkpoint.load_replay_buffer(resumed, state["replay_buffer"])
    assert not marker.exists()


def test_write_checkpoint_names_the_data_only_files(tmp_path):
    model = DiffCatSAC("MlpPolicy", VecNormalize(make_vec_env(ENV)), **SAC_SMALL).learn(30)
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / "replay_buffer_5.pkl").write_bytes(b"old")
    (folder / "model_5_vecnormalize.pkl").write_bytes(b"old")
    state = checkpoint.write_checkpoint(str(folder), model, {})
    assert sorted(os.listdir(folder)) == sorted(["state.json", "model_30.zip", "replay_buffer_30.npz", "model_30_vecnormalize.npz"])
    assert (state["replay_buffer"], state["vecnormalize"]) == ("replay_buffer_30.npz", "model_30_vecnormalize.npz")


# -- rl-diffcat evaluate ---------------------------------------------------------------------------------------
def test_evaluate_refuses_a_crafted_model_in_one_line(genuine_files, tmp_path, capsys):
    marker = tmp_path / "marker"
    crafted = tmp_path / "crafted.zip"
    _crafted_model(genuine_files["DiffCatSAC.load"], crafted, "observation_space", PAYLOADS["reduce"][0](marker))
    args = ["evaluate", ENV, "--algo", "diffcat-sac", "--model", str(crafted), "--episodes", "1", "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("rl-diffcat evaluate: error: ") and "would load posix.system" in err and "--trust-file" in err
    assert not marker.exists()
    main([*args, "--trust-file"])  # the payload's return value replaces the space: SB3 then fails, after running it
    assert marker.exists()


def test_evaluate_needs_the_opt_in_for_pickled_statistics(tmp_path, capsys):
    model = PPO("MlpPolicy", VecNormalize(make_vec_env(ENV)), n_steps=16, batch_size=8).learn(16)
    model.save(tmp_path / "model.zip")
    model.get_vec_normalize_env().save(str(tmp_path / "model_vecnormalize.pkl"))  # the old format, beside the model
    args = ["evaluate", ENV, "--algo", "ppo", "--model", str(tmp_path / "model.zip"), "--episodes", "1", "--device", "cpu"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model_vecnormalize.pkl is a pickle file" in err and "--trust-file" in err
    assert main([*args, "--trust-file"]) == 0
    assert "observations normalized with" in capsys.readouterr().out
    save_stats(model, stats_path(str(tmp_path / "model.zip")))  # the data-only file: no opt-in needed
    assert main(args) == 0
    assert "model_vecnormalize.npz" in capsys.readouterr().out

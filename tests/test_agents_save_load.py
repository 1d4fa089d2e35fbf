"""Save/load of both agents, model and replay buffer, loaded in a fresh Python process."""

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch as th

from rl_diffcat.agents import DiffCatSAC, DiscreteSAC

SMALL = dict(learning_starts=50, batch_size=16, buffer_size=1000, policy_kwargs=dict(net_arch=[16, 16]))

# Loads model and buffer, predicts on the saved observations, trains on, reports what it restored.
LOADER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch as th
    from rl_diffcat.agents import DiffCatSAC, DiscreteSAC

    algo, model_path, buffer_path, data_path, out_path = sys.argv[1:]
    cls = {"DiffCatSAC": DiffCatSAC, "DiscreteSAC": DiscreteSAC}[algo]
    model = cls.load(model_path, device="cpu")
    model.load_replay_buffer(buffer_path)
    obs = np.load(data_path)["obs"]
    actions, _ = model.predict(obs, deterministic=True)
    restored = dict(
        buffer_size=int(model.replay_buffer.size()),
        ent_coef=float(model.current_ent_coef),
        sampler=getattr(model, "sampler", None),
        sampler_kwargs=getattr(model, "sampler_kwargs", None),
        q_gradient=getattr(model, "q_gradient", None),
        actor_adam_steps=int(next(iter(model.actor.optimizer.state.values()))["step"]),
        alpha_adam_steps=int(next(iter(model.ent_coef_optimizer.state.values()))["step"]),
    )
    import gymnasium as gym
    model.set_env(gym.make("CartPole-v1"))
    before = model._n_updates
    model.learn(60, reset_num_timesteps=False)
    restored["updates_after_learn"] = model._n_updates - before
    np.save(out_path, actions)
    print(json.dumps(restored))
    """
)


@pytest.mark.parametrize(
    "algo,kwargs",
    [
        (DiffCatSAC, dict(sampler="gumbel_softmax", sampler_kwargs=dict(n_steps=7, t_1=0.3, tau=0.6), q_gradient="autograd")),
        (DiscreteSAC, dict(twin_q="mean")),
    ],
)
def test_save_load_in_fresh_process(algo, kwargs, tmp_path):
    model = algo("MlpPolicy", "CartPole-v1", seed=0, **SMALL, **kwargs).learn(200)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    obs = np.stack([model.observation_space.sample() for _ in range(32)])
    np.savez(tmp_path / "data.npz", obs=obs)
    expected, _ = model.predict(obs, deterministic=True)

    script = tmp_path / "loader.py"
    script.write_text(LOADER)
    args = [algo.__name__, tmp_path / "model.zip", tmp_path / "buffer.pkl", tmp_path / "data.npz", tmp_path / "out.npy"]
    result = subprocess.run(
        [sys.executable, str(script), *map(str, args)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    restored = json.loads(result.stdout.strip().splitlines()[-1])

    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert restored["buffer_size"] == model.replay_buffer.size()
    assert restored["ent_coef"] == pytest.approx(model.current_ent_coef.item())
    assert restored["actor_adam_steps"] == int(next(iter(model.actor.optimizer.state.values()))["step"])
    assert restored["alpha_adam_steps"] == int(next(iter(model.ent_coef_optimizer.state.values()))["step"])
    assert restored["updates_after_learn"] > 0
    if algo is DiffCatSAC:
        assert restored["sampler"] == model.sampler and restored["sampler_kwargs"] == model.sampler_kwargs
        assert restored["q_gradient"] == "autograd"  # not the constructor default


def test_load_restores_fixed_temperature_and_exact_target(tmp_path):
    model = DiffCatSAC("MlpPolicy", "CartPole-v1", ent_coef=0.07, exact_target=True, seed=0, **SMALL).learn(80)
    model.save(tmp_path / "model.zip")
    loaded = DiffCatSAC.load(tmp_path / "model.zip", device="cpu")
    assert loaded.log_ent_coef is None and loaded.current_ent_coef.item() == pytest.approx(0.07)
    assert loaded.exact_target and loaded.target_entropy == pytest.approx(model.target_entropy)
    for p, q in zip(model.policy.parameters(), loaded.policy.parameters()):
        assert th.equal(p, q)


@pytest.mark.parametrize("saved, loader", [(DiffCatSAC, DiscreteSAC), (DiscreteSAC, DiffCatSAC)])
def test_loading_the_other_agents_file_is_refused(saved, loader, tmp_path):
    # SB3's load rebuilds the policy class named in the file: without the check, DiscreteSAC would
    # drive DiffCatSAC's joint critic Q(s, one-hot a) as if it scored every action.
    saved("MlpPolicy", "CartPole-v1", **SMALL).save(tmp_path / "model.zip")
    with pytest.raises(ValueError, match=f"{loader.__name__} needs a policy derived from .*saved by another agent"):
        loader.load(tmp_path / "model.zip", device="cpu")


def test_a_policy_of_the_other_agent_is_refused_at_construction():
    with pytest.raises(ValueError, match="DiffCatSAC needs a policy derived from DiffCatSACPolicy"):
        DiffCatSAC(DiscreteSAC.policy_aliases["MlpPolicy"], "CartPole-v1", **SMALL)


OLD_LAYOUT = pathlib.Path(__file__).with_name("data")


@pytest.mark.parametrize("name,algo", [("diffcat_sac_masked", DiffCatSAC), ("discrete_sac_masked", DiscreteSAC)])
def test_models_saved_before_the_agents_moved_still_load(name, algo):
    # Written by tests/data/save_old_layout_models.py before the critics, the mask mixin and the
    # compiled wiring moved (issue #37): the file names the classes at their old module paths, and
    # the restricted unpickler must still admit them and SB3 rebuild the same model.
    from test_agents_action_masks import PickTheMarked

    expected = json.loads((OLD_LAYOUT / "old_layout_models.json").read_text())[name]
    model = algo.load(OLD_LAYOUT / f"{name}.zip", device="cpu")
    model.load_replay_buffer(OLD_LAYOUT / f"{name}_buffer.npz")
    for kind, instance in (("policy_class", model.policy), ("replay_buffer_class", model.replay_buffer)):
        assert f"{type(instance).__module__}.{type(instance).__qualname__}" == expected[kind]
    assert model.use_action_masks and model._n_updates == expected["n_updates"]
    assert model.replay_buffer.size() == expected["buffer_size"]
    assert model.current_ent_coef.item() == pytest.approx(expected["ent_coef"], rel=1e-6)
    obs, masks = np.asarray(expected["observations"], dtype=np.float32), np.asarray(expected["action_masks"])
    actions, _ = model.predict(obs, deterministic=True, action_masks=masks)
    np.testing.assert_array_equal(actions, np.asarray(expected["actions"]))
    # trains on: the test env raises on a masked action, so the loaded masks machinery is checked too
    model.set_env(PickTheMarked((3, 4) if algo is DiffCatSAC else (5,)))
    model.learn(20, reset_num_timesteps=False)
    assert model._n_updates > expected["n_updates"]

"""Non-finite data never trains silently: NaN/inf rewards and observations are refused as they
arrive, a diverged update is reported at its logging point, and the SB3 drop-in refuses NaN logits."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, PPO

from rl_diffcat.agents import DiffCatSAC, DiscreteSAC
from rl_diffcat.sb3 import DiffCatActorCriticPolicy

SMALL = dict(learning_starts=50, batch_size=16, buffer_size=1000, policy_kwargs=dict(net_arch=[16, 16]), seed=0)
BAD_STEP = 120  # after learning starts, so the networks have been trained on finite data before it


class Poisoned(gym.Wrapper):
    """CartPole that returns ``value`` as its reward, first observation entry, or terminal
    observation at env step ``BAD_STEP`` (``where="reset"``: in the first reset's observation)."""

    def __init__(self, where: str, value: float = float("nan"), obs_kind: str = "box") -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.where, self.value, self.steps = where, value, 0
        if obs_kind == "dict":
            self.observation_space = spaces.Dict({"state": self.env.observation_space})
        self.obs_kind = obs_kind

    def _obs(self, obs: np.ndarray, poison: bool) -> object:
        if poison:
            obs = obs.copy()
            obs[0] = self.value
        return {"state": obs} if self.obs_kind == "dict" else obs

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs, self.where == "reset"), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        bad = self.steps == BAD_STEP
        if bad and self.where == "terminal":
            terminated = True  # the poisoned observation is the episode's last: SB3 moves it to the info
        if bad and self.where == "reward":
            reward = self.value
        return self._obs(obs, bad and self.where in ("observation", "terminal")), reward, terminated, truncated, info


def all_finite(model) -> bool:
    return all(th.isfinite(p).all() for p in model.policy.parameters())


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
@pytest.mark.parametrize(
    "where,value,quantity",
    [
        ("reward", float("nan"), "NaN reward"),
        ("reward", float("inf"), "inf reward"),
        ("observation", float("nan"), "NaN observation"),
        ("observation", -float("inf"), "inf observation"),
        ("terminal", float("nan"), "NaN terminal observation"),
    ],
)
def test_nonfinite_env_data_is_refused_before_it_is_stored(algo, where, value, quantity):
    model = algo("MlpPolicy", Poisoned(where, value), **SMALL)
    with pytest.raises(ValueError, match=f"{algo.__name__}: the env returned a {quantity} at env step {BAD_STEP}") as error:
        model.learn(400)
    assert "VecCheckNan" in str(error.value)  # says how to find the culprit
    assert model.replay_buffer.size() == BAD_STEP - 1  # the bad transition was not stored
    assert np.isfinite(model.replay_buffer.rewards).all() and np.isfinite(model.replay_buffer.observations).all()
    assert all_finite(model) and th.isfinite(model.current_ent_coef)


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_nonfinite_dict_observation_and_first_reset_are_refused(algo):
    model = algo("MultiInputPolicy", Poisoned("observation", obs_kind="dict"), **SMALL)
    with pytest.raises(ValueError, match="NaN observation at env step"):
        model.learn(400)
    with pytest.raises(ValueError, match="reset returned a NaN observation"):
        algo("MlpPolicy", Poisoned("reset"), **SMALL).learn(100)


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
def test_finite_runs_are_untouched(algo):
    """The checks read values only: a clean env trains as before (and the checks pass)."""
    model = algo("MlpPolicy", Poisoned("reward", value=1.0), **SMALL).learn(200)
    assert all_finite(model)


@pytest.mark.parametrize("algo", [DiffCatSAC, DiscreteSAC])
@pytest.mark.parametrize("loss", ["critic", "actor"])
def test_a_diverged_update_names_the_loss_and_the_step(algo, loss):
    model = algo("MlpPolicy", "CartPole-v1", **SMALL)
    name = f"_{loss}_loss_fn"
    healthy = getattr(model, name)

    def diverged(*args, **kwargs):
        value, other = healthy(*args, **kwargs)
        return value * float("nan") if model._n_updates >= 5 else value, other

    setattr(model, name, diverged)
    with pytest.raises(FloatingPointError, match=rf"train/{loss}_loss.* by gradient step 6 \(env step 56\)"):
        model.learn(300)


@pytest.mark.parametrize("algo", [PPO, A2C])
def test_drop_in_distribution_refuses_nan_logits(algo):
    model = algo(DiffCatActorCriticPolicy, Poisoned("reset"), n_steps=64, seed=0, device="cpu")
    with pytest.raises(ValueError, match="logits contain NaN"):
        model.learn(128)

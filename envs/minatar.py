"""MinAtar games as gymnasium envs with channel-first observations, and a CNN sized for them.

MinAtar (Young & Tian, 2019) renders five Atari-like games on a 10x10 grid with one
binary channel per object type. ``MinAtar`` ships its own gym registration, but with
channel-last bool observations; this wrapper gives ``(C, 10, 10)`` arrays that SB3
policies take as they are. The ``minatar`` package is an optional extra
(``pip install "rl-diffcat[minatar]"``) imported only when an env is built.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

# Our id suffix -> MinAtar's module name.
MINATAR_GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}


def _import_minatar():
    try:
        import minatar
    except ImportError as exc:
        raise ImportError(
            "MinAtar environments need the minatar extra: pip install 'rl-diffcat[minatar]' (MinAtar==1.0.15)."
        ) from exc
    return minatar


class MinAtarEnv(gym.Env):
    """One MinAtar game with channel-first observations.

    :param game: MinAtar module name (``breakout``, ``asterix``, ``freeway``, ``seaquest``,
        ``space_invaders``) or our id name (``Breakout``, ``SpaceInvaders``, ...)
    :param sticky_action_prob: probability of repeating the previous action (MinAtar default 0.1)
    :param difficulty_ramping: whether the game speeds up over time (MinAtar default)
    :param use_minimal_action_set: act only with the game's meaningful actions (e.g. 3 in
        Breakout) instead of all 6
    :param obs_dtype: ``np.uint8`` (4x smaller replay buffers) or ``np.float32``; values are 0 or 1
    :param render_mode: ``None`` or ``"rgb_array"`` (a ``(10, 10, 3)`` uint8 image)
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        game: str = "breakout",
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
        use_minimal_action_set: bool = True,
        obs_dtype: type | str = np.uint8,
        render_mode: str | None = None,
    ) -> None:
        game = MINATAR_GAMES.get(game, game)
        if game not in MINATAR_GAMES.values():
            raise ValueError(f"Unknown MinAtar game {game!r}; choose one of {sorted(MINATAR_GAMES.values())}.")
        if np.dtype(obs_dtype) not in (np.dtype(np.uint8), np.dtype(np.float32)):
            raise ValueError(f"obs_dtype must be uint8 or float32, got {obs_dtype!r}.")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}.")
        minatar = _import_minatar()
        self.game = minatar.Environment(game, sticky_action_prob=sticky_action_prob, difficulty_ramping=difficulty_ramping)
        self.render_mode = render_mode
        n_actions = self.game.num_actions()
        self.action_set = list(self.game.minimal_action_set()) if use_minimal_action_set else list(range(n_actions))
        height, width, channels = self.game.state_shape()
        self._obs_dtype = np.dtype(obs_dtype)
        self.observation_space = spaces.Box(0, 1, shape=(channels, height, width), dtype=self._obs_dtype)
        self.action_space = spaces.Discrete(len(self.action_set))

    def _obs(self) -> np.ndarray:
        return np.ascontiguousarray(self.game.state().transpose(2, 0, 1), dtype=self._obs_dtype)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            # MinAtar draws from its own RandomState; derive it from ours so seeds reproduce episodes.
            self.game.seed(int(self.np_random.integers(2**31 - 1)))
        # MinAtar's sticky actions repeat the last action; a new episode must not inherit the old
        # one's (a seeded reset would otherwise depend on what the env did before).
        self.game.last_action = 0
        self.game.reset()
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        index = int(action)
        if not 0 <= index < len(self.action_set):  # a negative index would pick an action from the end
            raise ValueError(f"action {action!r} is outside the action space Discrete({len(self.action_set)})")
        reward, terminal = self.game.act(self.action_set[index])
        return self._obs(), float(reward), bool(terminal), False, {}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        state = self.game.state()
        # One hue per channel, black background; later channels win where objects overlap.
        n_channels = state.shape[-1]
        hues = np.linspace(0.0, 1.0, n_channels, endpoint=False)
        palette = np.stack([0.5 + 0.5 * np.cos(2 * np.pi * (hues + k / 3)) for k in range(3)], axis=1)
        image = np.zeros((*state.shape[:2], 3))
        for channel in range(n_channels):
            image[state[..., channel].astype(bool)] = palette[channel]
        return (image * 255).astype(np.uint8)


class MinAtarCNN(BaseFeaturesExtractor):
    """The MinAtar paper's network body: one 3x3 conv with 16 filters, then a dense layer.

    SB3's ``NatureCNN`` uses an 8x8 stride-4 first layer and cannot take 10x10 inputs.
    Pass it as ``policy_kwargs=dict(features_extractor_class=MinAtarCNN)``.

    :param observation_space: channel-first ``Box`` of shape ``(C, H, W)``
    :param features_dim: size of the output features
    :param n_filters: number of convolution filters
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 128, n_filters: int = 16) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
            raise ValueError(
                f"MinAtarCNN needs a channel-first image Box of shape (C, H, W), got {observation_space!r}."
            )
        super().__init__(observation_space, features_dim)
        n_channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(n_channels, n_filters, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with th.no_grad():
            n_flatten = self.cnn(th.zeros(1, *observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flatten, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(self.cnn(observations.float()))

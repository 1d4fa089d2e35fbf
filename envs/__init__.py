"""Environments where exact enumeration over joint actions is out of reach.

Importing this package registers our ids with gymnasium (namespace ``rl_diffcat``):

- ``rl_diffcat/{Pendulum,LunarLanderContinuous,HalfCheetah,Hopper}-Discrete-v0``: continuous
  control with each action dimension cut into 11 bins (:class:`DiscretizeAction`);
- ``rl_diffcat/PolyProg-D{4,16,32}-v0``: polynomial programming with a known optimum
  (:class:`PolynomialProgramming`);
- ``rl_diffcat/PolyProg-Masked-D{4,16,32}-v0``: the same with a quarter of the decisions fixed
  per episode and their other value masked (:class:`MaskedPolynomialProgramming`, ``action_masks()``);
- ``rl_diffcat/MinAtar-{Asterix,Breakout,Freeway,Seaquest,SpaceInvaders}-v0``: channel-first
  MinAtar games (:class:`MinAtarEnv`, with :class:`MinAtarCNN` for SB3 policies).

:class:`ActionMasksInInfo` reports each step's action mask in ``info`` (the mask of an episode's
last observation, which a vectorized env's reset hides from ``action_masks()``).

:func:`list_envs` tells which optional extra each id needs. Without importing this package,
``gymnasium.make("rl_diffcat.envs:rl_diffcat/Pendulum-Discrete-v0")`` imports it for you.
"""

from rl_diffcat.envs.mask_info import ActionMasksInInfo
from rl_diffcat.envs.minatar import MINATAR_GAMES, MinAtarCNN, MinAtarEnv
from rl_diffcat.envs.polynomial import MaskedPolynomialProgramming, PolynomialProgramming
from rl_diffcat.envs.registration import (
    discretized_id,
    extra_installed,
    list_envs,
    make_discretized,
    make_env,
    register_envs,
    require_extra,
)
from rl_diffcat.envs.wrappers import DiscretizeAction

register_envs()

__all__ = [
    "MINATAR_GAMES",
    "ActionMasksInInfo",
    "DiscretizeAction",
    "MinAtarCNN",
    "MaskedPolynomialProgramming",
    "MinAtarEnv",
    "PolynomialProgramming",
    "discretized_id",
    "extra_installed",
    "list_envs",
    "make_discretized",
    "make_env",
    "register_envs",
    "require_extra",
]

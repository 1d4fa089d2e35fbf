"""Report each step's action mask in ``info``, so an agent also learns the mask of an episode's
last observation.

A vectorized env resets a finished episode inside ``step``: by the time the agent can call
``action_masks()``, it answers for the first observation of the next episode. The last
observation itself comes back in ``info["terminal_observation"]``, and with this wrapper its
mask comes back in ``info["action_masks"]``. DiffCatSAC and DiscreteSAC read it there; without
it they count every action valid in that observation (which matters after a time-limit cut,
where the critic's target bootstraps from it).
"""

from __future__ import annotations

from typing import Any, Dict, SupportsFloat, Tuple

import gymnasium as gym
import numpy as np


class ActionMasksInInfo(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Add ``info["action_masks"]``, the env's ``action_masks()`` after each step (the mask of the
    observation that step returns), to ``step``'s info.

    :param env: an environment with an ``action_masks()`` method (sb3-contrib's convention).
    """

    def __init__(self, env: gym.Env) -> None:
        if not env.has_wrapper_attr("action_masks"):
            raise ValueError(f"ActionMasksInInfo needs an env with an action_masks() method; {env} has none")
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def action_masks(self) -> np.ndarray:
        """The wrapped env's current action mask, as a copy: an env may update its own array in
        place on reset, which a vectorized env does before the agent reads ``info``."""
        return np.array(self.env.get_wrapper_attr("action_masks")(), dtype=bool)

    def step(self, action: Any) -> Tuple[Any, SupportsFloat, bool, bool, Dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "action_masks": self.action_masks()}

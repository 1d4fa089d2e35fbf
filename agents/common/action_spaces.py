"""Which action spaces the categorical agents accept, and their factor sizes."""

from __future__ import annotations

from typing import List, Tuple, Type

from gymnasium import spaces

FACTORED_SPACES: Tuple[Type[spaces.Space], ...] = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
"""Action spaces that are a product of categorical factors."""


def check_action_space(
    action_space: spaces.Space, algo_name: str, supported: Tuple[Type[spaces.Space], ...] = FACTORED_SPACES
) -> None:
    """Raise ``ValueError`` with a pointer to the right algorithm when ``action_space`` is not supported.

    :param action_space: the environment's action space.
    :param algo_name: the algorithm's name, used in the message.
    :param supported: the accepted space classes.
    """
    if isinstance(action_space, supported):
        if isinstance(action_space, spaces.Discrete) and int(action_space.start) != 0:
            raise ValueError(f"{algo_name} needs a Discrete action space starting at 0, got {action_space}")
        if isinstance(action_space, spaces.MultiBinary) and not isinstance(action_space.n, int):
            raise ValueError(
                f"{algo_name} needs a flat MultiBinary(n) action space, got {action_space}; "
                "flatten it (e.g. with a gymnasium ActionWrapper) first"
            )
        if isinstance(action_space, spaces.MultiDiscrete) and (
            action_space.nvec.ndim != 1 or (action_space.start != 0).any()
        ):
            raise ValueError(f"{algo_name} needs a 1-D MultiDiscrete action space starting at 0, got {action_space}")
        return
    if isinstance(action_space, spaces.Box):
        raise ValueError(
            f"{algo_name} is for discrete actions but the action space is continuous ({action_space}); "
            "use stable_baselines3.SAC for Box action spaces"
            + (
                ", or cut each dimension into bins with rl_diffcat.envs.DiscretizeAction"
                if spaces.MultiDiscrete in supported
                else ""
            )
        )
    names = ", ".join(cls.__name__ for cls in supported)
    hint = ""
    if spaces.MultiDiscrete not in supported and isinstance(action_space, FACTORED_SPACES):
        hint = "; use rl_diffcat.agents.DiffCatSAC for MultiDiscrete/MultiBinary action spaces"
    raise ValueError(f"{algo_name} supports {names} action spaces, got {action_space}{hint}")


def action_dims(action_space: spaces.Space) -> List[int]:
    """Sizes ``K_i`` of the categorical factors: ``[n]`` (Discrete), ``nvec`` (MultiDiscrete), ``[2] * n`` (MultiBinary).

    :param action_space: a ``Discrete``, ``MultiDiscrete`` or ``MultiBinary`` space.
    """
    if isinstance(action_space, spaces.Discrete):
        return [int(action_space.n)]
    if isinstance(action_space, spaces.MultiDiscrete):
        return [int(k) for k in action_space.nvec]
    if isinstance(action_space, spaces.MultiBinary):
        return [2] * int(action_space.n)
    raise ValueError(f"no categorical factors for action space {action_space}")

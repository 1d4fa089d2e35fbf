"""Our gymnasium ids (namespace ``rl_diffcat``), the optional extra each needs, and how to build them.

Importing :mod:`rl_diffcat.envs` registers every id. ``gymnasium.make`` can also import
it for you with the ``module:id`` syntax, e.g.
``gymnasium.make("rl_diffcat.envs:rl_diffcat/Pendulum-Discrete-v0")``.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Sequence

import gymnasium as gym

from rl_diffcat.envs.minatar import MINATAR_GAMES
from rl_diffcat.envs.wrappers import DiscretizeAction

NAMESPACE = "rl_diffcat"

# Optional extra -> the module whose presence means it is installed.
EXTRA_MODULES = {"box2d": "Box2D", "mujoco": "mujoco", "minatar": "minatar"}

# Our discretised id name -> (gymnasium id, extra it needs or None).
DISCRETIZED_TASKS = {
    "Pendulum-Discrete": ("Pendulum-v1", None),
    "LunarLanderContinuous-Discrete": ("LunarLanderContinuous-v3", "box2d"),
    "HalfCheetah-Discrete": ("HalfCheetah-v5", "mujoco"),
    "Hopper-Discrete": ("Hopper-v5", "mujoco"),
}

# Polynomial-programming sizes: D=4 (16 joint actions) for fast tests, 16 and 32 for benchmarks.
POLYNOMIAL_SIZES = (4, 16, 32)

# A safety cap: MinAtar games have no time limit of their own and a good Breakout agent never loses.
MINATAR_MAX_EPISODE_STEPS = 10_000


def _env_id(name: str) -> str:
    return f"{NAMESPACE}/{name}-v0"


def _build_table() -> dict[str, tuple[str | None, dict[str, Any]]]:
    """id -> (extra, keyword arguments of ``gymnasium.register``)."""
    table: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for name, (base_id, extra) in DISCRETIZED_TASKS.items():
        table[_env_id(name)] = (
            extra,
            dict(
                entry_point="rl_diffcat.envs.registration:make_discretized",
                kwargs={"env_id": base_id, "bins": 11},
                max_episode_steps=gym.spec(base_id).max_episode_steps,
            ),
        )
    for n_vars in POLYNOMIAL_SIZES:
        table[_env_id(f"PolyProg-D{n_vars}")] = (
            None,
            dict(entry_point="rl_diffcat.envs.polynomial:PolynomialProgramming", kwargs={"n_vars": n_vars}),
        )
    for n_vars in POLYNOMIAL_SIZES:
        table[_env_id(f"PolyProg-Masked-D{n_vars}")] = (
            None,
            dict(entry_point="rl_diffcat.envs.polynomial:MaskedPolynomialProgramming", kwargs={"n_vars": n_vars}),
        )
    for name, game in MINATAR_GAMES.items():
        table[_env_id(f"MinAtar-{name}")] = (
            "minatar",
            dict(
                entry_point="rl_diffcat.envs.minatar:MinAtarEnv",
                kwargs={"game": game},
                max_episode_steps=MINATAR_MAX_EPISODE_STEPS,
            ),
        )
    return table


_ENV_TABLE = _build_table()


def list_envs(installed_only: bool = False) -> dict[str, str | None]:
    """Our registered ids and the optional extra each needs (``None``: no extra).

    :param installed_only: keep only the ids whose extra is installed
    :return: ``{env_id: extra}``, e.g. ``{"rl_diffcat/HalfCheetah-Discrete-v0": "mujoco", ...}``
    """
    return {
        env_id: extra
        for env_id, (extra, _) in _ENV_TABLE.items()
        if not installed_only or extra is None or extra_installed(extra)
    }


def discretized_id(env_id: str) -> str | None:
    """Our ``*-Discrete-v0`` id for gymnasium's continuous ``env_id``, or ``None`` when we have none.

    :param env_id: a gymnasium id, e.g. ``"Pendulum-v1"`` (gives ``"rl_diffcat/Pendulum-Discrete-v0"``)
    """
    for name, (base_id, _) in DISCRETIZED_TASKS.items():
        if base_id == env_id:
            return _env_id(name)
    return None


def extra_installed(extra: str) -> bool:
    """Whether the optional dependency group ``extra`` (``box2d``, ``mujoco``, ``minatar``) is importable.

    :param extra: name of the extra as declared in pyproject
    """
    if extra not in EXTRA_MODULES:
        raise ValueError(f"Unknown extra {extra!r}; known extras: {sorted(EXTRA_MODULES)}.")
    return importlib.util.find_spec(EXTRA_MODULES[extra]) is not None


def require_extra(extra: str | None, what: str) -> None:
    """Raise an ImportError naming the pip command when ``extra`` is missing.

    :param extra: name of the extra, or ``None`` for nothing to check
    :param what: what needs it, for the message (usually the env id)
    """
    if extra is not None and not extra_installed(extra):
        raise ImportError(
            f"{what} needs the optional extra {extra!r}, which is not installed: "
            f"pip install 'rl-diffcat[{extra}]'"
        )


def make_discretized(env_id: str, bins: int | Sequence[int] = 11, **kwargs: Any) -> gym.Env:
    """Build gymnasium's ``env_id`` and wrap it in :class:`DiscretizeAction`.

    The entry point of our ``*-Discrete-v0`` ids. The inner env is built without its own
    time limit or checker: ``gymnasium.make`` adds both around the discretised env.

    :param env_id: a gymnasium id with a ``Box`` action space (e.g. ``"Pendulum-v1"``)
    :param bins: values per action dimension (one int, or one per dimension)
    :param kwargs: passed to the inner env (e.g. ``render_mode``, ``g`` for Pendulum)
    """
    base_spec = gym.spec(env_id)
    extras = [extra for base, extra in DISCRETIZED_TASKS.values() if base == base_spec.id]
    require_extra(extras[0] if extras else None, env_id)
    env = gym.make(base_spec, max_episode_steps=-1, disable_env_checker=True, **kwargs)
    return DiscretizeAction(env, bins=bins)


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` for our ids, with a clear error for an unknown id or a missing extra.

    :param env_id: one of :func:`list_envs` (e.g. ``"rl_diffcat/PolyProg-D4-v0"``)
    :param kwargs: passed to ``gymnasium.make`` (e.g. ``bins=5``, ``render_mode="rgb_array"``)
    """
    if env_id not in _ENV_TABLE:
        raise ValueError(f"Unknown rl_diffcat env id {env_id!r}; known ids: {sorted(_ENV_TABLE)}.")
    require_extra(_ENV_TABLE[env_id][0], env_id)
    return gym.make(env_id, **kwargs)


def register_envs() -> None:
    """Register our ids with gymnasium; ids already registered are left alone (safe to call twice)."""
    for env_id, (_, register_kwargs) in _ENV_TABLE.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, **register_kwargs)

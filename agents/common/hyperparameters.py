"""The checks of the hyperparameters both categorical SAC agents take, in one place.

:func:`check_sac_hyperparameters` runs before SB3 builds anything, so a bad value fails with a
message naming the argument, not deep in ``learn``; it returns the values in the types SB3 needs
(Python numbers: SB3's schedule asserts a float, and converts only a tuple of an int).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Union

from stable_baselines3.common.type_aliases import Schedule

from rl_diffcat.validation import check_bool, check_count, check_positive, is_number

TWIN_Q_REDUCTIONS = ("min", "mean")
# compile modes that CUDA-graph each compiled loss on their own
COMPILE_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def check_train_freq(train_freq: Any) -> Tuple[int, str]:
    """``train_freq`` as SB3 takes it, ``n`` or ``(n, "step" | "episode")``, with ``n >= 1``
    (SB3 accepts 0 here and fails only in ``learn``, with a bare AssertionError).

    :param train_freq: the value given.
    :return: the pair ``(n, unit)`` with a Python int, the only form SB3 converts (a YAML list
        or a numpy integer would fail there with a message about integers)."""
    if isinstance(train_freq, (tuple, list)):
        if len(train_freq) != 2 or train_freq[1] not in ("step", "episode"):
            raise ValueError(f"train_freq must be an integer or a pair (n, 'step' | 'episode'), got {train_freq!r}")
        check_count("train_freq[0]", train_freq[0], 1)
        return int(train_freq[0]), str(train_freq[1])
    check_count("train_freq", train_freq, 1, " (or a pair (n, 'step' | 'episode'))")
    return int(train_freq), "step"


def parse_ent_coef(ent_coef: Union[str, float]) -> Tuple[bool, float]:
    """``"auto"``/``"auto_<init>"``/float -> ``(tuned, initial value)``.

    :param ent_coef: the agent's ``ent_coef``.
    :return: whether the temperature is tuned, and its initial value."""
    if isinstance(ent_coef, str):
        value = 1.0 if ent_coef == "auto" else float("nan")
        if ent_coef.startswith("auto_"):
            try:
                value = float(ent_coef[len("auto_") :])
            except ValueError:
                pass
        if not value > 0:
            raise ValueError(f"ent_coef must be 'auto', 'auto_<initial value > 0>' or a float > 0, got {ent_coef!r}")
        return True, value
    check_positive("ent_coef", ent_coef)
    return False, float(ent_coef)


def check_temperature(ent_coef: Union[str, float], ent_coef_bounds: Any) -> Tuple[float, float]:
    """Check the temperature's bounds and initial value together (it must start within them).

    :param ent_coef: the agent's ``ent_coef``.
    :param ent_coef_bounds: ``(min, max)`` of the tuned temperature.
    :return: ``ent_coef_bounds`` as Python floats."""
    if not isinstance(ent_coef_bounds, (tuple, list)) or len(ent_coef_bounds) != 2:
        raise ValueError(f"ent_coef_bounds must be a pair (min, max), got {ent_coef_bounds!r}")
    low, high = ent_coef_bounds
    check_positive("ent_coef_bounds[0]", low)
    check_positive("ent_coef_bounds[1]", high)
    if low >= high:
        raise ValueError(f"ent_coef_bounds must be (min, max) with min < max, got {ent_coef_bounds!r}")
    tuned, init = parse_ent_coef(ent_coef)
    if tuned and not (low <= init <= high):
        raise ValueError(
            f"ent_coef={ent_coef!r} starts the tuned temperature at {init:g}, outside ent_coef_bounds {tuple(ent_coef_bounds)}: "
            "start inside them ('auto_<init>') or widen them"
        )
    return float(low), float(high)


def check_sac_hyperparameters(
    learning_rate: Union[float, Schedule],
    buffer_size: Any,
    learning_starts: Any,
    batch_size: Any,
    tau: Any,
    gamma: Any,
    train_freq: Any,
    gradient_steps: Any,
    n_steps: Any,
    ent_coef: Union[str, float],
    target_entropy_scale: Any,
    ent_coef_bounds: Any,
    twin_q: Any,
    backup_entropy: Any,
    max_grad_norm: Optional[float],
    target_update_interval: Any,
    compile_update: Any,
    compile_kwargs: Optional[Dict[str, Any]],
    cuda_graph: Any,
    use_action_masks: Any,
) -> Dict[str, Any]:
    """Check the hyperparameters of :class:`~rl_diffcat.agents.common.categorical_sac.CategoricalSAC`
    (their meaning is documented there) and raise ``ValueError`` naming the first bad one.

    :return: the arguments whose type changes, by name: ``learning_rate`` (a float, or the
        schedule given), ``tau``, ``gamma``, ``train_freq`` (a pair), ``target_entropy_scale``,
        ``ent_coef_bounds`` (floats), ``backup_entropy``, ``compile_update``, ``cuda_graph``
        (bools) and ``compile_kwargs`` (a dict); the others are valid as given.
    """
    if not callable(learning_rate):
        check_positive("learning_rate", learning_rate)
    scale = target_entropy_scale
    if not is_number(scale) or not (0.0 < scale <= 1.0):
        raise ValueError(f"target_entropy_scale must be in (0, 1] (a fraction of the max entropy), got {scale!r}")
    if not is_number(tau) or not (0.0 < tau <= 1.0):
        raise ValueError(f"tau (Polyak coefficient) must be in (0, 1], got {tau!r}")
    if not is_number(gamma) or not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    check_count("batch_size", batch_size, 1)
    check_count("buffer_size", buffer_size, 1)
    check_count("learning_starts", learning_starts, 0)
    if gradient_steps != -1:
        check_count("gradient_steps", gradient_steps, 1, " (or -1: as many as env steps collected)")
    checked_train_freq = check_train_freq(train_freq)
    check_count("n_steps", n_steps, 1)
    check_count("target_update_interval", target_update_interval, 1)
    if twin_q not in TWIN_Q_REDUCTIONS:
        raise ValueError(f"twin_q must be one of {TWIN_Q_REDUCTIONS}, got {twin_q!r}")
    check_positive("max_grad_norm", max_grad_norm, allow_none=True)
    bounds = check_temperature(ent_coef, ent_coef_bounds)
    compile_update, cuda_graph = check_bool("compile_update", compile_update), check_bool("cuda_graph", cuda_graph)
    backup_entropy = check_bool("backup_entropy", backup_entropy)
    if compile_kwargs is not None and not isinstance(compile_kwargs, dict):
        raise ValueError(f"compile_kwargs must be a dict of torch.compile arguments, got {compile_kwargs!r}")
    if use_action_masks is not None and not isinstance(use_action_masks, bool):
        raise ValueError(f"use_action_masks must be None (on when the env has action_masks()), True or False, got {use_action_masks!r}")
    if cuda_graph and compile_update and (compile_kwargs or {}).get("mode") in COMPILE_GRAPH_MODES:
        raise ValueError(
            f"cuda_graph=True captures the whole step itself: use compile mode 'default' (or no compile_update), "
            f"not {compile_kwargs['mode']!r}, which graphs the losses separately"
        )
    return dict(
        learning_rate=learning_rate if callable(learning_rate) else float(learning_rate),
        tau=float(tau),
        gamma=float(gamma),
        train_freq=checked_train_freq,
        target_entropy_scale=float(scale),
        ent_coef_bounds=bounds,
        backup_entropy=backup_entropy,
        compile_update=compile_update,
        cuda_graph=cuda_graph,
        compile_kwargs=dict(compile_kwargs or {}),
    )

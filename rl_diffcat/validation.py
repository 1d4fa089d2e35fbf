"""Generic checks of user input, shared by the samplers, the agents and the environments.

A leaf module: it imports nothing of the library, so any module may use it. The checks of one
component's own knobs (a sampler's ``t_1``, an agent's ``gamma``) live with that component and are
built from these.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def is_integer(value: Any) -> bool:
    """An integer, numpy's included (a hyperparameter read from an array), but not a bool.

    :param value: anything.
    :return: whether ``value`` is an integral number other than ``True``/``False``.
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number, numpy's included, but not a bool.

    :param value: anything.
    :return: whether ``value`` is a real number other than ``True``/``False``.
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(name: str, value: Any, allow_none: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite number > 0.

    :param name: the argument's name, for the message.
    :param value: the value given.
    :param allow_none: accept ``None`` too (an option that is off).
    """
    if allow_none and value is None:
        return
    if not is_number(value) or not (0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; raise ``ValueError`` naming ``name`` unless it is one (``bool("False")``
    would be True: a flag read as a string from a config must not switch the option on).

    :param name: the argument's name, for the message.
    :param value: the value given (a Python or numpy bool).
    :return: ``value`` as a Python bool.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_count(name: str, value: Any, minimum: int, hint: str = "") -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an integer >= ``minimum``.

    :param name: the argument's name, for the message.
    :param value: the value given (a Python or numpy integer, not a bool).
    :param minimum: the smallest value allowed.
    :param hint: appended to the message after the bound (what else the argument may be).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        floated = " (YAML reads 1e4 as a float: write 10000)" if isinstance(value, float) else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{hint}, got {value!r}{floated}")

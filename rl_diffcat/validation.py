"""Generic checks of user input, shared by the samplers, the agents and the environments.

A leaf module: it imports nothing of the library, so any module may use it. The checks of one
component's own knobs (a sampler's ``t_1``, an agent's ``gamma``) live with that component and are
built from these.
"""

from __future__ import annotations

import numbers
from typing import Any


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

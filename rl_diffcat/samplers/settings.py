"""How the samplers run: input validation and ReDGE's fast path, as defaults and scoped overrides.

A leaf of :mod:`rl_diffcat.samplers`. Each setting has three levels, the narrowest winning:

* a keyword of the call: ``validate_args=`` (every sampler), ``fast_path=`` (:func:`~rl_diffcat.samplers.redge`);
* a context manager for a block: ``with validate_inputs(False): ...``, ``with fast_path("off"): ...``
  (restores the previous value on exit, also when the block raises; usable as a decorator);
* the process default, :func:`set_validation` / :func:`set_fast_path`.

The context managers change the process default for the duration of the block (a plain module
attribute, which ``torch.compile`` reads without a graph break), so they are not thread-local.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Optional

FAST_PATH_MODES = ("auto", "off", "eager", "compiled", "triton")
"""How :func:`~rl_diffcat.samplers.redge` may run its DDIM chain (see :func:`set_fast_path`)."""

_VALIDATE_DEFAULT = True
_FAST_PATH = "auto"


def check_fast_path(mode: str) -> None:
    """Raise ``ValueError`` unless ``mode`` is one of :data:`FAST_PATH_MODES`."""
    if mode not in FAST_PATH_MODES:
        raise ValueError(f"fast path mode must be one of {FAST_PATH_MODES}, got {mode!r}")


def set_validation(enabled: bool) -> None:
    """Switch input validation of every sampler on or off (default: on).

    Validation reads tensors back to the host; switch it off in hot loops once inputs are trusted.

    :param enabled: whether samplers validate their inputs when ``validate_args`` is ``None``.
    """
    global _VALIDATE_DEFAULT
    _VALIDATE_DEFAULT = bool(enabled)


def validation_enabled(validate_args: Optional[bool] = None) -> bool:
    """:param validate_args: a call's own choice (``None``: none).
    :return: whether that call validates its inputs: its choice, else the current default."""
    return _VALIDATE_DEFAULT if validate_args is None else validate_args


def set_fast_path(mode: str) -> None:
    """Choose how :func:`~rl_diffcat.samplers.redge` runs its DDIM chain (process default).

    :param mode: ``"auto"`` (default: on CUDA the Triton kernels when ``triton`` is installed and
        ``n_steps <= 17``, else the compiled fused chain; the eager reference on CPU), ``"off"``
        (always the reference), ``"eager"`` (fused hand-written backward, not compiled),
        ``"compiled"`` (fused and ``torch.compile``d on every device) or ``"triton"``
        (:mod:`rl_diffcat.samplers.triton`, see BENCHMARKS.md; CUDA tensors, or CPU ones under
        ``TRITON_INTERPRET=1``). Inside a ``torch.compile``d
        function (``compile_update=True``) every mode runs the reference, which the compiler fuses.
    """
    global _FAST_PATH
    check_fast_path(mode)
    _FAST_PATH = mode


def fast_path_mode(fast_path: Optional[str] = None) -> str:
    """:param fast_path: a call's own choice (``None``: none).
    :return: the mode that call runs: its choice, else the current default."""
    if fast_path is None:
        return _FAST_PATH
    check_fast_path(fast_path)
    return fast_path


@contextlib.contextmanager
def _restoring(getter: Callable[[], Any], setter: Callable[[Any], None], value: Any) -> Iterator[None]:
    """Set a default for a block, then put back the one found on entering it."""
    previous = getter()
    setter(value)
    try:
        yield
    finally:
        setter(previous)


def validate_inputs(enabled: bool) -> contextlib.AbstractContextManager:
    """Validate sampler inputs (or not) inside a ``with`` block: ``with validate_inputs(False): ...``.

    :param enabled: the default of ``validate_args`` inside the block.
    """
    return _restoring(validation_enabled, set_validation, enabled)


def fast_path(mode: str) -> contextlib.AbstractContextManager:
    """Run ReDGE's chain by ``mode`` inside a ``with`` block: ``with fast_path("off"): ...``.

    :param mode: one of :data:`FAST_PATH_MODES` (see :func:`set_fast_path`); checked now.
    """
    check_fast_path(mode)
    return _restoring(fast_path_mode, set_fast_path, mode)

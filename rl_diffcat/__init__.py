"""rl-diffcat: discrete-action RL with pathwise gradients through the ReDGE diffusion sampler."""

from rl_diffcat.distributions import DiffusionCategorical, MultiDiffusionCategorical
from rl_diffcat.samplers import (
    SAMPLERS,
    fast_path,
    get_sampler,
    gumbel_softmax,
    make_sampler,
    redge,
    redge_cov,
    reindge,
    reinmax,
    score_function,
    set_fast_path,
    set_validation,
    straight_through,
    validate_inputs,
)
from rl_diffcat.serialization import UnsafeFileError, safe_load

__version__ = "0.1.0"

__all__ = [
    "DiffusionCategorical",
    "MultiDiffusionCategorical",
    "SAMPLERS",
    "UnsafeFileError",
    "fast_path",
    "get_sampler",
    "gumbel_softmax",
    "make_sampler",
    "redge",
    "redge_cov",
    "reindge",
    "reinmax",
    "safe_load",
    "score_function",
    "set_fast_path",
    "set_validation",
    "straight_through",
    "validate_inputs",
]

"""Shared test settings: single-threaded torch (CI has 2 cores) and a CUDA skip marker."""

import pytest
import torch

torch.set_num_threads(1)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def default_sampler_settings():
    """Every test starts from the library's global defaults, whatever an earlier test switched."""
    from rl_diffcat import samplers

    from torch.distributions import Distribution

    validate_default = Distribution._validate_args  # torch.compile's first use turns it off globally
    samplers.set_validation(True)
    samplers.set_fast_path("auto")
    yield
    samplers.set_validation(True)
    samplers.set_fast_path("auto")
    Distribution.set_default_validate_args(validate_default)

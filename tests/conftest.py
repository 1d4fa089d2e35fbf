"""Shared test settings: single-threaded torch (CI has 2 cores) and a CUDA skip marker."""

import pytest
import torch

torch.set_num_threads(1)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def default_sampler_settings():
    """Every test starts from the library's global defaults, whatever an earlier test switched."""
    from rl_diffcat import samplers

    samplers.set_validation(True)
    samplers.set_fast_path("auto")
    yield
    samplers.set_validation(True)
    samplers.set_fast_path("auto")

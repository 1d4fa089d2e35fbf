"""Shared test settings: single-threaded torch (CI has 2 cores) and a CUDA skip marker."""

import pytest
import torch

torch.set_num_threads(1)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

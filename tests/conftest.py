import os

import pytest
import torch

# Deterministic and single-threaded enough to be reproducible on a 2-core CI machine.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def gen():
    """A fresh seeded generator for each test."""
    return torch.Generator().manual_seed(0)

import os

import pytest
import torch

# Under pytest-xdist each worker gets one thread, so two workers do not oversubscribe 2 cores
# (oversubscribed OpenMP threads spin and slow everything down many times).
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # and the commands the tests start in subprocesses


@pytest.fixture
def gen():
    """A fresh seeded generator for each test."""
    return torch.Generator().manual_seed(0)

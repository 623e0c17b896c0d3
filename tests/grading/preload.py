"""Imported once by the fork server of the grading workers (never by the test process): what every worker
needs, loaded before any worker is forked, so that none of it counts against an exercise's time limit.

The first optimizer of a process imports torch._dynamo (seconds, and it sets TORCHINDUCTOR_CACHE_DIR in the
environment); the fork server does it once, so that no worker does it inside a student's call.
"""

import torch

from . import worker  # noqa: F401 - the workers' code, and through it the harness and torch

torch.optim.AdamW([torch.zeros(1, requires_grad=True)])

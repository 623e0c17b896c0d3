# Exercise file: write your code where the functions raise NotImplementedError.
# (Generated from solutions/probe.py by `python solutions/make_exercises.py`; graded by tests/grading/.)
"""Exercise 15, evaluating frozen features (notebook 7): linear_probe.

The paper's protocol: freeze the encoder, average-pool its patch tokens into one feature vector per image,
and fit a LINEAR classifier on top. Its test accuracy says how linearly separable the features are.

Check your work in the notebook or from a terminal:
    MINIJEPA_SUBMISSION=exercises python -m pytest tests/grading/test_probe.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    epochs: int = 100,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> float:
    """Top-1 test accuracy (a Python float in [0, 1]) of a linear classifier trained on frozen features.

    train_x (n, F), train_y (n,) integer labels; test_x (m, F), test_y (m,).

    1. Standardise the features with the TRAINING set's per-feature mean and std (add 1e-6 to the std);
       apply the same mean and std to the test features.
    2. The number of classes is max(train_y.max(), test_y.max()) + 1.
    3. Train a weight (F, classes) and a bias (classes,) with full-batch AdamW (``lr``, ``weight_decay``)
       on the cross-entropy for ``epochs`` steps. Initialise the weight with small random values from a
       ``torch.Generator().manual_seed(seed)`` (same seed, same result), the bias with zeros.
    4. Return the fraction of test samples whose arg-max class equals the label.

    The test labels are used only for scoring, never for training.
    """
    raise NotImplementedError("exercise 'linear_probe' is not implemented yet")

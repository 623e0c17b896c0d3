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
    ### BEGIN SOLUTION
    train_x, test_x = train_x.float(), test_x.float()
    mean, std = train_x.mean(0, keepdim=True), train_x.std(0, keepdim=True) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(seed)
    weight = (torch.randn(train_x.shape[1], num_classes, generator=g) * 0.01).requires_grad_(True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.AdamW([weight, bias], lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(train_x @ weight + bias, train_y).backward()
        opt.step()
    with torch.no_grad():
        return ((test_x @ weight + bias).argmax(1) == test_y).float().mean().item()
    ### END SOLUTION

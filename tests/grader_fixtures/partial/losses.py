import torch


def ijepa_loss(predictions, targets):
    if predictions.shape != targets.shape:
        raise ValueError("shapes differ")
    return ((predictions - targets) ** 2).sum()  # a common slip: the sum, not the mean

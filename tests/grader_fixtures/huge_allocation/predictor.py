import torch


def predictor_forward(predictor, context, context_idx, target_idx):
    buffer = torch.ones(2**31)  # 8 GB of float32
    return buffer[:1]

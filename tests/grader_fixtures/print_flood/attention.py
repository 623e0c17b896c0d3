import torch


def attention_weights(q, k):
    for _ in range(100):
        print("x" * 2**20)  # 100 MB of output in total
    return (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(dim=-1)

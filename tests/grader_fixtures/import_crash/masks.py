import torch

raise RuntimeError("boom: this file crashes when it is imported")


def sample_block(grid, block, generator):
    return torch.arange(4)

import torch


def patchify(images, patch_size)   # the colon is missing
    return images

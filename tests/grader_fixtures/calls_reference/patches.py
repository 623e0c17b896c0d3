import torch

# The reference module, reached without importing it (the static scan cannot see this).
_reference = getattr(getattr(torch, "s" + "ys"), "modules")["mini" + "jepa.patches"]


def patchify(images, patch_size):
    return _reference.patchify(images, patch_size)


unpatchify = _reference.unpatchify  # the reference function itself


def sincos_2d(dim, grid, temperature=10000.0):
    raise NotImplementedError("exercise 'sincos_2d' is not implemented yet")

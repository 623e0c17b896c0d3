from minijepa.patches import patchify, sincos_2d, unpatchify  # noqa: F401

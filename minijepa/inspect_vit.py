"""Looking inside a ViT: what the patch embedding, the positions and the attention heads have learned.

Pure functions of a model's weights or of its outputs on a batch, each returning a small tensor that a
notebook can plot (the figures of the ViT paper's Section 4.5 and ViT-22B's logit growth):

* :func:`patch_filter_pca`: the main directions of the patch-embedding filters, as RGB tiles. The ViT
  paper finds smooth, low-frequency bases, like the first filters of a CNN.
* :func:`position_similarity`: cosine similarity of every position embedding with every other. Learned
  positions end up encoding the 2-D grid (near patches are similar); sin-cos positions do so by design.
* :func:`mean_attention_distance`: how far, in pixels, each head of each layer looks on average. Some heads
  look far already in the first layer; a CNN's receptive field only grows with depth.
* :func:`attention_logits_max`: the largest pre-softmax attention logit of each layer, the quantity that
  grew without bound in ViT-22B's unstable runs (``qk_norm`` bounds it).

Notation: B batch, C channels, P patch size, H/W grid rows/columns, N = H * W patches, D width, L layers,
h heads, k components.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from .patches import as_pair, grid_size

__all__ = [
    "patch_filter_pca",
    "position_similarity",
    "patch_distances",
    "attention_distance",
    "mean_attention_distance",
    "attention_logits_max",
]


def patch_filter_pca(weight: torch.Tensor, k: int = 28, normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal components of the patch-embedding filters: (D, C, P, P) -> (tiles (k, C, P, P), ratios (k,)).

    Each of the D output channels of the patch embedding is a C x P x P filter that the patch is dotted
    with. Taking the D filters as samples, PCA (of the centred filters, by SVD) finds the few directions
    that explain most of them; ``ratios`` are the shares of the total variance each explains, largest
    first. A component's sign is arbitrary; we flip it so that its largest-magnitude entry (the first one,
    if several tie) is positive.

    ``normalize=True`` min-max scales each tile to [0, 1] over all its channels (so an RGB tile keeps its
    colours relative to each other), ready for ``imshow(tile.permute(1, 2, 0))``; ``normalize=False``
    returns the unit-norm components themselves.
    """
    if weight.dim() != 4:
        raise ValueError(f"expected patch-embedding filters of shape (D, C, P, P), got {tuple(weight.shape)}")
    d, c, p1, p2 = weight.shape
    x = rearrange(weight.detach().double(), "d c p1 p2 -> d (c p1 p2)")  # (D, C*P*P): one filter per row
    if not 1 <= k <= min(x.shape):
        raise ValueError(f"k={k} components requested, but {d} filters of {x.shape[1]} values have at most {min(x.shape)}")
    x = x - x.mean(dim=0, keepdim=True)  # (D, C*P*P), centred
    _, s, vh = torch.linalg.svd(x, full_matrices=False)  # s (r,), vh (r, C*P*P): rows are the components
    ratios = s**2 / (s**2).sum().clamp_min(1e-300)  # (r,)
    comps = vh[:k]  # (k, C*P*P)
    biggest = comps.gather(1, comps.abs().argmax(dim=1, keepdim=True))  # (k, 1)
    comps = comps * torch.where(biggest < 0, -1.0, 1.0)  # sign convention: largest entry positive
    if normalize:
        lo, hi = comps.amin(dim=1, keepdim=True), comps.amax(dim=1, keepdim=True)  # (k, 1)
        comps = torch.where(hi > lo, (comps - lo) / (hi - lo).clamp_min(1e-300), torch.full_like(comps, 0.5))
    tiles = rearrange(comps, "k (c p1 p2) -> k c p1 p2", c=c, p1=p1, p2=p2)  # (k, C, P, P)
    return tiles.to(weight.dtype), ratios[:k].to(weight.dtype)


def position_similarity(pos_embed: torch.Tensor, grid: int | tuple[int, int]) -> torch.Tensor:
    """Cosine similarity of every position embedding with every other: (1, N, D) or (N, D) -> (H, W, H, W).

    ``sim[r, c]`` is an H x W map: how similar the embedding of patch (r, c) is to each patch's. It is 1 on
    the diagonal (``sim[r, c, r, c]``) and symmetric; if the embeddings encode the grid, it falls off with
    the distance from (r, c) (the ViT paper's Figure 7, centre).
    """
    h, w = as_pair(grid)
    table = pos_embed.detach()
    if table.dim() == 3 and table.shape[0] == 1:
        table = table[0]  # (N, D)
    if table.dim() != 2 or table.shape[0] != h * w:
        raise ValueError(f"expected positions of shape (1, {h * w}, D) or ({h * w}, D) for a {h}x{w} grid, "
                         f"got {tuple(pos_embed.shape)}")
    unit = F.normalize(table.float(), dim=-1)  # (N, D)
    sim = unit @ unit.T  # (N, N)
    return rearrange(sim, "(h1 w1) (h2 w2) -> h1 w1 h2 w2", h1=h, w1=w, h2=h, w2=w)  # (H, W, H, W)


def patch_distances(grid: tuple[int, int], patch_size: int = 1) -> torch.Tensor:
    """(N, N) Euclidean distances between patch centres, in pixels (patch units if patch_size=1)."""
    H, W = grid
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    centres = torch.stack([rows.flatten(), cols.flatten()], dim=1).float() * patch_size  # (N, 2)
    return torch.cdist(centres, centres)  # (N, N)


def attention_distance(attention: torch.Tensor, grid: tuple[int, int], patch_size: int = 1) -> torch.Tensor:
    """Mean attention distance (the ViT paper's Figure 7): how far, on average, a head looks.

    attention: (..., N, N) rows sum to 1. For query i, sum_j a_ij * dist(i, j) is the expected distance of
    the attended patch; averaging over the queries gives one number per head, (...,), in pixels.
    A head that looks only at its own patch scores 0; uniform attention scores the mean distance between
    two patches of the grid.
    """
    dist = patch_distances(grid, patch_size).to(attention.dtype)  # (N, N)
    return (attention * dist).sum(-1).mean(-1)  # (...,)


def _attention_maps(model, images: torch.Tensor, batch_size: int, return_logits: bool):
    """Yield each chunk's list of L attention maps (or logits), (b, h, N, N), with the model in eval mode."""
    was_training = model.training
    model.eval()
    try:
        for chunk in images.split(batch_size):
            _, maps = model.forward_with_attention(chunk, return_logits=return_logits)  # L x (b, h, N, N)
            yield maps
    finally:
        model.train(was_training)


def mean_attention_distance(
    model, images: torch.Tensor, patch_size: int | None = None, batch_size: int = 64
) -> torch.Tensor:
    """(L, h) mean attention distance in pixels of every head of every layer, averaged over ``images``.

    ``model`` is a :class:`~minijepa.vit.VisionTransformer` (run in eval mode, without gradients, in chunks
    of ``batch_size`` images so the N x N maps of all layers never exist for the whole batch at once).
    ``images`` (B, C, H*P, W*P) may have any size the model accepts. ``patch_size`` (pixels per patch)
    defaults to the model's. Compare with ``patch_distances(grid, patch_size).mean()``, the distance of a
    head that attends uniformly.
    """
    patch_size = patch_size or model.config.patch_size
    grid = grid_size(images.shape[-2:], patch_size)
    total = 0.0
    for maps in _attention_maps(model, images, batch_size, return_logits=False):
        per_layer = torch.stack([attention_distance(a.float(), grid, patch_size) for a in maps])  # (L, b, h)
        total = total + per_layer.sum(dim=1)  # (L, h)
    return total / images.shape[0]  # (L, h)


def attention_logits_max(model, images: torch.Tensor, per_head: bool = False, batch_size: int = 64) -> torch.Tensor:
    """The largest pre-softmax attention logit q . k / sqrt(d) of each layer over ``images``: (L,), or (L, h).

    In ViT-22B's runs without ``qk_norm`` these logits grew during training until the softmax became
    one-hot; plotting this over training steps shows the growth. With ``qk_norm`` and unit LayerNorm
    gains, |q . k| / sqrt(d) <= sqrt(d) (both vectors have norm sqrt(d) after the norm).
    """
    best = None
    for maps in _attention_maps(model, images, batch_size, return_logits=True):
        chunk = torch.stack([logits.amax(dim=(0, 2, 3)) for logits in maps]).float()  # (L, h)
        best = chunk if best is None else torch.maximum(best, chunk)
    return best if per_head else best.amax(dim=1)  # (L, h) or (L,)

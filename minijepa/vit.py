"""The Vision Transformer: attention, MLP, pre-norm block, and the encoder that I-JEPA trains.

Names follow timm's vision_transformer.py (``patch_embed``, ``blocks.i.attn.qkv``, ``norm`` ...), which are
also the names of the official I-JEPA code, so state dicts map one to one.

Besides the plain I-JEPA encoder, :class:`ViTConfig` has a few options, all off by default:

* other resolutions: a model built for one image size runs on any other (rectangular too) whose sides are
  multiples of the patch size; positions are recomputed (sin-cos) or resized bicubically (learned);
* ``pos_embed="learned"``: a trained position table instead of the fixed sin-cos one;
* ViT-22B's stability options (Dehghani et al., 2023): ``qk_norm``, ``parallel_blocks``, ``qkv_bias=False``,
  ``norm_bias=False``.

Notation: B batch, N patches, K kept patches, D width, h heads, d = D / h head width, L layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .masks import gather_tokens
from .patches import PatchEmbed, as_pair, grid_size, resize_positions, sincos_2d

__all__ = [
    "ViTConfig",
    "VIT_PRESETS",
    "vit_config",
    "Attention",
    "MLP",
    "DropPath",
    "Block",
    "VisionTransformer",
    "init_vit_weights",
    "layer_norm",
    "vit_tiny",
    "vit_small",
    "vit_base",
    "vit_large",
    "vit_huge",
    "vit_giant",
]


POS_EMBED_KINDS = ("sincos", "learned")
PATCH_INITS = ("xavier", "trunc_normal")


@dataclass
class ViTConfig:
    """Everything that defines a ViT encoder. Presets below give the paper's sizes.

    Options beyond the I-JEPA encoder (the defaults are I-JEPA's):

    - ``patch_init``: how the patch embedding starts. ``"xavier"`` (default, as MAE): Xavier-uniform on the
      conv weight seen as a linear map of the flattened patch, std sqrt(2 / (P*P*C + D)). ``"trunc_normal"``:
      truncated normal(``init_std``) like every other layer, as the official I-JEPA code does. With small
      patches the latter makes the content part of a token tiny next to its sin-cos position (at patch 8,
      width 192, positions explain about 70 % of the variance of the layer-normed target tokens, against
      about 16 % with Xavier), and I-JEPA then finds a shortcut: targets that are predictable from their
      position alone, a predictor that ignores the context. Notebook 06 measures this.
    - ``pos_embed``: ``"sincos"``, fixed 2-D sin-cos positions (I-JEPA; nothing to learn, any grid can be
      computed), or ``"learned"``, a (1, N, D) parameter initialised truncated-normal(``init_std``) as in the
      original ViT, resized bicubically when the model runs on another grid.

    ViT-22B's changes for stable training at scale (each one independent of the others):

    - ``qk_norm``: a LayerNorm on every head's queries and keys before their dot product. Without it the
      attention logits can grow without bound during training; the softmax then puts all its weight on
      one token and training diverges. After the norm (gain 1, shift 0 at init) every q and k has norm
      sqrt(d), so |q . k| / sqrt(d) <= sqrt(d); only the norms' learned gains can raise that bound.
    - ``parallel_blocks``: x + Attn(LN(x)) + MLP(LN(x)), both branches reading one shared LayerNorm (the
      ViT-22B form, taken from PaLM) instead of one after the other; the two branches' input matrix products
      can then be fused into one, which makes training faster at scale. Blocks then have no ``norm2``.
    - ``qkv_bias=False``: no biases in the query/key/value projection.
    - ``norm_bias=False``: no additive bias in any LayerNorm (block norms, q/k norms, the final norm), only
      the gain. The MLP layers and the attention output projection keep their biases, as in ViT-22B.
    """

    image_size: int | tuple[int, int] = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop_path_rate: float = 0.0
    norm_eps: float = 1e-6
    init_std: float = 0.02
    pos_embed: str = "sincos"  # "sincos" (fixed) or "learned"
    patch_init: str = "xavier"  # "xavier" (as MAE) or "trunc_normal" (as the official I-JEPA code)
    qk_norm: bool = False  # ViT-22B: LayerNorm on queries and keys
    parallel_blocks: bool = False  # ViT-22B: attention and MLP side by side, one shared LayerNorm
    norm_bias: bool = True  # False: LayerNorms without bias (ViT-22B)

    def __post_init__(self):
        self.image_size = as_pair(self.image_size)
        for name in ("patch_size", "in_chans", "embed_dim", "depth", "num_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"ViTConfig.{name} must be >= 1, got {getattr(self, name)}")
        grid_size(self.image_size, self.patch_size)  # image must be divisible by the patch size
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.patch_init not in PATCH_INITS:
            raise ValueError(f"patch_init={self.patch_init!r} is not one of {PATCH_INITS}")
        if self.pos_embed not in POS_EMBED_KINDS:
            raise ValueError(f"pos_embed={self.pos_embed!r} is not one of {POS_EMBED_KINDS}")
        if self.pos_embed == "sincos" and self.embed_dim % 4:
            raise ValueError(f"embed_dim={self.embed_dim} must be a multiple of 4 for 2-D sin-cos positions")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}")

    @property
    def grid(self) -> tuple[int, int]:
        return grid_size(self.image_size, self.patch_size)


# (depth, width, heads); MLP width is 4 x width. ViT-Ti/S/B/L/H from the ViT paper; Giant from the I-JEPA code.
VIT_PRESETS: dict[str, dict] = {
    "tiny": dict(depth=12, embed_dim=192, num_heads=3),
    "small": dict(depth=12, embed_dim=384, num_heads=6),
    "base": dict(depth=12, embed_dim=768, num_heads=12),
    "large": dict(depth=24, embed_dim=1024, num_heads=16),
    "huge": dict(depth=32, embed_dim=1280, num_heads=16),
    "giant": dict(depth=40, embed_dim=1408, num_heads=16, mlp_ratio=48 / 11),  # MLP 6144
}


def vit_config(name: str, **overrides) -> ViTConfig:
    """A preset (``"tiny"`` ... ``"giant"``) with any field overridden, e.g. ``vit_config("tiny", patch_size=8)``."""
    if name not in VIT_PRESETS:
        raise ValueError(f"unknown ViT preset {name!r}; choose one of {sorted(VIT_PRESETS)}")
    return ViTConfig(**{**VIT_PRESETS[name], **overrides})


def layer_norm(dim: int, eps: float = 1e-6, bias: bool = True) -> nn.LayerNorm:
    """``nn.LayerNorm`` over the last ``dim`` features; ``bias=False`` keeps only the gain (ViT-22B)."""
    return nn.LayerNorm(dim, eps=eps, bias=bias)


class Attention(nn.Module):
    """Multi-head self-attention.

    Every token emits a query, a key and a value; token i's output is the average of all values weighted
    by softmax_j(q_i . k_j / sqrt(d)). The fast path calls ``F.scaled_dot_product_attention`` (a fused
    kernel that never stores the N x N weights); ``return_attention=True`` computes the same thing
    explicitly and also returns the weights (B, h, N, N) for plots, ``return_logits=True`` the logits
    q_i . k_j / sqrt(d) before the softmax (B, h, N, N) (after both: out, weights, logits).

    ``qk_norm=True`` (ViT-22B) layer-normalises each head's queries and keys over their d features before
    the dot product; one LayerNorm of width d for the queries and one for the keys, shared by the heads.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_norm: bool = False,
        norm_eps: float = 1e-6,
        norm_bias: bool = True,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = layer_norm(head_dim, norm_eps, norm_bias) if qk_norm else nn.Identity()
        self.k_norm = layer_norm(head_dim, norm_eps, norm_bias) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values of tokens (B, N, D), split into heads: 3 x (B, h, N, d), q and k normalised if qk_norm."""
        qkv = self.qkv(x)  # (B, N, 3*D)
        q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.num_heads)  # 3 x (B, h, N, d)
        return self.q_norm(q), self.k_norm(k), v

    def forward(self, x: torch.Tensor, return_attention: bool = False, return_logits: bool = False,
                last: int | None = None):
        """``last=n``: only the last n tokens ask queries (all N still serve as keys and values); out (B, n, D)."""
        q, k, v = self.heads(x)  # 3 x (B, h, N, d)
        if last is not None:
            q = q[:, :, -last:]  # (B, h, n, d)
        if return_attention or return_logits:
            logits = (q @ k.transpose(-2, -1)) * self.scale  # (B, h, N, N)
            attn = logits.softmax(dim=-1)  # (B, h, N, N), rows sum to 1
            out = attn @ v  # (B, h, N, d)
        else:
            out = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d)
        out = self.proj(rearrange(out, "b h n d -> b n (h d)"))  # (B, N, D)
        maps = ([attn] if return_attention else []) + ([logits] if return_logits else [])
        return (out, *maps) if maps else out


class MLP(nn.Module):
    """Two-layer perceptron applied to every token independently: D -> hidden -> D with GELU."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (B, N, D)


class DropPath(nn.Module):
    """Stochastic depth: during training, skip a residual branch for a random subset of samples.

    Each sample's branch output is zeroed with probability p and scaled by 1/(1-p) otherwise, so the
    expected output is unchanged and evaluation (which never drops) needs no rescaling.
    """

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)  # one coin per sample: (B, 1, 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Block(nn.Module):
    """Pre-norm Transformer block: x + Attn(LN(x)), then x + MLP(LN(x)).

    ``parallel=True`` is ViT-22B's parallel block, x + Attn(LN(x)) + MLP(LN(x)): both branches read the same
    normalised input (one LayerNorm, so there is no ``norm2``), and stochastic depth drops their sum as
    one residual branch. ``qk_norm`` and ``norm_bias`` are passed on (see :class:`ViTConfig`).
    ``return_attention`` / ``return_logits`` return the attention weights / logits too, as in :class:`Attention`.

    ``last=n`` computes the outputs of the last n tokens only, (B, n, D): the other tokens are still read (as
    keys and values) but their own queries, attention outputs and MLP are skipped. The result equals
    ``block(x)[:, -n:]``; a last block whose other outputs would be thrown away (the predictor's) does less work.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
        *,
        qk_norm: bool = False,
        parallel: bool = False,
        norm_bias: bool = True,
    ):
        super().__init__()
        self.parallel = parallel
        self.norm1 = layer_norm(dim, norm_eps, norm_bias)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, qk_norm=qk_norm, norm_eps=norm_eps, norm_bias=norm_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = None if parallel else layer_norm(dim, norm_eps, norm_bias)
        self.mlp = MLP(dim, round(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, return_attention: bool = False, return_logits: bool = False,
                last: int | None = None):
        z = self.norm1(x)  # (B, N, D)
        maps = []
        if return_attention or return_logits:
            y, *maps = self.attn(z, return_attention=return_attention, return_logits=return_logits, last=last)
        else:
            y = self.attn(z, last=last)  # (B, N, D), or (B, n, D) with last=n
        if last is not None:  # only the last n tokens go on: the others were only needed as keys and values
            x, z = x[:, -last:], z[:, -last:]  # (B, n, D)
        if self.parallel:
            x = x + self.drop_path(y + self.mlp(z))  # (B, N, D): both branches read the same LN(x)
        else:
            x = x + self.drop_path(y)  # (B, N, D)
            x = x + self.drop_path(self.mlp(self.norm2(x)))  # (B, N, D)
        return (x, *maps) if maps else x


def init_vit_weights(module: nn.Module, blocks: nn.ModuleList, std: float = 0.02) -> None:
    """The I-JEPA / ViT initialisation, applied once.

    1. Every linear and convolution weight ~ normal(0, std) truncated at +-2 std; biases 0; LayerNorm 1 / 0
       (the q/k norms of ``qk_norm`` included; bias-free norms and layers have no bias to zero).
    2. Then, in block l (counting from 1), the two layers that write into the residual stream (attn.proj and
       mlp.fc2) are divided by sqrt(2 l): deeper blocks start with smaller updates, so the residual stream's
       variance does not grow with depth.
    The official I-JEPA code rescales too, but then its helper re-initialises every linear layer again,
    which silently undoes step 2. Here step 2 is kept (tests/test_vit.py checks it).
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    with torch.no_grad():
        for layer, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer))


class VisionTransformer(nn.Module):
    """ViT encoder without class token or head: images (B, C, H*P, W*P) -> patch tokens (B, N, D).

    ``keep`` (B, K) selects which patches enter the Transformer (I-JEPA's context encoder sees only the
    context block); the result is then (B, K, D). Positions are added *before* dropping patches, so each
    kept token still knows where it came from; ``keep`` indexes the grid of the images given.

    Any image whose sides are multiples of P works, not only ``config.image_size``: nothing in the
    Transformer depends on N, only the positions do, and :meth:`position_embeddings` provides them for the
    new grid. At the built size nothing is recomputed, so outputs there are bit-identical.
    """

    def __init__(self, config: ViTConfig | None = None, **kwargs):
        super().__init__()
        config = replace(config, **kwargs) if config is not None else ViTConfig(**kwargs)
        self.config = config
        self.embed_dim = config.embed_dim
        self.patch_embed = PatchEmbed(config.patch_size, config.in_chans, config.embed_dim)
        num_patches = config.grid[0] * config.grid[1]
        if config.pos_embed == "learned":  # trained, so saved in checkpoints
            self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, config.embed_dim))  # (1, N, D)
        else:  # fixed, not learned: a buffer, recomputed rather than saved in checkpoints
            self.register_buffer("pos_embed", sincos_2d(config.embed_dim, config.grid)[None], persistent=False)  # (1, N, D)
        drop_rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()  # deeper blocks drop more
        self.blocks = nn.ModuleList(
            Block(
                config.embed_dim, config.num_heads, config.mlp_ratio, config.qkv_bias, rate, config.norm_eps,
                qk_norm=config.qk_norm, parallel=config.parallel_blocks, norm_bias=config.norm_bias,
            )
            for rate in drop_rates
        )
        self.norm = layer_norm(config.embed_dim, config.norm_eps, config.norm_bias)
        init_vit_weights(self, self.blocks, config.init_std)
        if config.patch_init == "xavier":  # a linear map of the flattened (C*P*P) patch, initialised as one
            weight = self.patch_embed.proj.weight  # (D, C, P, P)
            nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        if config.pos_embed == "learned":
            std = config.init_std
            nn.init.trunc_normal_(self.pos_embed, mean=0.0, std=std, a=-2 * std, b=2 * std)

    @property
    def grid(self) -> tuple[int, int]:
        return self.config.grid

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def position_embeddings(self, grid: int | tuple[int, int]) -> torch.Tensor:
        """(1, H*W, D) positions for an H x W grid; the stored table itself for the built grid.

        Another grid: sin-cos positions are recomputed for it (the formula extends to any grid; on a bigger
        grid the far rows and columns get positions the model never saw in training); a learned table is
        resized bicubically (:func:`~minijepa.patches.resize_positions`), so the new grid spans the same
        range of positions as the trained one.
        """
        grid = as_pair(grid)
        if grid == tuple(self.grid):
            return self.pos_embed
        if self.config.pos_embed == "learned":
            return resize_positions(self.pos_embed, self.grid, grid)  # (1, H*W, D)
        return sincos_2d(self.embed_dim, grid)[None].to(self.pos_embed)  # (1, H*W, D), same device and dtype

    def embed(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Patch embedding + positions, then keep the selected patches: (B, K, D)."""
        grid = self.patch_embed.check_input(images)
        x = self.patch_embed(images) + self.position_embeddings(grid)  # (B, N, D)
        if keep is not None:
            x = gather_tokens(x, keep)  # (B, K, D)
        return x

    def forward(self, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(images, keep)  # (B, K, D)
        for block in self.blocks:
            x = block(x)  # (B, K, D)
        return self.norm(x)  # (B, K, D)

    def last_layers(self, images: torch.Tensor, n: int = 4, keep: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The outputs of the last ``n`` blocks, each through the final norm: ``n`` tensors (B, K, D).

        The last one equals :meth:`forward`. The paper's linear probe may read the concatenation of the last
        4 layers' pooled tokens (earlier layers keep more of the low-level detail that the last one drops).
        """
        if not 1 <= n <= len(self.blocks):
            raise ValueError(f"n={n}: this encoder has {len(self.blocks)} blocks")
        x = self.embed(images, keep)  # (B, K, D)
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)  # (B, K, D)
            if i >= len(self.blocks) - n:
                outputs.append(self.norm(x))
        return outputs

    @torch.no_grad()
    def forward_with_attention(self, images: torch.Tensor, keep: torch.Tensor | None = None, return_logits: bool = False):
        """Like :meth:`forward`, also returning each block's attention weights, a list of (B, h, K, K).

        ``return_logits=True`` returns the pre-softmax logits instead (same shapes), e.g. to watch them grow.
        """
        x = self.embed(images, keep)  # (B, K, D)
        maps = []
        for block in self.blocks:
            x, attn = block(x, return_attention=not return_logits, return_logits=return_logits)
            maps.append(attn)  # (B, h, K, K)
        return self.norm(x), maps


def _preset_factory(name: str):
    def build(patch_size: int = 16, image_size: int | tuple[int, int] = 224, **overrides) -> VisionTransformer:
        return VisionTransformer(vit_config(name, patch_size=patch_size, image_size=image_size, **overrides))

    build.__name__ = f"vit_{name}"
    build.__doc__ = f"ViT-{name.capitalize()}: {VIT_PRESETS[name]}; patch size and image size are arguments."
    return build


vit_tiny = _preset_factory("tiny")
vit_small = _preset_factory("small")
vit_base = _preset_factory("base")
vit_large = _preset_factory("large")
vit_huge = _preset_factory("huge")
vit_giant = _preset_factory("giant")

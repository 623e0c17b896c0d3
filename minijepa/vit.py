"""The Vision Transformer: attention, MLP, pre-norm block, and the encoder that I-JEPA trains.

Names follow timm's vision_transformer.py (``patch_embed``, ``blocks.i.attn.qkv``, ``norm`` ...), which are
also the names of the official I-JEPA code, so state dicts map one to one.

Notation: B batch, N patches, K kept patches, D width, h heads, d = D / h head width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from .masks import gather_tokens
from .patches import PatchEmbed, as_pair, grid_size, sincos_2d

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
    "vit_tiny",
    "vit_small",
    "vit_base",
    "vit_large",
    "vit_huge",
    "vit_giant",
]


@dataclass
class ViTConfig:
    """Everything that defines a ViT encoder. Presets below give the paper's sizes."""

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

    def __post_init__(self):
        self.image_size = as_pair(self.image_size)
        for name in ("patch_size", "in_chans", "embed_dim", "depth", "num_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"ViTConfig.{name} must be >= 1, got {getattr(self, name)}")
        grid_size(self.image_size, self.patch_size)  # image must be divisible by the patch size
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.embed_dim % 4:
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


class Attention(nn.Module):
    """Multi-head self-attention.

    Every token emits a query, a key and a value; token i's output is the average of all values weighted
    by softmax_j(q_i . k_j / sqrt(d)). The fast path calls ``F.scaled_dot_product_attention`` (a fused
    kernel that never stores the N x N weights); ``return_attention=True`` computes the same thing
    explicitly and also returns the weights (B, h, N, N) for plots.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        qkv = self.qkv(x)  # (B, N, 3*D)
        q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.num_heads)  # 3 x (B, h, N, d)
        if return_attention:
            logits = (q @ k.transpose(-2, -1)) * self.scale  # (B, h, N, N)
            attn = logits.softmax(dim=-1)  # (B, h, N, N), rows sum to 1
            out = attn @ v  # (B, h, N, d)
        else:
            out = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d)
        out = self.proj(rearrange(out, "b h n d -> b n (h d)"))  # (B, N, D)
        return (out, attn) if return_attention else out


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
    """Pre-norm Transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLP(dim, round(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        if return_attention:
            y, attn = self.attn(self.norm1(x), return_attention=True)
        else:
            y = self.attn(self.norm1(x))
        x = x + self.drop_path(y)  # (B, N, D)
        x = x + self.drop_path(self.mlp(self.norm2(x)))  # (B, N, D)
        return (x, attn) if return_attention else x


def init_vit_weights(module: nn.Module, blocks: nn.ModuleList, std: float = 0.02) -> None:
    """The I-JEPA / ViT initialisation, applied once.

    1. Every linear and convolution weight ~ normal(0, std) truncated at +-2 std; biases 0; LayerNorm 1 / 0.
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
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for layer, block in enumerate(blocks, start=1):
            block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
            block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer))


class VisionTransformer(nn.Module):
    """ViT encoder without class token or head: images (B, C, H*P, W*P) -> patch tokens (B, N, D).

    ``keep`` (B, K) selects which patches enter the Transformer (I-JEPA's context encoder sees only the
    context block); the result is then (B, K, D). Positions are added *before* dropping patches, so each
    kept token still knows where it came from.
    """

    def __init__(self, config: ViTConfig | None = None, **kwargs):
        super().__init__()
        config = replace(config, **kwargs) if config is not None else ViTConfig(**kwargs)
        self.config = config
        self.embed_dim = config.embed_dim
        self.patch_embed = PatchEmbed(config.patch_size, config.in_chans, config.embed_dim)
        # Fixed, not learned: a buffer, recomputed rather than saved in checkpoints.
        self.register_buffer("pos_embed", sincos_2d(config.embed_dim, config.grid)[None], persistent=False)  # (1, N, D)
        drop_rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()  # deeper blocks drop more
        self.blocks = nn.ModuleList(
            Block(config.embed_dim, config.num_heads, config.mlp_ratio, config.qkv_bias, rate, config.norm_eps)
            for rate in drop_rates
        )
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        init_vit_weights(self, self.blocks, config.init_std)

    @property
    def grid(self) -> tuple[int, int]:
        return self.config.grid

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def position_embeddings(self, grid: tuple[int, int]) -> torch.Tensor:
        """(1, H*W, D) positions for a grid; a grid other than the built one is computed on the fly."""
        if tuple(grid) == tuple(self.grid):
            return self.pos_embed
        return sincos_2d(self.embed_dim, grid)[None].to(self.pos_embed.device)

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

    @torch.no_grad()
    def forward_with_attention(self, images: torch.Tensor, keep: torch.Tensor | None = None):
        """Like :meth:`forward`, also returning each block's attention weights, a list of (B, h, K, K)."""
        x = self.embed(images, keep)
        maps = []
        for block in self.blocks:
            x, attn = block(x, return_attention=True)
            maps.append(attn)
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

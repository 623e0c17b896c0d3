"""The I-JEPA predictor: a narrow ViT that guesses the target blocks' representations from the context.

Input: the context encoder's tokens (B, K, D) and where they sit on the grid, plus the positions of the M
target blocks (B, M, T). The predictor projects the context to its own, narrower width d, and appends one
*mask token* per target patch: a single learned vector shared by all targets, plus the sin-cos position of
the patch it stands for. After a few Transformer blocks the outputs at the mask tokens, projected back to
width D, are the predictions (B, M, T, D).

Why narrow? Its job is easier than the encoder's (it only has to fill in a few blocks, for one image) and a
small predictor keeps the semantic work in the encoder, where we want it. It is also cheap: in the paper a
ViT-H/14 encoder (width 1280) is paired with a 12-block predictor of width 384.

Each target block is predicted separately, with the context repeated once per block, so target blocks
cannot see each other's mask tokens. All M blocks run together in one batch of B * M sequences.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange, repeat

from .masks import gather_tokens
from .patches import as_pair, sincos_2d
from .vit import Block, init_vit_weights

__all__ = ["Predictor"]


class Predictor(nn.Module):
    def __init__(
        self,
        grid: int | tuple[int, int],
        embed_dim: int,
        predictor_dim: int = 384,
        depth: int = 6,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        norm_eps: float = 1e-6,
        init_std: float = 0.02,
        out_dim: int | None = None,
    ):
        """``out_dim`` defaults to the encoder width ``embed_dim``; set it to P*P*C to predict pixels instead."""
        super().__init__()
        if predictor_dim % num_heads:
            raise ValueError(f"predictor_dim={predictor_dim} is not divisible by num_heads={num_heads}")
        if predictor_dim % 4:
            raise ValueError(f"predictor_dim={predictor_dim} must be a multiple of 4 for 2-D sin-cos positions")
        if depth < 1:
            raise ValueError(f"predictor depth must be >= 1, got {depth}")
        self.grid = as_pair(grid)
        self.embed_dim = embed_dim
        self.predictor_dim = predictor_dim
        self.embed = nn.Linear(embed_dim, predictor_dim)  # encoder width D -> predictor width d
        self.mask_token = nn.Parameter(torch.zeros(1, 1, predictor_dim))  # one learned vector for every target
        self.register_buffer("pos_embed", sincos_2d(predictor_dim, self.grid)[None], persistent=False)  # (1, N, d)
        drop_rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(predictor_dim, num_heads, mlp_ratio, qkv_bias, rate, norm_eps) for rate in drop_rates
        )
        self.norm = nn.LayerNorm(predictor_dim, eps=norm_eps)
        self.proj = nn.Linear(predictor_dim, out_dim or embed_dim)  # back to the target's width
        init_vit_weights(self, self.blocks, init_std)
        nn.init.trunc_normal_(self.mask_token, std=init_std, a=-2 * init_std, b=2 * init_std)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor) -> torch.Tensor:
        """context (B, K, D), context_idx (B, K), target_idx (B, M, T) -> predictions (B, M, T, out_dim)."""
        if context.shape[:2] != context_idx.shape:
            raise ValueError(f"context tokens {tuple(context.shape)} and context indices {tuple(context_idx.shape)} disagree")
        if target_idx.dim() != 3 or target_idx.shape[0] != context.shape[0]:
            raise ValueError(f"target indices must be (B, M, T) with B={context.shape[0]}, got {tuple(target_idx.shape)}")
        b, k, _ = context.shape
        m, t = target_idx.shape[1:]
        pos = self.pos_embed.expand(b, -1, -1)  # (B, N, d)

        x = self.embed(context) + gather_tokens(pos, context_idx)  # (B, K, d)
        x = repeat(x, "b k d -> (b m) k d", m=m)  # (B*M, K, d): the context, once per target block

        queries = self.mask_token + gather_tokens(pos, target_idx)  # (B, M, T, d): mask token + where to predict
        queries = rearrange(queries, "b m t d -> (b m) t d")  # (B*M, T, d)

        x = torch.cat([x, queries], dim=1)  # (B*M, K+T, d)
        for block in self.blocks[:-1]:
            x = block(x)  # (B*M, K+T, d)
        # Only the outputs at the mask tokens are predictions: the last block computes just those (the context
        # tokens still serve as its keys and values), the same numbers as block(x)[:, k:] for less work.
        x = self.blocks[-1](x, last=t)  # (B*M, T, d)
        x = self.norm(x)  # (B*M, T, d)
        x = self.proj(x)  # (B*M, T, out_dim)
        return rearrange(x, "(b m) t d -> b m t d", b=b, m=m)  # (B, M, T, out_dim)

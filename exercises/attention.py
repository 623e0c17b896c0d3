# Exercise file: write your code where the functions raise NotImplementedError.
# (Generated from solutions/attention.py by `python solutions/make_exercises.py`; graded by tests/grading/.)
"""Exercises 4-6, attention and the Transformer block (notebook 2): attention_weights, attention,
block_forward.

Every token emits a query, a key and a value; token i's output is the average of all values weighted by
softmax_j(q_i . k_j / sqrt(d)). A pre-norm Transformer block adds attention and an MLP to the residual
stream: x + Attn(LN(x)), then x + MLP(LN(x)).

Notation: B batch, N tokens, D width, h heads, d = D / h head width.

You compute these from the WEIGHTS of a module (a ``minijepa.vit.Attention`` / ``Block`` in the notebook,
a stand-in with the same attributes in the grader): calling ``attn(x)`` or ``block(x)`` is not the exercise
(the grader's stand-ins have no forward).

Check your work in the notebook or from a terminal:
    MINIJEPA_SUBMISSION=exercises python -m pytest tests/grading/test_attention.py -k attention_weights
"""

from __future__ import annotations

import math

import torch


def attention_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention weights.

    q, k: (B, h, N, d) -> weights (B, h, N, N), where row i holds softmax_j(q_i . k_j / sqrt(d)),
    so every row sums to 1. d is the HEAD width (the last axis), not the model width.

    Hints: ``k.transpose(-2, -1)`` and ``@`` give all the dot products at once; use ``softmax(dim=-1)``,
    which stays finite for large logits (a hand-written exp(...) / sum would overflow).
    """
    raise NotImplementedError("exercise 'attention_weights' is not implemented yet")


def attention(x: torch.Tensor, attn) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head self-attention with the weights of ``attn``: x (B, N, D) -> (out (B, N, D), weights).

    ``attn`` has three attributes (like ``minijepa.vit.Attention``):
      - ``attn.qkv``: an ``nn.Linear(D, 3 * D)``; the last axis of ``attn.qkv(x)`` is laid out as
        (three, heads, d): first all of q (head 0, then head 1, ...), then k, then v;
      - ``attn.num_heads``: h;
      - ``attn.proj``: an ``nn.Linear(D, D)`` applied to the heads' outputs, concatenated head by head.
    Return the output (B, N, D) and the attention weights (B, h, N, N) from your ``attention_weights``.

    Hints: ``qkv.reshape(B, N, 3, h, d).permute(2, 0, 3, 1, 4)`` gives (3, B, h, N, d); after
    ``weights @ v`` (B, h, N, d), move the head axis back next to d and merge them into D.
    """
    raise NotImplementedError("exercise 'attention' is not implemented yet")


def block_forward(x: torch.Tensor, block) -> torch.Tensor:
    """One pre-norm Transformer block with the weights of ``block``: x (B, N, D) -> (B, N, D).

        x = x + Attention(LayerNorm1(x))
        x = x + MLP(LayerNorm2(x))

    ``block`` has (like ``minijepa.vit.Block``): ``block.norm1`` and ``block.norm2`` (``nn.LayerNorm``, call
    them), ``block.attn`` (attention weights: use your :func:`attention`), and ``block.mlp`` (callable:
    Linear, GELU, Linear). Ignore stochastic depth (drop path): this is the evaluation-mode forward.
    """
    raise NotImplementedError("exercise 'block_forward' is not implemented yet")

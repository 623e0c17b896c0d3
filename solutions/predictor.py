"""Exercise 10, the predictor's forward pass (notebook 4): predictor_forward.

The predictor is a narrow ViT. It projects the context encoder's tokens to its own width d and adds their
positions; for every target patch it appends a mask token (one learned vector shared by all targets) plus
that patch's position. Each target block is predicted separately, with the context repeated once per
block, so blocks cannot see each other's mask tokens. After the Transformer blocks, the outputs at the
mask tokens are normalised and projected back to the encoder width: those are the predictions.

Check your work in the notebook or from a terminal:
    MINIJEPA_SUBMISSION=exercises python -m pytest tests/grading/test_predictor.py
"""

from __future__ import annotations

import torch


def predictor_forward(
    predictor, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor
) -> torch.Tensor:
    """Predict the target blocks' representations from the context.

    context (B, K, D) context encoder tokens, context_idx (B, K) their patch indices,
    target_idx (B, M, T) the patch indices of M target blocks -> predictions (B, M, T, D).

    ``predictor`` has the weights of a ``minijepa.predictor.Predictor`` (width d):
      - ``predictor.embed``: Linear D -> d;  ``predictor.pos_embed``: (1, N, d) sin-cos positions;
      - ``predictor.mask_token``: (1, 1, d), the learned mask token;
      - ``predictor.blocks``: the Transformer blocks, apply them in order with ``x = block(x)``;
      - ``predictor.norm`` (LayerNorm d) and ``predictor.proj`` (Linear d -> D).
    Do not call ``predictor(...)`` itself: that is what you are writing.

    Steps:
      1. x = embed(context) + the positions of the context patches            (B, K, d)
      2. repeat x once per target block, image-major: row b * M + m is image b, block m   (B*M, K, d)
      3. queries = mask_token + the positions of each target block's patches  (B*M, T, d)
      4. concatenate [x, queries] along the token axis, apply the blocks       (B*M, K+T, d)
      5. keep the last T tokens, apply norm then proj, reshape                 (B, M, T, D)

    Hints: gathering positions is masking by index (your ``gather_tokens`` from exercises/masks.py, which
    you may import with ``from .masks import gather_tokens``, or ``torch.gather``);
    ``x.repeat_interleave(M, dim=0)`` repeats image-major.
    """
    ### BEGIN SOLUTION
    B, K, _ = context.shape
    _, M, T = target_idx.shape
    d = predictor.pos_embed.shape[-1]
    pos = predictor.pos_embed.expand(B, -1, -1)  # (B, N, d)

    def gather(tokens: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:  # (B, N, d), (B, L) -> (B, L, d)
        return torch.gather(tokens, 1, idx.long().unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))

    x = predictor.embed(context) + gather(pos, context_idx)  # (B, K, d)
    x = x.repeat_interleave(M, dim=0)  # (B*M, K, d): the context, once per target block
    queries = predictor.mask_token + gather(pos, target_idx.reshape(B, M * T))  # (B, M*T, d)
    queries = queries.reshape(B * M, T, d)  # (B*M, T, d)
    x = torch.cat([x, queries], dim=1)  # (B*M, K+T, d)
    for block in predictor.blocks:
        x = block(x)  # (B*M, K+T, d)
    x = predictor.proj(predictor.norm(x[:, K:]))  # (B*M, T, D)
    return x.reshape(B, M, T, x.shape[-1])  # (B, M, T, D)
    ### END SOLUTION

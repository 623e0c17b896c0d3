# %% [markdown]
# # 04 · The predictor: mask tokens and positions
#
# The predictor turns "what the context encoder saw" plus "where the targets are" into guesses of the
# target representations. It is a ViT too, but a narrow one. Package module: `minijepa/predictor.py`.
#
# **Learning goals.** After this notebook you can
# 1. say what goes into the predictor (context tokens with their positions, and one mask token per target
#    patch) and what comes out, with the shape at every step;
# 2. explain why each target block is predicted separately, and check that blocks cannot see each other;
# 3. show that a mask token carries nothing but its position;
# 4. count parameters and FLOPs to see why the predictor is narrow and cheap.

# %%
# <<SETUP>>

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from minijepa import Predictor, vit_tiny
from minijepa.data import ShapesDataset, normalize
from minijepa.masks import MultiBlockMasks, gather_tokens
from minijepa.vit import Block

# <<STYLE>>

# %%
# <<EXERCISES>>

# %% [markdown]
# ## 1. Inputs and outputs
#
# We set up a small I-JEPA on the course's images: 64-pixel images, 8-pixel patches (an 8 x 8 grid, N =
# 64), a ViT-Tiny context encoder of width D = 192, and a predictor of width d = 96. Letters: B images, K
# context patches, M target blocks, T patches per block.

# %%
torch.manual_seed(0)
data = ShapesDataset(num_images=8, image_size=64, seed=0)
images = normalize(data.images.float() / 255)  # (B, 3, 64, 64)
encoder = vit_tiny(patch_size=8, image_size=64, depth=2).eval()
predictor = Predictor(encoder.grid, encoder.embed_dim, predictor_dim=96, depth=2, num_heads=3).eval()
masks = MultiBlockMasks(encoder.grid, seed=0).sample(len(images), torch.Generator().manual_seed(0))
with torch.no_grad():
    context = encoder(images, keep=masks.context)  # (B, K, D)
B, K, D = context.shape
M, T = masks.targets.shape[1:]
print(f"B={B} images, K={K} context tokens of width D={D}, M={M} target blocks of T={T} patches")

# %% [markdown]
# ## 2. The forward pass, step by step
#
# 1. **Context in.** Project the context tokens to the predictor width (a linear layer D -> d) and add the
#    sin-cos positions of their patches (the predictor has its own table, of width d). The encoder already
#    added positions, but at width D and before twelve (here two) layers of mixing; adding them again is
#    cheap and makes them explicit.
# 2. **One copy per block.** Repeat the context M times, image-major (row b·M + m is image b, block m).
# 3. **Mask tokens.** For every target patch, a query token = one learned vector shared by *all* targets
#    (`mask_token`) + the position of that patch. The mask token says "predict here"; the position says
#    where "here" is.
# 4. **Transformer.** Concatenate context and queries, (B·M, K + T, d), and apply the blocks: the queries
#    read the context through attention.
# 5. **Out.** Keep the last T tokens, LayerNorm, project d -> D, and reshape to (B, M, T, D).
#
# Step 5 throws the context tokens' outputs away. `Predictor.forward` therefore asks its last block for the
# mask tokens only, `block(h, last=T)`: the context tokens still serve as keys and values, but their own
# queries, output projection and MLP are skipped (same numbers, 3-5 % fewer FLOPs per training step; see
# `benchmarks/README.md`). Below, by hand, we run every block in full, and compare.

# %%
trace = [("context tokens (B, K, D)", context.shape)]
with torch.no_grad():
    pos = predictor.pos_embed.expand(B, -1, -1)  # (B, N, d)
    x = predictor.embed(context) + gather_tokens(pos, masks.context)  # 1. (B, K, d)
    trace.append(("1. projected + positions (B, K, d)", x.shape))
    x = x.repeat_interleave(M, dim=0)  # 2. (B*M, K, d)
    trace.append(("2. one copy per block (B*M, K, d)", x.shape))
    queries = predictor.mask_token + gather_tokens(pos, masks.targets)  # 3. (B, M, T, d)
    queries = queries.reshape(B * M, T, -1)  # (B*M, T, d)
    trace.append(("3. mask tokens + positions (B*M, T, d)", queries.shape))
    h = torch.cat([x, queries], dim=1)  # 4. (B*M, K+T, d)
    for block in predictor.blocks:
        h = block(h)
    trace.append(("4. through the blocks (B*M, K+T, d)", h.shape))
    by_hand = predictor.proj(predictor.norm(h[:, K:])).reshape(B, M, T, D)  # 5. (B, M, T, D)
    trace.append(("5. predictions (B, M, T, D)", by_hand.shape))
    expected = predictor(context, masks.context, masks.targets)

for name, shape in trace:
    print(f"{name:42s} {tuple(shape)}")
assert trace[3][1] == (B * M, T, predictor.predictor_dim) and trace[4][1] == (B * M, K + T, predictor.predictor_dim)
torch.testing.assert_close(by_hand, expected, rtol=1e-5, atol=1e-5)
print("by hand == Predictor.forward")

# %% [markdown]
# **Your turn:** `predictor_forward(predictor, context, context_idx, target_idx)` in
# `exercises/predictor.py`.

# %%
predictor_forward = student_or_reference(
    "predictor", "predictor_forward", lambda p, *args: p(*args),
    check=lambda f: torch.testing.assert_close(f(predictor, context, masks.context, masks.targets), expected,
                                               rtol=1e-5, atol=1e-5),
)
with torch.no_grad():
    predictions = predictor_forward(predictor, context, masks.context, masks.targets)
assert predictions.shape == (B, M, T, D)

# %% [markdown]
# ## 3. What the mask tokens know
#
# Before the first block, every query is the *same* learned vector plus a position: remove the positions
# and nothing distinguishes them. So whatever differs between the predictions of two target patches comes
# from (a) where they are and (b) what the context says around there. Two checks:
#
# * move a target block by one column and its predictions change, although its context is the same;
# * change one block's position and the predictions of the *other* blocks do not move at all, because
#   each block is predicted in its own sequence (the context is copied M times). Blocks cannot help each
#   other, or copy each other's answers.

# %%
with torch.no_grad():
    q = predictor.mask_token + gather_tokens(pos, masks.targets)  # (B, M, T, d)
    q_without_pos = q - gather_tokens(pos, masks.targets)
torch.testing.assert_close(q_without_pos, predictor.mask_token.expand_as(q_without_pos))  # all identical

# a copy of the masks where block 0 of every image moves one column (left or right, staying inside the grid)
moved = masks.targets.clone()
cols = moved[:, 0] % 8
shift = torch.where(cols.max(dim=1, keepdim=True).values < 7, 1, -1)  # (B, 1)
moved[:, 0] += shift
with torch.no_grad():
    after = predictor(context, masks.context, moved)
change = (after - predictions).abs().amax(dim=(0, 2, 3))  # (M,) largest change per block
print("largest change of the predictions per block:", change.numpy().round(4))
assert change[0] > 1e-3  # the moved block's predictions changed
assert torch.all(change[1:] == 0)  # the other blocks did not move at all

fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(M), change.numpy(), color=["tab:red"] + ["tab:gray"] * (M - 1), label="moved block in red")
ax.set_xlabel("target block m")
ax.set_ylabel("max |change| of predictions")
ax.set_title("Moving block 0 by one patch changes only block 0")
ax.legend()
plt.show()


# %% [markdown]
# ## 4. Why narrow? Parameters and FLOPs
#
# The predictor's task is easier than the encoder's: it fills in a few blocks of one image from tokens
# that are already rich. Keeping it small also keeps the semantic work in the encoder, which is what we
# keep after training. The paper pairs a ViT-H/14 encoder (32 blocks, width 1280) with a predictor of 12
# blocks and width 384.
#
# A block on n tokens of width D (MLP ratio 4) costs, in multiply-adds, 3nD² (q, k, v) + nD² (output
# projection) + 8nD² (MLP) + 2n²D (scores and weighted sum): **12nD² + 2n²D**, so 24nD² + 4n²D FLOPs.
# We check the formula with PyTorch's FLOP counter on one block (explicit attention, so the counter sees
# the matrix products), then apply it to one ViT-H/14 training image. (A multiply-add counts as 2 FLOPs
# here; tables that quote "FLOPs" of ViTs often count multiply-adds, half these numbers.)

# %%
def block_flops(n, width):
    return 24 * n * width ** 2 + 4 * n ** 2 * width


for n, width in ((50, 64), (100, 192)):
    blk = Block(width, num_heads=4)
    with FlopCounterMode(display=False) as counter:
        blk(torch.randn(1, n, width), return_attention=True)
    print(f"block n={n:3d} width={width:3d}: counter {counter.get_total_flops():>11,d}, formula {block_flops(n, width):>11,d}")
    assert counter.get_total_flops() == block_flops(n, width)

# %%
N, Dh, Lh = 256, 1280, 32  # ViT-H/14 at 224 px
d, Lp = 384, 12  # the paper's predictor
Kh, Th, Mh = round(0.25 * N), round(0.175 * N), 4  # about a quarter of the patches as context; 4 blocks of ~45
per_image = {  # forward FLOPs per image, in GFLOPs
    "target encoder\n(all 256 patches)": Lh * block_flops(N, Dh) / 1e9,
    "context encoder\n(~64 context patches)": Lh * block_flops(Kh, Dh) / 1e9,
    "predictor\n(4 x (64 + 45) tokens)": (Mh * Lp * block_flops(Kh + Th, d) + 2 * 2 * Mh * (Kh + Th) * Dh * d) / 1e9,
}
params = {
    "encoder (ViT-H/14)": Lh * 12 * Dh ** 2 / 1e6,
    "predictor (12 x 384)": (Lp * 12 * d ** 2 + 2 * Dh * d) / 1e6,
}
for name, value in per_image.items():
    print(f"{name.replace(chr(10), ' '):45s} {value:7.1f} GFLOPs per image (forward)")
for name, value in params.items():
    print(f"{name:45s} {value:7.0f} M parameters (weights of the linear layers)")

widths = np.array([128, 192, 256, 384, 512, 768, 1024, 1280])
encoders = Lh * (block_flops(N, Dh) + block_flops(Kh, Dh))
predictor_cost = Mh * Lp * block_flops(Kh + Th, widths) + 4 * Mh * (Kh + Th) * Dh * widths
share = predictor_cost / (encoders + predictor_cost)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
bars = axes[0].bar(list(per_image), list(per_image.values()), color=["tab:orange", "tab:blue", "tab:green"],
                   label="forward pass, one 224 px image")
axes[0].bar_label(bars, fmt="%.0f")
axes[0].set_ylabel("GFLOPs")
axes[0].set_title("Where the compute goes (ViT-H/14 + 12 x 384 predictor)")
axes[0].tick_params(axis="x", labelsize=8)
axes[0].legend(fontsize=8)
axes[1].plot(widths, 100 * np.array(share), "o-", label="predictor, depth 12")
axes[1].axvline(384, color="k", ls=":", label="the paper's width")
axes[1].set_xlabel("predictor width d")
axes[1].set_ylabel("% of forward FLOPs per image")
axes[1].set_title("A predictor as wide as the encoder would dominate")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

assert params["predictor (12 x 384)"] < 0.05 * params["encoder (ViT-H/14)"]
assert per_image["predictor\n(4 x (64 + 45) tokens)"] < 0.25 * sum(per_image.values())

# %% [markdown]
# Note the other saving: the context encoder runs on about a quarter of the patches, so it costs about a
# quarter of a full forward pass, and the target encoder's pass needs no backward. The predictor sees
# more tokens (the context is repeated for every block), but at width 384 each token is cheap.
#
# ## Summary
#
# * Predictor input: context tokens (projected to width d, plus their positions) and, for each target
#   patch, the shared mask token plus that patch's position. Output: (B, M, T, D), one vector per target
#   patch at the encoder's width.
# * The context is repeated once per target block: M independent sequences of K + T tokens, so blocks
#   cannot see each other.
# * Mask tokens differ only by position; the prediction of a patch comes from where it is and from the
#   context.
# * The paper's predictor (12 x 384) has about 3 % of ViT-H's parameters and costs a fraction of the
#   encoders' FLOPs.
#
# ## Self-check
#
# 1. With B = 64 images, M = 4 blocks of T = 9 patches and K = 20 context tokens, how many sequences, of
#    what length, go through the predictor's blocks?
# 2. Why does the predictor add position embeddings to the *context* tokens, which already went through
#    an encoder that had positions?
# 3. What would go wrong if each target patch had its own learned mask token instead of a shared one
#    plus a position?
# 4. If all M blocks were put into one sequence (K + M·T tokens), what could the predictor do that it
#    should not?
#
# <details><summary>Answers</summary>
#
# 1. B·M = 256 sequences of K + T = 29 tokens (width d).
# 2. The encoder's positions are mixed into its tokens over many layers and live at width D; the
#    predictor works at width d and needs an exact, explicit "where" to compare context and target
#    positions.
# 3. The predictor could store an average answer for each position (a prior that ignores the image), it
#    would need N extra vectors and would be tied to one grid size. A shared token plus a fixed position
#    code carries only "where", so "what" has to come from the context.
# 4. Target patches of overlapping or nearby blocks could attend to each other; nothing useful, but it
#    changes the task (and its cost grows with (M·T)²). Separate sequences keep each block's prediction a
#    function of the context only.
#
# </details>
#
# **Exercise:** `exercises/predictor.py` (`predictor_forward`).

# %% [markdown]
# # 01 · Images as sequences: patches, patch embedding, positions
#
# A Transformer reads a *sequence* of vectors. This notebook turns an image into one, the way the
# Vision Transformer (ViT) does and I-JEPA inherits. Package module: `minijepa/patches.py`.
#
# **Learning goals.** After this notebook you can
# 1. cut an image into a sequence of flattened patches and put it back together (`patchify`, `unpatchify`),
#    and say how the number of patches depends on the patch size;
# 2. explain why the patch embedding, a convolution with stride equal to its kernel, is one linear map
#    applied to every patch;
# 3. explain why a Transformer needs position embeddings, build the fixed 2-D sin-cos table that I-JEPA uses,
#    and read its similarity map.

# %%
# <<SETUP>>

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from minijepa import patches as reference
from minijepa.data import ShapesDataset, load_photo
from minijepa.patches import PatchEmbed, sincos_1d
from minijepa.vit import Block

# <<STYLE>>

# %%
# <<EXERCISES>>

# %% [markdown]
# ## 1. Cutting an image into patches
#
# A ViT with patch size P cuts an image of H·P x W·P pixels into an H x W grid of P x P patches, reads them
# row by row (raster order), and flattens each one into a vector of P·P·C numbers. A batch of images
# (B, C, H·P, W·P) becomes a batch of sequences (B, N, P·P·C) with N = H·W. The patch vector lists the
# pixels row by row with the three colour values of a pixel next to each other ("channels last"), the
# layout of the MAE and I-JEPA code.
#
# **Your turn:** implement `patchify` and `unpatchify` in `exercises/patches.py`. The next cell uses yours
# if it passes a quick check, and otherwise continues with the package's version.

# %%
x_check = torch.randn(2, 3, 32, 48)
patchify = student_or_reference(
    "patches", "patchify", reference.patchify,
    check=lambda f: torch.testing.assert_close(f(x_check, 8), reference.patchify(x_check, 8)),
)
unpatchify = student_or_reference(
    "patches", "unpatchify", reference.unpatchify,
    check=lambda f: torch.testing.assert_close(f(reference.patchify(x_check, 8), 8, (4, 6)), x_check),
)

# %% [markdown]
# Let us cut a real photograph (scikit-image's astronaut, 224 x 224) into 16 x 16 patches, the setting of
# ViT-B/16 and of most of the paper.

# %%
P = 16
photo = load_photo("astronaut", image_size=224)  # (3, 224, 224) in [0, 1]
patches = patchify(photo[None], P)  # (1, N, P*P*3)
H = W = 224 // P
print("image", tuple(photo.shape), "-> patches", tuple(patches.shape))
assert patches.shape == (1, H * W, P * P * 3) == (1, 196, 768)

# patch k is the crop at grid row k // W, column k % W, flattened with channels last
k = 3 * W + 5
row, col = divmod(k, W)
crop = photo[:, row * P:(row + 1) * P, col * P:(col + 1) * P]  # (3, P, P)
assert torch.equal(patches[0, k], crop.permute(1, 2, 0).reshape(-1))

# unpatchify is the exact inverse
assert torch.equal(unpatchify(patches, P, (H, W)), photo[None])

# %%
gap = 3
mosaic = np.ones((H * (P + gap), W * (P + gap), 3))
for n in range(H * W):
    r, c = divmod(n, W)
    mosaic[r * (P + gap):r * (P + gap) + P, c * (P + gap):c * (P + gap) + P] = \
        patches[0, n].reshape(P, P, 3).numpy()
strip = np.concatenate([np.pad(patches[0, n].reshape(P, P, 3).numpy(), ((0, 0), (0, 2), (0, 0)), constant_values=1)
                        for n in range(24, 44)], axis=1)

fig = plt.figure(figsize=(12, 4.6))
ax = fig.add_subplot(1, 3, 1)
ax.imshow(photo.permute(1, 2, 0))
ax.set_title("the image (224 x 224)")
ax.set_xlabel("x (pixels)")
ax.set_ylabel("y (pixels)")
ax = fig.add_subplot(1, 3, 2)
ax.imshow(mosaic)
ax.set_title(f"cut into {H} x {W} = {H * W} patches of {P} x {P}")
ax.set_xlabel("grid column")
ax.set_ylabel("grid row")
ax.set_xticks([(c + 0.5) * (P + gap) for c in range(0, W, 3)], range(0, W, 3))
ax.set_yticks([(r + 0.5) * (P + gap) for r in range(0, H, 3)], range(0, H, 3))
ax = fig.add_subplot(1, 3, 3)
vector = patches[0, k].reshape(P * P, 3).numpy()  # (P*P, 3): pixel by pixel, R G B
for c, colour in enumerate(["red", "green", "blue"]):
    ax.plot(vector[:48, c], color=colour, label=f"{colour} channel")
ax.set_title(f"patch {k} (row {row}, column {col}) as a vector: first 48 pixels", fontsize=9)
ax.set_xlabel("pixel index inside the patch (row by row)")
ax.set_ylabel("value")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

fig, ax = plt.subplots(figsize=(12, 1.4))
ax.imshow(strip)
ax.set_title("the sequence the Transformer reads: patches 24-43 (row 1 from column 10, then row 2 ...)")
ax.set_xticks([(i + 0.5) * (P + 2) for i in range(20)], range(24, 44), fontsize=7)
ax.set_xlabel("position in the sequence")
ax.set_yticks([])
plt.show()

# %% [markdown]
# ### How long is the sequence?
#
# N = (image side / P)², and self-attention compares every token with every other one, so its cost grows
# with N². Halving the patch size multiplies N by 4 and the attention cost by 16. That is why ViT-H/14
# (N = 256 at 224 pixels) is much more expensive than ViT-H/16 (N = 196), and why this course trains at
# 64 pixels with 8-pixel patches (N = 64) on a CPU.

# %%
sizes = [4, 7, 8, 14, 16, 28, 32]
N = np.array([(224 // p) ** 2 for p in sizes])
assert N[sizes.index(14)] == 256 and N[sizes.index(16)] == 196
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(sizes, N, "o-", label="N, tokens per image")
ax.plot(sizes, N.astype(float) ** 2, "s--", label="N², attention scores per head")
ax.set_yscale("log")
ax.set_xlabel("patch size P (pixels), image 224 x 224")
ax.set_ylabel("count (log scale)")
ax.set_title("Smaller patches: longer sequences, quadratically more attention")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. The patch embedding is one linear map per patch
#
# Each flattened patch (P·P·C numbers) is mapped to the model width D by the same linear layer:
# `token = W · patch + b` with W of shape (D, P·P·C). The package writes it as a convolution with
# kernel size P and stride P (`minijepa.patches.PatchEmbed`), which is the same computation: a stride
# equal to the kernel means the kernel visits each patch exactly once, without overlap, and a convolution
# at one position is a dot product between the kernel and the pixels under it. Let us check that the two
# agree, using your `patchify` for the linear version.

# %%
torch.manual_seed(0)
embed = PatchEmbed(patch_size=P, in_chans=3, embed_dim=192)
images = photo[None]  # (1, 3, 224, 224)
tokens_conv = embed(images)  # (1, N, D): the convolution, then (B, D, H, W) -> (B, N, D)

# the conv kernel (D, C, P, P) rearranged into the (p1 p2 c) order of a patch vector: (D, P*P*C)
weight = embed.proj.weight.permute(0, 2, 3, 1).reshape(192, -1)
tokens_linear = patchify(images, P) @ weight.T + embed.proj.bias  # (1, N, D)
print("conv:", tuple(tokens_conv.shape), " linear:", tuple(tokens_linear.shape))
torch.testing.assert_close(tokens_conv, tokens_linear, rtol=1e-4, atol=1e-5)
assert sum(p.numel() for p in embed.parameters()) == P * P * 3 * 192 + 192

# %% [markdown]
# ## 3. Why positions are needed
#
# Attention treats its input as a *set*: shuffle the tokens and every output is shuffled the same way,
# but otherwise unchanged (it is permutation-*equivariant*). Without extra information, a ViT could not
# tell a photograph from the same patches in random order. The check below shuffles the tokens entering
# a Transformer block.

# %%
torch.manual_seed(0)
block = Block(dim=192, num_heads=3).eval()
perm = torch.randperm(tokens_conv.shape[1])
with torch.no_grad():
    out = block(tokens_conv)
    out_shuffled = block(tokens_conv[:, perm])
torch.testing.assert_close(out_shuffled, out[:, perm], rtol=1e-4, atol=1e-5)
print("shuffling the input only shuffles the output: the block has no idea where a patch was")

# %% [markdown]
# The cure is to add a **position embedding** to each token before the first block. The ViT paper learns
# one vector per position; I-JEPA (following MAE) uses a *fixed* table of sines and cosines, which has no
# parameters and can be recomputed for any grid size.
#
# **In one dimension:** position x gets the vector [sin(x·w_0) ... sin(x·w_{d-1}), cos(x·w_0) ...
# cos(x·w_{d-1})], with frequencies w_k = 10000^(-k/d) falling geometrically from 1 to about 1/10000. Fast
# channels tell neighbours apart; slow channels vary smoothly over the whole image. A useful property: the
# dot product of two such vectors is Σ_k cos((x - x')·w_k), which depends only on the *offset* x - x'.
#
# **In two dimensions:** use half of the D channels for the column and half for the row:
# pe(row y, column x) = [1-D embedding of x (D/2 channels), 1-D embedding of y (D/2 channels)]. The column
# comes first, as in the official code, so that checkpoints load unchanged.
#
# **Your turn:** implement `sincos_2d` in `exercises/patches.py`.

# %%
sincos_2d = student_or_reference(
    "patches", "sincos_2d", reference.sincos_2d,
    check=lambda f: torch.testing.assert_close(f(64, (3, 5)), reference.sincos_2d(64, (3, 5))),
)

# %%
D = 192
pe = sincos_2d(D, (H, W))  # (N, D)
print("position table", tuple(pe.shape))
assert pe.shape == (H * W, D) and pe.abs().max() <= 1
torch.testing.assert_close(pe, reference.sincos_2d(D, (H, W)))
assert len(torch.unique(pe, dim=0)) == H * W  # every position gets its own vector
# first half: the column only; second half: the row only
assert torch.equal(pe[0 * W + 4, :D // 2], pe[7 * W + 4, :D // 2])  # same column, different rows
assert torch.equal(pe[3 * W + 0, D // 2:], pe[3 * W + 9, D // 2:])  # same row, different columns
# each half has the same norm everywhere (sin² + cos² = 1 per frequency)
torch.testing.assert_close(pe.norm(dim=1), torch.full((H * W,), (D / 2) ** 0.5))
# the dot product of two 1-D embeddings depends only on the offset
e = sincos_1d(96, torch.arange(20))
torch.testing.assert_close(e[2] @ e[5], e[10] @ e[13])

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), gridspec_kw=dict(width_ratios=[3, 2]))
im = axes[0].imshow(pe.T.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
axes[0].axhline(D // 2 - 0.5, color="k", lw=1)
axes[0].set_title("2-D sin-cos table: channels 0-95 encode the column, 96-191 the row")
axes[0].set_xlabel("patch index n (raster order)")
axes[0].set_ylabel("channel")
fig.colorbar(im, ax=axes[0])
xs = torch.linspace(0, 13, 200)
curve = sincos_1d(96, xs)  # (200, 96)
for k in (0, 8, 16, 32):
    axes[1].plot(xs, curve[:, k], label=f"sin, channel {k} (w = {10000 ** (-k / 48):.3f})")
axes[1].set_title("a few 1-D channels along one axis")
axes[1].set_xlabel("column x")
axes[1].set_ylabel("value")
axes[1].legend(fontsize=7, loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### The position similarity map
#
# The ViT paper shows, for every patch, the cosine similarity between its position embedding and the
# embeddings of all other patches. Each small square below belongs to one query patch of the 14 x 14 grid
# (every second row and column, to keep the squares readable); inside it, the 14 x 14 pixels show how
# similar the other positions are to it. A bright spot sits on the patch
# itself and fades with distance along rows and columns: the table encodes the 2-D layout without ever
# being trained.

# %%
cos = F.normalize(pe, dim=1) @ F.normalize(pe, dim=1).T  # (N, N)
tiles = cos.reshape(H, W, H, W).numpy()  # [query row, query col, other row, other col]
shown = range(0, H, 2)  # every second row and column of queries, so that each tile is large enough to read
pad = 2
mosaic = np.full((len(shown) * (H + pad), len(shown) * (W + pad)), np.nan)
for i, r in enumerate(shown):
    for j, c in enumerate(shown):
        mosaic[i * (H + pad):i * (H + pad) + H, j * (W + pad):j * (W + pad) + W] = tiles[r, c]
dist = torch.cdist(*(2 * [torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1)
                        .reshape(-1, 2).float()]))  # (N, N) grid distances

fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), gridspec_kw=dict(width_ratios=[3, 2]))
im = axes[0].imshow(mosaic, cmap="viridis")
axes[0].set_title("cosine similarity of a position embedding with all others\n(one tile per query patch, every second row and column)", fontsize=9)
axes[0].set_xticks([(j + 0.5) * (W + pad) for j in range(len(shown))], shown)
axes[0].set_yticks([(i + 0.5) * (H + pad) for i in range(len(shown))], shown)
axes[0].set_xlabel("input patch column")
axes[0].set_ylabel("input patch row")
fig.colorbar(im, ax=axes[0], fraction=0.046, label="cosine similarity")
axes[1].scatter(dist.flatten(), cos.flatten(), s=2, alpha=0.2, label="one pair of patches")
d_int = dist.round()
means = [cos[d_int == d].mean() for d in range(int(d_int.max()) + 1)]
axes[1].plot(range(len(means)), means, "r-", lw=2, label="mean per distance")
axes[1].set_xlabel("distance between the patches (in patches)")
axes[1].set_ylabel("cosine similarity")
axes[1].set_title("nearby positions have similar embeddings")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

assert torch.equal(cos.argmax(dim=1), torch.arange(H * W))  # every position is most similar to itself
assert all(a > b for a, b in zip(means[:6], means[1:7]))  # similarity falls with distance nearby
assert np.corrcoef(dist.flatten(), cos.flatten())[0, 1] < -0.5

# %% [markdown]
# Because the table is a formula, a ViT built for one grid can be fed another: the package's encoder
# recomputes positions for a new image size on the fly (`VisionTransformer.position_embeddings`).

# %%
wide = sincos_2d(D, (7, 10))
assert wide.shape == (70, D) and torch.equal(wide[:10, :D // 2], pe[:10, :D // 2])  # same columns, same codes

# %% [markdown]
# ## 4. The course's own images
#
# The notebooks that train (06-08) use the package's embedded dataset, `ShapesDataset`: coloured shapes on
# textured backgrounds, drawn in code (nothing to download), with labels for probing. At 64 pixels with
# 8-pixel patches an image is a sequence of 8 x 8 = 64 tokens of 8·8·3 = 192 numbers.

# %%
shapes = ShapesDataset(num_images=6, image_size=64, seed=0)
batch = torch.stack([shapes[i][0] for i in range(6)])  # (6, 3, 64, 64)
seq = patchify(batch, 8)
assert seq.shape == (6, 64, 192)
assert torch.equal(unpatchify(seq, 8, 8), batch)

fig, axes = plt.subplots(1, 6, figsize=(12, 2.4))
for i, ax in enumerate(axes):
    ax.imshow(batch[i].permute(1, 2, 0))
    for k in range(1, 8):
        ax.axhline(8 * k - 0.5, color="w", lw=0.4)
        ax.axvline(8 * k - 0.5, color="w", lw=0.4)
    ax.set_title(f"{shapes.classes[shapes[i][1]]}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].set_ylabel("8 x 8 patches")
fig.suptitle("ShapesDataset at 64 px with the 8-pixel patch grid (title: the shape all its objects share)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Summary
#
# * `patchify`: (B, C, H·P, W·P) -> (B, N, P·P·C), raster order, channels last; `unpatchify` inverts it
#   exactly. N = H·W grows as 1/P², attention cost as 1/P⁴.
# * The patch embedding is one linear map (D x P·P·C) applied to every patch; a convolution with
#   kernel = stride = P computes exactly that.
# * Attention is permutation-equivariant, so tokens carry a position embedding. I-JEPA's is a fixed 2-D
#   sin-cos table: half the channels encode the column, half the row; nearby positions get similar vectors.
#
# ## Self-check
#
# 1. An image of 96 x 160 pixels with patch size 16: what is the shape of `patchify`'s output for a batch
#    of 8?
# 2. Why is a convolution with kernel 16 and stride 16 a linear map per patch, but one with kernel 16 and
#    stride 8 is not "one linear map per patch" any more?
# 3. If you removed the position embeddings, what could a ViT still learn about an image, and what not?
# 4. In the similarity map, why does the bright spot of a patch spread along its row and its column (a
#    cross) rather than as a round blob?
#
# <details><summary>Answers</summary>
#
# 1. The grid is 6 x 10 = 60 patches of 16·16·3 = 768 numbers: (8, 60, 768).
# 2. With stride 8 the kernel visits overlapping windows: every pixel belongs to up to four windows, so the
#    tokens are no longer a partition of the image into patches (it is still linear, but not per patch).
# 3. It could still learn *what* is in the image (a bag of patches: colours, textures, parts), but not
#    *where* anything is or how parts are arranged, so shape and layout would be lost.
# 4. Half of the channels depend only on the column and half only on the row. Two patches in the same row
#    share the whole row half, so they are fairly similar even when their columns are far apart.
#
# </details>
#
# **Exercises:** `exercises/patches.py` (`patchify`, `unpatchify`, `sincos_2d`). Re-run the cells that
# call `student_or_reference` after editing the file; the graded tests are in `tests/grading/`.

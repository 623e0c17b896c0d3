# %% [markdown]
# # 02 · Attention and the Vision Transformer
#
# The context encoder, the target encoder and the predictor of I-JEPA are all Vision Transformers. This
# notebook builds one from its smallest piece, checks it against an independent implementation (timm),
# and looks at what its attention does on a photograph. Package module: `minijepa/vit.py`; the attention
# explorer lives in `minijepa/explorers.py`.
#
# **Learning goals.** After this notebook you can
# 1. compute scaled dot-product attention by hand and say why it is scaled by 1/√d;
# 2. split attention into heads, and assemble a pre-norm Transformer block and a ViT encoder;
# 3. explain the ViT initialisation used by I-JEPA (and a quirk of the official code);
# 4. verify an implementation against timm by copying weights;
# 5. read attention maps and the *mean attention distance* of a head, and use the attention explorer.

# %%
# <<SETUP>>

# %%
import math
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from minijepa.data import load_photos, normalize
from minijepa.explorers import AttentionExplorer, attention_explorer, patch_distances, plot_attention_view
from minijepa.patches import patchify, sincos_2d
from minijepa.vit import VIT_PRESETS, Attention, Block, vit_tiny

# <<STYLE>>

# %%
# <<EXERCISES>>

# %% [markdown]
# ## 1. Attention from first principles
#
# Every token emits three vectors: a **query** (what am I looking for?), a **key** (what do I contain?) and
# a **value** (what do I pass on?). Token i compares its query with every key, turns the scores into
# weights with a softmax, and outputs the weighted average of the values:
#
# $$a_{ij} = \mathrm{softmax}_j\Big(\frac{q_i \cdot k_j}{\sqrt d}\Big), \qquad \mathrm{out}_i = \sum_j a_{ij}\, v_j .$$
#
# Why divide by √d? If the entries of q and k are roughly independent with unit variance, q·k is a sum of
# d such products and its standard deviation grows like √d. Without the division, wide heads would have
# huge scores, the softmax would put all its weight on one token, and gradients through the other tokens
# would vanish. The experiment below measures this.

# %%
g = torch.Generator().manual_seed(0)
widths = [4, 16, 64, 256, 1024]
spread, entropy_raw, entropy_scaled = [], [], []
for d in widths:
    q, k = torch.randn(256, d, generator=g), torch.randn(64, d, generator=g)
    scores = q @ k.T  # (256, 64)
    spread.append(scores.std().item())
    for scale, store in ((1.0, entropy_raw), (d ** -0.5, entropy_scaled)):
        p = (scores * scale).softmax(-1)
        store.append(-(p * p.clamp_min(1e-12).log()).sum(-1).mean().item())

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(widths, spread, "o-", label="std of q·k")
axes[0].plot(widths, np.sqrt(widths), "k--", label="√d")
axes[0].set_xscale("log"); axes[0].set_yscale("log")
axes[0].set_xlabel("head width d"); axes[0].set_ylabel("standard deviation")
axes[0].set_title("dot products grow like √d"); axes[0].legend()
axes[1].plot(widths, entropy_raw, "o-", label="softmax(q·k)")
axes[1].plot(widths, entropy_scaled, "s-", label="softmax(q·k / √d)")
axes[1].axhline(math.log(64), color="k", ls=":", label="uniform over 64 keys")
axes[1].set_xscale("log"); axes[1].set_xlabel("head width d"); axes[1].set_ylabel("entropy of a row (nats)")
axes[1].set_title("without scaling, attention collapses onto one key"); axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
assert abs(spread[-1] / math.sqrt(1024) - 1) < 0.1
assert entropy_scaled[-1] > 3 * entropy_raw[-1]


# %% [markdown]
# **Your turn:** implement `attention_weights(q, k)` in `exercises/attention.py`: queries and keys of shape
# (B, h, N, d) give weights (B, h, N, N) whose rows sum to 1. The reference used when yours is not ready
# is a small trick worth understanding: attention applied to the *identity matrix* as values returns the
# weights themselves.

# %%
def reference_attention_weights(q, k):
    """softmax(q k^T / sqrt(d)) via PyTorch's fused attention with one-hot values (out = weights @ I)."""
    identity = torch.eye(k.shape[-2], dtype=q.dtype).expand(*k.shape[:-1], k.shape[-2])  # (B, h, N, N)
    return F.scaled_dot_product_attention(q, k, identity)


reference_attention_weights.__module__ = "torch's scaled_dot_product_attention"


q_check, k_check = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8)
attention_weights = student_or_reference(
    "attention", "attention_weights", reference_attention_weights,
    check=lambda f: torch.testing.assert_close(f(q_check, k_check), reference_attention_weights(q_check, k_check)),
)

# %% [markdown]
# A tiny example makes the mechanics visible: five tokens whose keys point in different directions, and a
# query equal to the key of token 3, scaled up. The query finds "its" token.

# %%
k = torch.eye(5, 8)[None, None] * 3.0  # (1, 1, 5, 8): token j's key is 3 * e_j
q = k.clone()
q[0, 0, 0] = 2.0 * k[0, 0, 3]  # token 0 asks for what token 3 contains
weights = attention_weights(q, k)  # (1, 1, 5, 5)
print(weights[0, 0].numpy().round(3))
torch.testing.assert_close(weights.sum(-1), torch.ones(1, 1, 5))
assert weights[0, 0, 0].argmax() == 3

fig, ax = plt.subplots(figsize=(4, 3.3))
im = ax.imshow(weights[0, 0], cmap="viridis", vmin=0, vmax=1)
ax.set_xlabel("key token j"); ax.set_ylabel("query token i")
ax.set_title("attention weights: row i sums to 1")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# ## 2. Several heads
#
# A single softmax can only focus one way at a time. **Multi-head** attention splits the width D into h
# heads of width d = D/h; each head has its own slice of the query, key and value projections, attends
# independently, and the heads' outputs are concatenated and mixed by an output projection. In the
# package one linear layer `qkv` (D -> 3D) computes all queries, keys and values at once, laid out as
# (three, heads, d).
#
# **Your turn:** implement `attention(x, attn)` in `exercises/attention.py` from the weights of a
# `minijepa.vit.Attention` module (`attn.qkv`, `attn.num_heads`, `attn.proj`), using your
# `attention_weights`. The check compares with the module's own explicit path.

# %%
torch.manual_seed(0)
attn = Attention(dim=48, num_heads=4)
x_check = torch.randn(2, 7, 48)
expected_out, expected_weights = attn(x_check, return_attention=True)


def check_attention(f):
    out, w = f(x_check, attn)
    torch.testing.assert_close(out, expected_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w, expected_weights, rtol=1e-5, atol=1e-5)


def reference_attention(x, attn):
    return attn(x, return_attention=True)


reference_attention.__module__ = "minijepa.vit.Attention"
attention = student_or_reference("attention", "attention", reference_attention, check=check_attention)

# %%
out, w = attention(x_check, attn)
assert out.shape == (2, 7, 48) and w.shape == (2, 4, 7, 7)
# the fused kernel (what training uses) computes the same thing without ever storing the weights
torch.testing.assert_close(attn(x_check), out, rtol=1e-5, atol=1e-5)
print("explicit multi-head attention == fused scaled_dot_product_attention")

# %% [markdown]
# ## 3. The Transformer block and the ViT
#
# A ViT block is *pre-norm*: each sub-layer reads a layer-normalised copy of the residual stream and adds
# its result back:
#
#     x = x + Attention(LayerNorm(x))
#     x = x + MLP(LayerNorm(x))          # MLP: Linear(D, 4D), GELU, Linear(4D, D)
#
# The residual stream is never normalised itself, so information (and gradient) passes straight through
# a deep stack. **Your turn:** `block_forward(x, block)` in `exercises/attention.py`.

# %%
torch.manual_seed(0)
block = Block(dim=48, num_heads=4).eval()


def reference_block_forward(x, block):
    return block(x)


reference_block_forward.__module__ = "minijepa.vit.Block"
block_forward = student_or_reference(
    "attention", "block_forward", reference_block_forward,
    check=lambda f: torch.testing.assert_close(f(x_check, block), block(x_check), rtol=1e-5, atol=1e-5),
)
assert block_forward(x_check, block).shape == x_check.shape

# %% [markdown]
# The encoder stacks it all: patch embedding + fixed sin-cos positions (notebook 01), L blocks, and a final
# LayerNorm. I-JEPA's encoder has no class token and no classification head: its output is one vector per
# patch, (B, N, D), and an image-level feature is the average of the patch vectors. Let us check the block
# by block forward against the module, and count parameters against the ViT paper's table.

# %%
torch.manual_seed(0)
vit = vit_tiny(patch_size=16, image_size=224, depth=4).eval()
photos = load_photos(image_size=224)
images = normalize(torch.stack(list(photos.values())[:2]))  # (2, 3, 224, 224)
with torch.no_grad():
    h = vit.patch_embed(images) + vit.pos_embed  # (B, N, D)
    for blk in vit.blocks:
        h = block_forward(h, blk)
    h = vit.norm(h)
    torch.testing.assert_close(h, vit(images), rtol=1e-4, atol=1e-4)
print("our block-by-block forward matches VisionTransformer.forward:", tuple(h.shape))


def vit_params(depth, embed_dim, mlp_ratio=4.0, patch=16, **_):
    """Parameters of a ViT encoder (no class token or head): patch embedding, blocks, final norm."""
    hidden = round(mlp_ratio * embed_dim)
    per_block = (embed_dim + 1) * 3 * embed_dim + (embed_dim + 1) * embed_dim  # qkv and proj (+ biases)
    per_block += (embed_dim + 1) * hidden + (hidden + 1) * embed_dim + 4 * embed_dim  # MLP, 2 LayerNorms
    return patch * patch * 3 * embed_dim + embed_dim + depth * per_block + 2 * embed_dim


paper = {"tiny": 5.7e6, "small": 22e6, "base": 86e6, "large": 307e6, "huge": 632e6, "giant": 1e9}  # "~1B"
print(f"{'preset':8s}{'layers':>7s}{'width':>7s}{'heads':>7s}{'params':>10s}{'paper':>9s}")
for name, p in VIT_PRESETS.items():
    count = vit_params(**p)
    print(f"{name:8s}{p['depth']:7d}{p['embed_dim']:7d}{p['num_heads']:7d}{count / 1e6:9.1f}M{paper[name] / 1e6:8.1f}M")
    assert abs(count - paper[name]) / paper[name] < 0.05
assert vit_params(**VIT_PRESETS["tiny"]) == sum(p.numel() for p in vit_tiny(image_size=224).parameters())


# %% [markdown]
# ## 4. Initialisation, and a quirk of the official code
#
# All weights start from a truncated normal with standard deviation 0.02. Then the two layers of each block
# that *write into* the residual stream (the attention output projection `attn.proj` and the MLP's second
# layer `mlp.fc2`) are divided by √(2·l) in block l = 1 ... L. Deeper blocks therefore start with smaller
# updates, and the residual stream does not blow up as blocks are stacked.
#
# **A quirk worth knowing.** The official I-JEPA code applies this rescaling when it builds a ViT, but the
# helper that then sets up the models for training (`init_model`) *re-initialises every linear layer* of
# the encoder and the predictor with the plain truncated normal, after the depth-scaled init. That
# overwrites, and so undoes, the rescaling: in the released code all blocks start with the same output
# scale. Ours keeps the rescaling (`minijepa.vit.init_vit_weights`, checked in `tests/test_vit.py`). The
# cell below compares the two: the standard deviation of the output projections, and
# how much each block changes the residual stream of real photographs at initialisation (a 12-layer ViT-Tiny).

# %%
def official_order(model):
    """What the official code ends up with: every linear layer re-drawn after the rescaling."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
            nn.init.zeros_(m.bias)
    return model


@torch.no_grad()
def relative_updates(model, images):
    """||block(x) - x|| / ||x|| for each block: how much each block moves the residual stream."""
    x, sizes = model.embed(images), []
    for blk in model.blocks:
        y = blk(x)
        sizes.append(((y - x).norm() / x.norm()).item())
        x = y
    return sizes


torch.manual_seed(0)
ours = vit_tiny(patch_size=16, image_size=224)
torch.manual_seed(0)
official = official_order(vit_tiny(patch_size=16, image_size=224))
layers = np.arange(1, 13)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for model, label, style in ((ours, "ours: rescaling kept", "o-"), (official, "official: rescaling undone", "s--")):
    axes[0].plot(layers, [b.attn.proj.weight.std().item() for b in model.blocks], style, label=label)
    axes[1].plot(layers, relative_updates(model, images), style, label=label)
axes[0].plot(layers, 0.02 * 0.8796 / np.sqrt(2 * layers), "k:", label="0.02 · 0.88 / √(2l)")
axes[0].set_xlabel("block l"); axes[0].set_ylabel("std of attn.proj weights")
axes[0].set_title("output projections at initialisation"); axes[0].legend(fontsize=8)
axes[1].set_xlabel("block l"); axes[1].set_ylabel("||block(x) - x|| / ||x||")
axes[1].set_title("how much each block changes the residual stream"); axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

stds = [b.attn.proj.weight.std().item() for b in ours.blocks]
assert stds[-1] < 0.4 * stds[0]  # ours: block 12 starts ~3.5x smaller than block 1
assert abs(official.blocks[-1].attn.proj.weight.std().item() / official.blocks[0].attn.proj.weight.std().item() - 1) < 0.1

# %% [markdown]
# ## 5. Parity with timm
#
# "It runs" is not "it is right". timm's `VisionTransformer` is a widely used, independent
# implementation. Configured the same way (no class token, no head, LayerNorm eps 1e-6) it has exactly our
# parameter names, so we can copy our weights into it and compare outputs. (timm stores the position table
# as a parameter, so we copy our fixed table in as well.)

# %%
import timm.models.vision_transformer as timm_vit

torch.manual_seed(0)
ours = vit_tiny(patch_size=16, image_size=224).eval()
cfg = ours.config
theirs = timm_vit.VisionTransformer(
    img_size=cfg.image_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim, depth=cfg.depth,
    num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=True, class_token=False, global_pool="",
    num_classes=0, norm_layer=partial(nn.LayerNorm, eps=cfg.norm_eps),
).eval()
state = dict(ours.state_dict(), pos_embed=ours.pos_embed.clone())
missing, unexpected = theirs.load_state_dict(state, strict=True)
with torch.no_grad():
    a, b = ours(images), theirs.forward_features(images)
print("max |ours - timm| =", (a - b).abs().max().item())
torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

# %% [markdown]
# ## 6. Attention maps on a photograph
#
# `VisionTransformer.forward_with_attention` returns every layer's attention weights, (B, h, N, N). Row i
# of a head's matrix, reshaped to the 14 x 14 grid, shows where patch i looks. A summary number per head
# is its **mean attention distance** (the ViT paper's Figure 7): for each query, the attention-weighted
# average distance to the patches it attends to, averaged over queries. A head that looks only at
# itself scores 0; a head that attends uniformly scores the average distance between two patches.
#
# Here is a randomly initialised ViT-Tiny on the cat photograph.

# %%
torch.manual_seed(0)
vit = vit_tiny(patch_size=16, image_size=224).eval()  # 12 layers, 3 heads, random init
cat = photos["chelsea"]
explorer = AttentionExplorer.from_encoder(vit, cat)  # runs the model once, keeps all maps
query = (5, 3)  # the cat's left eye

fig, axes = plt.subplots(3, 4, figsize=(11, 8))
for row, layer in enumerate((0, 5, 11)):
    for head in range(3):
        view = explorer.update(layer=layer, head=head, query=query)
        im = axes[row, head].imshow(view.attention, cmap="viridis")
        axes[row, head].plot(query[1], query[0], "rs", mfc="none", ms=9, label="query")
        axes[row, head].set_title(f"layer {layer}, head {head}", fontsize=9)
        fig.colorbar(im, ax=axes[row, head], fraction=0.046)
    axes[row, 3].imshow(explorer.update(layer=layer, head="mean", query=query).overlay)
    axes[row, 3].set_title(f"layer {layer}, mean of heads, on the photo", fontsize=9)
    axes[row, 0].set_ylabel("key patch row")
for ax in axes[-1]:
    ax.set_xlabel("key patch column")
axes[0, 0].legend(fontsize=7, loc="lower left")
fig.suptitle(f"Random-init ViT-Tiny: attention of query patch {query} (note the tiny colour ranges)", fontsize=11)
fig.tight_layout()
plt.show()

uniform = patch_distances(explorer.grid, 16).mean().item()
distances = explorer.mean_distances()  # (layers, heads), in pixels
print(f"mean attention distances: {distances.min():.1f} to {distances.max():.1f} px; uniform attention: {uniform:.1f} px")
assert np.allclose(distances, uniform, rtol=0.02)  # at initialisation every head looks everywhere equally

# %% [markdown]
# At initialisation the weights are small (std 0.02), so queries and keys are short, their dot products
# are close to zero, and every softmax is almost uniform: each head just averages the whole image, in every layer. The structure of a
# *trained* ViT (heads in early layers that look at their neighbourhood, others that look far away, and
# heads that follow objects) is learned. Notebook 07 repeats these plots on the encoder you train.
#
# To see what structured attention looks like, and what the mean attention distance measures, we can build
# two kinds of heads by hand, with your `attention_weights`:
#
# * a **positional head**: queries = keys = β · (2-D sin-cos position). Scores are high between nearby
#   positions, so the head looks at its neighbourhood; a larger β makes it more local.
# * a **content head**: queries = keys = β · (standardised pixels of the patch). Scores are high between
#   patches that *look alike* (and, since dot products grow with length, towards high-contrast patches),
#   wherever they are: from one eye of the cat, it finds the other eye.

# %%
P, grid = 16, (14, 14)
pos = sincos_2d(64, grid)[None, None]  # (1, 1, N, 64)
pix = patchify(cat[None], P)[0]  # (N, 768)
pix = ((pix - pix.mean(0)) / (pix.std(0) + 1e-6))[None, None]  # (1, 1, N, 768)
heads = {
    "positional, β = 2": attention_weights(2 * pos, 2 * pos)[0, 0],
    "positional, β = 3": attention_weights(3 * pos, 3 * pos)[0, 0],
    "content, β = 0.5": attention_weights(0.5 * pix, 0.5 * pix)[0, 0],
}
q_index = query[0] * 14 + query[1]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.3))
toy = AttentionExplorer([torch.stack(list(heads.values()))], grid, P, cat)
for i, (name, a) in enumerate(heads.items()):
    view = toy.update(layer=0, head=i, query=query)
    axes[i].imshow(view.overlay)
    axes[i].add_patch(plt.Rectangle((query[1] * P - 0.5, query[0] * P - 0.5), P, P, fill=False, ec="yellow", lw=1.2))
    axes[i].set_title(f"{name}\nmean distance {view.mean_distance:.0f} px", fontsize=9)
    axes[i].set_xlabel("x (pixels)")
axes[0].set_ylabel("y (pixels)")
hand = toy.mean_distances()[0]
axes[3].bar(range(3), hand, color=["tab:blue", "tab:cyan", "tab:orange"], label="hand-made heads")
axes[3].axhline(uniform, color="k", ls="--", label="uniform (random-init ViT)")
axes[3].set_xticks(range(3), ["pos β=2", "pos β=3", "content"], fontsize=8)
axes[3].set_ylabel("mean attention distance (px)")
axes[3].set_title("how far each head looks")
axes[3].legend(fontsize=7)
fig.suptitle(f"Hand-made heads, query = the cat's eye {query} (yellow square; bright = attended)", fontsize=11)
fig.tight_layout()
plt.show()

assert hand[1] < hand[0] < uniform  # positional heads are local, sharper with larger β
assert hand[2] > hand[0]  # the content head looks further away, wherever similar patches are

# %% [markdown]
# ## 7. The attention explorer
#
# `minijepa.explorers.AttentionExplorer` keeps all the maps of one forward pass; `update(layer, head,
# query)` returns the attention row of a query patch (and the overlay, the entropy of the row and the
# head's mean attention distance). `attention_explorer(explorer)` wraps it in sliders: pick a layer, a
# head (or their mean) and a query patch, and the figure follows. First a static view (so that this page
# shows something without a running kernel), then the interactive one.
#
# Set `USE_TRAINED = True` to explore the course's trained encoder instead (the CPU run's target encoder,
# shipped in `assets/cpu_default/`, 64-pixel images, 8 x 8 patches; notebook 07 studies it), or point
# `ENCODER_FILE` at your own export after `make train` and `python tools/export_course_encoder.py`.
#
# Without a kernel (on the course website, `make site`), the same explorer runs as a standalone page with
# precomputed frames: <a href="../explorers/attention/index.html">the attention explorer page</a>.

# %%
USE_TRAINED = False
if USE_TRAINED:
    from minijepa.data import load_photo
    from minijepa.pretrained import load_encoder

    ENCODER_FILE = ROOT / "assets" / "cpu_default" / "target_encoder.pt"
    encoder, _ = load_encoder(ENCODER_FILE)
    explorer = AttentionExplorer.from_encoder(encoder, load_photo("chelsea", encoder.config.image_size[0]))

view = explorer.update(layer=explorer.num_layers - 1, head="mean", query=(explorer.grid[0] // 2, explorer.grid[1] // 3))
fig = plot_attention_view(view, explorer)
plt.show()
assert abs(view.attention.sum() - 1) < 1e-4

# %%
attention_explorer(explorer)

# %% [markdown]
# ## Summary
#
# * Attention: weights softmax(q·k/√d), output the weighted average of values; the 1/√d keeps the
#   softmax from saturating as heads get wider.
# * Multi-head attention runs h independent attentions of width D/h and mixes them with a projection;
#   a pre-norm block adds attention and an MLP to the residual stream; the ViT encoder is patch embedding +
#   positions + L blocks + LayerNorm, output (B, N, D).
# * Init: truncated normal 0.02, output projections of block l divided by √(2l). The official I-JEPA code
#   re-initialises every linear layer afterwards, undoing that rescaling; ours keeps it.
# * Our ViT matches timm to 1e-5 with copied weights.
# * At initialisation attention is uniform (mean distance = average patch distance); structure is learned.
#
# ## Self-check
#
# 1. Two heads of width 64 vs one head of width 128, same D = 128: which has more parameters?
# 2. Why does the package compute attention with `F.scaled_dot_product_attention` in training, but
#    explicitly when you ask for the weights?
# 3. A head's mean attention distance is 0. What does its attention matrix look like?
# 4. What does dividing `mlp.fc2` of block l by √(2l) achieve, and why does the order of the init steps
#    in the official code matter?
#
# <details><summary>Answers</summary>
#
# 1. The same: the q, k, v and output projections are D x D matrices either way; heads only split them.
# 2. The fused kernel never stores the N x N weights (less memory, faster), but then they cannot be
#    returned; plotting needs them, so that path computes softmax(q k^T/√d) explicitly.
# 3. The identity: every query puts all its weight on its own patch.
# 4. Each block's contribution to the residual stream starts smaller the deeper it is, so the stream's
#    variance stays controlled as blocks are stacked. If every linear layer is re-initialised afterwards,
#    the division is overwritten and all blocks start at the same scale.
#
# </details>
#
# **Exercises:** `exercises/attention.py` (`attention_weights`, `attention`, `block_forward`).

import pytest
import torch

from minijepa.ijepa import IJEPA
from minijepa.losses import ijepa_loss
from minijepa.masks import MaskBatch
from minijepa.predictor import Predictor
from minijepa.vit import VisionTransformer, vit_tiny


def small_model(**kw):
    torch.manual_seed(0)
    enc = vit_tiny(patch_size=8, image_size=32, depth=2, embed_dim=48, num_heads=3)
    out_dim = kw.pop("out_dim", None)
    pred = Predictor(enc.grid, enc.embed_dim, predictor_dim=24, depth=2, num_heads=3, out_dim=out_dim)
    return IJEPA(enc, pred, **kw)


def fixed_masks(b=2):
    ctx = torch.tensor([[0, 1, 2, 4, 5, 6, 8]]).expand(b, 7)
    tgt = torch.tensor([[[10, 11], [14, 15]]]).expand(b, 2, 2)
    return MaskBatch(ctx, tgt, (4, 4))


def test_forward_shapes_and_layernormed_targets():
    model = small_model()
    out = model(torch.randn(2, 3, 32, 32), fixed_masks())
    assert out.predictions.shape == out.targets.shape == (2, 2, 2, 48)
    assert out.context.shape == (2, 7, 48)
    # Targets are layer-normed over channels: zero mean, unit variance per token.
    torch.testing.assert_close(out.targets.mean(-1), torch.zeros(2, 2, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.targets.var(-1, unbiased=False), torch.ones(2, 2, 2), atol=1e-3, rtol=0)


def test_gradients_reach_context_encoder_and_predictor_only():
    model = small_model()
    out = model(torch.randn(2, 3, 32, 32), fixed_masks())
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.predictor.parameters())
    ctx_grads = [p.grad for p in model.context_encoder.parameters()]
    assert all(g is not None for g in ctx_grads) and sum(g.abs().sum() for g in ctx_grads) > 0
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert not out.targets.requires_grad


def test_loss_zero_when_predictions_equal_targets():
    t = torch.randn(2, 4, 3, 8)
    assert ijepa_loss(t, t.clone()).item() == 0.0
    assert ijepa_loss(t, t.clone(), "smooth_l1").item() == 0.0
    assert ijepa_loss(t, t + 1).item() == pytest.approx(1.0)
    assert ijepa_loss(t, t + 1, "smooth_l1").item() == pytest.approx(0.5)


def test_ema_step_moves_target_towards_online():
    model = small_model()
    opt = torch.optim.SGD(model.context_encoder.parameters(), lr=1.0)
    model(torch.randn(2, 3, 32, 32), fixed_masks()).loss.backward()
    opt.step()
    w_online = model.context_encoder.blocks[0].attn.qkv.weight
    w_target = model.target_encoder.blocks[0].attn.qkv.weight
    gap = (w_online - w_target).abs().sum()
    model.update_target(0.5)
    torch.testing.assert_close((w_online - w_target).abs().sum(), gap / 2)


def test_pixel_targets():
    model = small_model(target="pixels", out_dim=8 * 8 * 3)
    out = model(torch.randn(2, 3, 32, 32), fixed_masks())
    assert out.targets.shape == (2, 2, 2, 192)
    with pytest.raises(ValueError, match="out_dim=48"):
        small_model(target="pixels")


def test_bad_arguments():
    with pytest.raises(ValueError, match="loss='l3'"):
        small_model(loss="l3")
    model = small_model()
    bad = MaskBatch(torch.tensor([[0, 99]]), torch.tensor([[[1, 2]]]), (4, 4))
    with pytest.raises(IndexError, match="out of range"):
        model(torch.randn(1, 3, 32, 32), bad)


def test_context_use_tells_a_predictor_that_ignores_the_image_from_one_that_uses_it():
    from minijepa.masks import MultiBlockMasks
    from minijepa.report import context_use

    torch.manual_seed(0)
    encoder = VisionTransformer(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3)
    model = IJEPA(encoder, Predictor(encoder.grid, 48, predictor_dim=24, depth=1, num_heads=3))
    images = torch.randn(16, 3, 32, 32)
    sampler = MultiBlockMasks(encoder.grid, min_keep=4)
    with torch.no_grad():  # a predictor whose input projection is zero cannot see the context
        model.predictor.embed.weight.zero_()
        model.predictor.embed.bias.zero_()
    blind = context_use(model, images, sampler)
    assert blind["ratio"] == pytest.approx(1.0, abs=1e-6)
    with torch.no_grad():  # an identity-like map: predictions now depend on the context tokens
        model.predictor.embed.weight.copy_(torch.eye(24, 48) * 5)
    seeing = context_use(model, images, sampler)
    assert seeing["own_context_loss"] != pytest.approx(seeing["other_context_loss"])
    assert model.training  # restored


def test_variance_covariance_extension():
    from minijepa.losses import variance_covariance

    g = torch.Generator().manual_seed(0)
    # Collapsed embeddings (every image the same vector): the variance hinge is at its maximum (~1).
    same = torch.randn(1, 16, generator=g).expand(64, 16)
    assert variance_covariance(same).item() == pytest.approx(1 - 1e-2, abs=1e-3)
    # Independent channels of unit spread: both terms near 0; correlated channels: the covariance term grows.
    white = torch.randn(4096, 16, generator=g)
    assert variance_covariance(white).item() < 0.05
    corr = white.clone()
    corr[:, 1] = corr[:, 0]
    # Written out by hand: cov(0, 1) = var(0) ~ 1 counted twice in the off-diagonal sum, / D.
    assert variance_covariance(corr).item() == pytest.approx(2 / 16, abs=0.03)
    with pytest.raises(ValueError, match="B >= 2"):
        variance_covariance(torch.randn(1, 16))
    # In the model: off by default (loss unchanged), on adds a positive term with a gradient to the encoder.
    images, masks = torch.randn(4, 3, 32, 32, generator=g), fixed_masks(4)
    base = small_model()(images, masks).loss
    model = small_model(vc_weight=1.0)
    out = model(images, masks)
    assert out.loss.item() > base.item()
    torch.testing.assert_close(out.loss - base, variance_covariance(out.context.mean(dim=1)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="vc_weight"):
        small_model(vc_weight=-1.0)


def test_sigreg_extension():
    """SIGReg (losses.sigreg) against the Epps-Pulley statistic's closed form, and in the model."""
    import math

    from minijepa.losses import random_directions, sigreg

    g = torch.Generator().manual_seed(0)
    # One direction, written out: B * integral over the real line of |phi_B(t) - e^{-t^2/2}|^2 e^{-t^2/2} dt,
    # with integral e^{-a t^2 / 2} cos(b t) dt = sqrt(2 pi / a) e^{-b^2 / (2a)}, term by term.
    x = 0.7 * torch.randn(40, generator=g, dtype=torch.float64)
    B = x.numel()
    closed = B * (
        math.sqrt(2 * math.pi) * torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2).mean()
        - 2 * math.sqrt(math.pi) * torch.exp(-x**2 / 4).mean()
        + math.sqrt(2 * math.pi / 3)
    )
    ours = sigreg(x[:, None].float(), torch.ones(1, 1))
    assert ours.item() == pytest.approx(closed.item(), rel=2e-3)
    # Standard Gaussian embeddings score low; collapsed ones (all equal) and badly scaled ones score high.
    directions = random_directions(32, 64, torch.Generator().manual_seed(1))
    assert torch.allclose(directions.norm(dim=0), torch.ones(64))
    white = torch.randn(512, 32, generator=g)
    collapsed = torch.randn(1, 32, generator=g).expand(512, 32)
    # Under N(0, 1) the statistic's mean is the integral of (1 - e^{-t^2}) e^{-t^2/2}: sqrt(2 pi) - sqrt(2 pi / 3).
    assert sigreg(white, directions).item() == pytest.approx(math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3), rel=0.3)
    assert sigreg(collapsed, directions).item() > 50 * sigreg(white, directions).item()
    assert sigreg(3 * white, directions).item() > 10 * sigreg(white, directions).item()
    with pytest.raises(ValueError, match="directions"):
        sigreg(white, torch.ones(5, 3))
    # In the model: new directions at each training step, from a counter that is part of the state (resume).
    images, masks = torch.randn(4, 3, 32, 32, generator=g), fixed_masks(4)
    base = small_model()(images, masks).loss
    model = small_model(sigreg_weight=0.5)
    assert "sigreg_step" in model.state_dict() and "sigreg_step" not in small_model().state_dict()
    first = model(images, masks)
    expected = sigreg(first.context.mean(dim=1), random_directions(first.context.shape[-1], 64, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(first.loss - base, 0.5 * expected, rtol=1e-5, atol=1e-6)
    second = model(images, masks)  # the next step draws other directions
    assert int(model.sigreg_step) == 2 and second.loss.item() != pytest.approx(first.loss.item(), rel=1e-7)
    model.eval()
    with torch.no_grad():
        model(images, masks)
    assert int(model.sigreg_step) == 2  # evaluation does not advance it
    with pytest.raises(ValueError, match="sigreg_weight"):
        small_model(sigreg_weight=-1.0)

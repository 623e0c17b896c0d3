import pytest
import torch

from minijepa.predictor import Predictor


def make(depth=2, **kw):
    torch.manual_seed(0)
    return Predictor(grid=(4, 4), embed_dim=32, predictor_dim=16, depth=depth, num_heads=2, **kw).eval()


def test_shapes_for_several_target_blocks():
    pred = make()
    ctx = torch.randn(3, 5, 32)
    ctx_idx = torch.arange(5).expand(3, 5)
    tgt_idx = torch.arange(8, 16).reshape(1, 2, 4).expand(3, 2, 4)
    out = pred(ctx, ctx_idx, tgt_idx)
    assert out.shape == (3, 2, 4, 32)


def test_blocks_are_predicted_independently():
    """Block m's prediction depends on the context and its own positions only, not on the other blocks."""
    pred = make()
    ctx = torch.randn(1, 5, 32)
    ctx_idx = torch.tensor([[0, 1, 2, 3, 4]])
    a = torch.tensor([[[8, 9]]])
    b = torch.tensor([[[14, 15]]])
    both = pred(ctx, ctx_idx, torch.cat([a, b], dim=1))
    torch.testing.assert_close(both[:, 0], pred(ctx, ctx_idx, a)[:, 0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(both[:, 1], pred(ctx, ctx_idx, b)[:, 0], rtol=1e-5, atol=1e-6)


def test_prediction_depends_on_target_position_and_context():
    pred = make()
    ctx = torch.randn(1, 5, 32)
    ctx_idx = torch.arange(5)[None]
    p1 = pred(ctx, ctx_idx, torch.tensor([[[10]]]))
    p2 = pred(ctx, ctx_idx, torch.tensor([[[11]]]))
    p3 = pred(ctx + 1.0, ctx_idx, torch.tensor([[[10]]]))
    assert not torch.allclose(p1, p2) and not torch.allclose(p1, p3)


def test_mask_token_is_shared_and_learned():
    pred = make()
    assert pred.mask_token.shape == (1, 1, 16) and pred.mask_token.requires_grad
    out = pred(torch.randn(2, 3, 32), torch.arange(3).expand(2, 3), torch.arange(4, 8).reshape(1, 1, 4).expand(2, 1, 4))
    out.sum().backward()
    assert pred.mask_token.grad is not None and pred.mask_token.grad.abs().sum() > 0


def test_pixel_output_width_and_errors():
    pred = make(out_dim=48)
    out = pred(torch.randn(1, 3, 32), torch.arange(3)[None], torch.tensor([[[5, 6]]]))
    assert out.shape == (1, 1, 2, 48)
    with pytest.raises(ValueError, match="num_heads"):
        Predictor(grid=4, embed_dim=32, predictor_dim=18, num_heads=4)
    with pytest.raises(ValueError, match="disagree"):
        pred(torch.randn(1, 3, 32), torch.arange(4)[None], torch.tensor([[[5]]]))

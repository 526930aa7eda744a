"""Losses against hand-worked values, dense references and analytic gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from colorcli import losses
from colorcli.models import create_model, model_class

LN2, LN3 = math.log(2.0), math.log(3.0)


def test_rebalanced_ce_hand_value() -> None:
    # one pixel, Q = 3, logits log(1, 2, 3) -> softmax (1/6, 2/6, 3/6)
    # target: bin 0 with weight 0.25, bin 2 with weight 0.75 -> v = w[2] = 0.5
    # L = -0.5 * (0.25 * ln(1/6) + 0.75 * ln(1/2)) = 0.5 * (0.25 * 1.791759 + 0.75 * 0.693147)
    #   = 0.5 * 0.967800 = 0.483900
    logits = torch.log(torch.tensor([1.0, 2.0, 3.0])).view(1, 3, 1, 1)
    index = torch.tensor([0, 2]).view(1, 2, 1, 1)
    weight = torch.tensor([0.25, 0.75]).view(1, 2, 1, 1)
    w = torch.tensor([2.0, 1.0, 0.5])
    got = losses.rebalanced_cross_entropy(logits, index, weight, class_weights=w)
    assert got.item() == pytest.approx(0.483900, abs=1e-6)
    # without rebalancing v = 1: 0.967800
    got = losses.rebalanced_cross_entropy(logits, index, weight)
    assert got.item() == pytest.approx(0.967800, abs=1e-6)


def test_rebalanced_ce_mask_normalises_by_valid_pixels() -> None:
    # pixel 0 as above (0.967800 unweighted); pixel 1 one-hot on bin 1: -ln(2/6) = 1.098612;
    # masking pixel 1 leaves pixel 0 alone, divided by 1 valid pixel, not 2.
    logits = torch.log(torch.tensor([1.0, 2.0, 3.0])).view(1, 3, 1, 1).repeat(1, 1, 1, 2)
    index = torch.tensor([[0, 1], [2, 0]]).view(1, 2, 1, 2)
    weight = torch.tensor([[0.25, 1.0], [0.75, 0.0]]).view(1, 2, 1, 2)
    both = losses.rebalanced_cross_entropy(logits, index, weight)
    assert both.item() == pytest.approx((0.967800 + 1.098612) / 2, abs=1e-6)
    mask = torch.tensor([True, False]).view(1, 1, 1, 2)
    one = losses.rebalanced_cross_entropy(logits, index, weight, pixel_mask=mask)
    assert one.item() == pytest.approx(0.967800, abs=1e-6)
    none = losses.rebalanced_cross_entropy(logits, index, weight, pixel_mask=mask & False)
    assert none.item() == 0.0


def test_one_hot_uniform_weights_equals_torch_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 7, 3, 4)
    target = torch.randint(0, 7, (2, 3, 4))
    got = losses.rebalanced_cross_entropy(
        logits, target[:, None], torch.ones(2, 1, 3, 4), class_weights=torch.ones(7)
    )
    torch.testing.assert_close(got, F.cross_entropy(logits, target))


def test_gather_equals_dense_computation() -> None:
    torch.manual_seed(1)
    b, q, k, h, w = 2, 9, 4, 3, 5
    logits = torch.randn(b, q, h, w, requires_grad=True)
    index = torch.stack([torch.randperm(q)[:k] for _ in range(b * h * w)])
    index = index.view(b, h, w, k).permute(0, 3, 1, 2).contiguous()
    weight = torch.softmax(torch.randn(b, k, h, w), dim=1)
    cw = torch.rand(q) + 0.5
    mask = torch.rand(b, 1, h, w) > 0.3
    got = losses.rebalanced_cross_entropy(logits, index, weight, cw, mask)
    # dense reference: Z (B, Q, h, w), v = cw[argmax_q Z]
    z = torch.zeros(b, q, h, w).scatter_(1, index, weight)
    v = cw[z.argmax(dim=1, keepdim=True)]
    per = -(z * torch.log_softmax(logits, dim=1)).sum(1, keepdim=True) * v
    ref = (per * mask).sum() / mask.sum()
    torch.testing.assert_close(got, ref)
    (g1,) = torch.autograd.grad(got, logits)
    (g2,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g1, g2)


def test_l1_l2_masked() -> None:
    # pred - target on 2 channels x 2 pixels: [[1, -2], [3, 0]]; mask keeps pixel 0
    pred = torch.tensor([[1.0, -2.0], [3.0, 0.0]]).view(1, 2, 1, 2)
    target = torch.zeros_like(pred)
    mask = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    assert losses.l1_loss(pred, target).item() == pytest.approx((1 + 2 + 3 + 0) / 4)
    assert losses.l2_loss(pred, target).item() == pytest.approx((1 + 4 + 9 + 0) / 4)
    assert losses.l1_loss(pred, target, mask).item() == pytest.approx((1 + 3) / 2)
    assert losses.l2_loss(pred, target, mask).item() == pytest.approx((1 + 9) / 2)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values)


def test_vanilla_gan_losses() -> None:
    # logits 0: BCE = ln 2 for either target; D = 0.5 * (ln 2 + ln 2) = ln 2
    assert losses.gan_d_loss("vanilla", t(0.0), t(0.0)).item() == pytest.approx(LN2)
    # smoothing 0.9, real logit ln 3 (sigmoid 0.75): -(0.9 ln 0.75 + 0.1 ln 0.25) = 0.397543;
    # fake logit -ln 3 (sigmoid 0.25), target 0: -ln 0.75 = 0.287682; D = 0.5 * sum = 0.342613
    d = losses.gan_d_loss("vanilla", t(LN3), t(-LN3), label_smoothing=0.9)
    assert d.item() == pytest.approx(0.342613, abs=1e-6)
    # non-saturating G: -ln sigmoid(ln 3) = -ln 0.75 = 0.287682
    assert losses.gan_g_loss("vanilla", t(LN3)).item() == pytest.approx(0.287682, abs=1e-6)


def test_lsgan_hinge_wgan_ebgan_losses() -> None:
    # lsgan: E[(r-1)^2] = (0 + 0.25)/2 = 0.125; E[f^2] = (0 + 1)/2 = 0.5; D = 0.5 * 0.625
    assert losses.gan_d_loss("lsgan", t(1.0, 0.5), t(0.0, 1.0)).item() == pytest.approx(0.3125)
    assert losses.gan_g_loss("lsgan", t(0.0, 1.0)).item() == pytest.approx(0.5)  # (1 + 0)/2
    # lsgan with smoothing 0.9: E[(r-0.9)^2] = (0.01 + 0.16)/2 = 0.085; D = 0.5 * 0.585
    d = losses.gan_d_loss("lsgan", t(1.0, 0.5), t(0.0, 1.0), label_smoothing=0.9)
    assert d.item() == pytest.approx(0.2925)
    # hinge: relu(1-r) = (0, 0.5) -> 0.25; relu(1+f) = (0, 1) -> 0.5; D = 0.5 * 0.75
    assert losses.gan_d_loss("hinge", t(2.0, 0.5), t(-2.0, 0.0)).item() == pytest.approx(0.375)
    assert losses.gan_g_loss("hinge", t(-2.0, 0.0)).item() == pytest.approx(1.0)
    # wgan: E[f] - E[r] = -1 - 1.25
    d = losses.gan_d_loss("wgan-gp", t(2.0, 0.5), t(-2.0, 0.0), d_scale=1.0)
    assert d.item() == pytest.approx(-2.25)
    assert losses.gan_g_loss("wgan-gp", t(-2.0, 0.0)).item() == pytest.approx(1.0)
    # ebgan, m = 1: E[r] = 0.3; relu(1 - f) = (0.5, 0) -> 0.25; D = 0.5 * 0.55
    d = losses.gan_d_loss("ebgan", t(0.2, 0.4), t(0.5, 1.5), margin=1.0)
    assert d.item() == pytest.approx(0.275)
    assert losses.gan_g_loss("ebgan", t(0.5, 1.5)).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="label smoothing"):
        losses.gan_d_loss("hinge", t(0.0), t(0.0), label_smoothing=0.9)
    with pytest.raises(ValueError, match="vanilla, lsgan"):
        losses.gan_g_loss("dcgan", t(0.0))


def test_gradient_penalty_linear_critic() -> None:
    # D(L, ab) = sum(0.5 * ab) per sample: grad = 0.5 everywhere, over 2*2*2 = 8 values
    # ||grad|| = sqrt(8 * 0.25) = sqrt(2); penalty = 10 * (sqrt(2) - 1)^2 = 1.715729
    def critic(lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return (0.5 * ab).flatten(1).sum(1) + 0 * lum.sum()

    lum = torch.rand(3, 1, 2, 2) * 100
    gp = losses.gradient_penalty(critic, lum, torch.rand(3, 2, 2, 2), torch.rand(3, 2, 2, 2))
    assert gp.item() == pytest.approx(10 * (math.sqrt(2) - 1) ** 2, rel=1e-6)


def test_gradient_penalty_quadratic_critic_interpolates() -> None:
    # D = sum(ab^2): grad = 2x at x = eps*real + (1-eps)*fake
    real, fake = torch.rand(2, 2, 3, 3), torch.rand(2, 2, 3, 3)
    eps = torch.tensor([0.25, 0.75]).view(2, 1, 1, 1)
    c = torch.tensor(1.0, requires_grad=True)
    gp = losses.gradient_penalty(
        lambda lum, ab: c * ab.square().flatten(1).sum(1),
        None,
        real,
        fake,
        weight=1.0,
        eps=eps,  # type: ignore[arg-type]
    )
    x = eps * real + (1 - eps) * fake
    expected = ((2 * x).flatten(1).norm(dim=1) - 1).square().mean()
    torch.testing.assert_close(gp, expected)
    gp.backward()  # differentiable with respect to the critic's parameters
    assert c.grad is not None and c.grad.item() != 0


def test_r1_penalty_analytic() -> None:
    # linear D(x) = sum(0.5 x): ||grad||^2 = 8 * 0.25 = 2 per sample; R1 = gamma / 2 * 2 = gamma
    x = torch.rand(4, 2, 2, 2, requires_grad=True)
    scores = (0.5 * x).flatten(1).sum(1)
    assert losses.r1_penalty(scores, x, gamma=0.001).item() == pytest.approx(0.001)
    # quadratic D(x) = c * sum(x^2): grad = 2 c x; R1 = gamma/2 * mean_b 4 c^2 sum x_b^2
    # dR1/dc = gamma * 4 c * mean_b sum x_b^2
    c = torch.tensor(1.5, requires_grad=True)
    x = torch.rand(3, 2, 4, 4, requires_grad=True)
    r1 = losses.r1_penalty(c * x.square().flatten(1).sum(1), x, gamma=2.0)
    ssum = x.detach().square().flatten(1).sum(1).mean()
    torch.testing.assert_close(r1, 0.5 * 2.0 * 4 * 1.5**2 * ssum)
    r1.backward()
    assert c.grad is not None
    torch.testing.assert_close(c.grad, 2.0 * 4 * 1.5 * ssum)
    # two inputs: the squared norms add up
    lum = torch.rand(3, 1, 4, 4, requires_grad=True)
    ab = torch.rand(3, 2, 4, 4, requires_grad=True)
    s = (lum.flatten(1).sum(1) * 1.0) + (2.0 * ab).flatten(1).sum(1)
    # ||grad_L||^2 = 16, ||grad_ab||^2 = 32 * 4 = 128; R1 = 0.5 * 144 = 72
    assert losses.r1_penalty(s, (lum, ab), gamma=1.0).item() == pytest.approx(72.0)


def test_generator_loss() -> None:
    total = losses.generator_loss(1.0, t(0.7), 100.0, t(0.02), 0.0, None)
    assert total.item() == pytest.approx(0.7 + 2.0)
    total = losses.generator_loss(0.5, t(2.0), 10.0, t(0.1), 3.0, t(0.5))
    assert total.item() == pytest.approx(1.0 + 1.0 + 1.5)
    with pytest.raises(ValueError, match="lambda_l2"):
        losses.generator_loss(1.0, t(0.0), 0.0, None, 1.0, None)
    with pytest.raises(ValueError, match="every lambda"):
        losses.generator_loss(0.0, None, 0.0, None)


def test_patchgan_scores_feed_every_gan_loss() -> None:
    torch.manual_seed(0)
    lum = torch.rand(2, 1, 32, 32) * 100
    real, fake = torch.rand(2, 2, 32, 32) * 2 - 1, torch.rand(2, 2, 32, 32) * 2 - 1
    for kind in losses.GAN_KINDS:
        name = "ebgan-ae" if kind == "ebgan" else "patchgan"
        d = create_model(name, width=4, norm="none" if kind == "wgan-gp" else "batch")
        real_in = real.clone().requires_grad_(True)
        rs, fs = d(lum, real_in), d(lum, fake)
        loss = losses.gan_d_loss(kind, rs, fs) + losses.r1_penalty(rs, real_in, 0.1)
        if kind == "wgan-gp":
            loss = loss + losses.gradient_penalty(d, lum, real, fake)
        loss.backward()
        assert torch.isfinite(loss)
        assert all(p.grad is not None for p in d.parameters())
        assert torch.isfinite(losses.gan_g_loss(kind, d(lum, fake)))


def test_ablations_are_one_flag_apart() -> None:
    assert set(losses.ABLATIONS) == {"l2", "class", "full-soft", "full-onehot"}
    for spec in losses.ABLATIONS.values():
        kind = model_class(spec.arch).kind  # type: ignore[attr-defined]
        assert kind == ("regression" if spec.loss == "l2" else "classification")
    full_soft, full_onehot = losses.ABLATIONS["full-soft"], losses.ABLATIONS["full-onehot"]
    assert full_soft.rebalance and not losses.ABLATIONS["class"].rebalance
    assert (full_soft.encoding, full_onehot.encoding) == ("soft", "onehot")


def test_ce_on_encoded_targets_matches_dense_via_to_dense() -> None:
    # the whole target path: soft / one-hot encoding of real ab onto the 313 reference bins,
    # the sparse loss, and the dense -sum_q v Z log p computed from encode.to_dense
    from colorcli.color import encode
    from colorcli.color.bins import reference_bins

    torch.manual_seed(2)
    bins = reference_bins()
    ab = torch.rand(2, 2, 3, 4) * 120 - 60
    logits = torch.randn(2, 313, 3, 4)
    cw = torch.rand(313) + 0.5
    for index, weight in (encode.soft_encode(ab, bins), encode.one_hot_encode(ab, bins)):
        z = encode.to_dense(index, weight, 313)
        v = cw[z.argmax(dim=1, keepdim=True)]
        ref = (-(z * torch.log_softmax(logits, dim=1)).sum(1, keepdim=True) * v).mean()
        got = losses.rebalanced_cross_entropy(logits, index, weight, class_weights=cw)
        torch.testing.assert_close(got, ref)

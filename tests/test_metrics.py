"""Metrics against hand-worked examples, scikit-image and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from colorcli import metrics
from colorcli.color.bins import reference_bins


def _pixels(
    pairs: list[tuple[tuple[float, float], tuple[float, float]]],
) -> tuple[torch.Tensor, ...]:
    """(pred ab, true ab) per pixel -> two (1, 2, 1, N) tensors."""
    pred = torch.tensor([p for p, _ in pairs], dtype=torch.float64).T.reshape(1, 2, 1, -1)
    true = torch.tensor([t for _, t in pairs], dtype=torch.float64).T.reshape(1, 2, 1, -1)
    return pred, true


def _nearest_one(ab: np.ndarray, bins: np.ndarray) -> int:
    """Brute-force nearest bin of one ab pair."""
    return int(np.argmin([(ab[0] - a) ** 2 + (ab[1] - b) ** 2 for a, b in bins]))


def _nearest(ab: torch.Tensor, bins: np.ndarray) -> torch.Tensor:
    """Brute-force nearest bin (B, H, W) of ab (B, 2, H, W) (test-only reference)."""
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy()
    idx = [_nearest_one(x, bins) for x in flat]
    return torch.tensor(idx).reshape(ab.shape[0], ab.shape[2], ab.shape[3])


# Four pixels at ab distances 0, 3, 10 and 200 (3-4-5 style triangles keep them exact).
FOUR = [((0, 0), (0, 0)), ((3, 0), (0, 0)), ((6, 8), (0, 0)), ((120, 160), (0, 0))]


def test_curve_hand_worked() -> None:
    pred, true = _pixels(FOUR)
    curve = metrics.accuracy_curve(pred, true)
    assert curve.shape == (151,) and curve.dtype == torch.float64
    # d <= t counts as correct: t=0..2 -> 1/4 (d=0), t=3..9 -> 2/4, t=10..150 -> 3/4 (d=200 never)
    expected = np.array([0.25] * 3 + [0.5] * 7 + [0.75] * 141)
    np.testing.assert_allclose(curve.numpy(), expected)
    # area: 3*0.25 + 7*0.5 + 141*0.75 = 0.75 + 3.5 + 105.75 = 110; mean over 151 thresholds
    assert metrics.auc(pred, true) == pytest.approx(100 * 110 / 151)  # 72.848 %


def test_curve_weighted_hand_worked() -> None:
    pred, true = _pixels(FOUR)
    w = torch.tensor([[[1.0, 1.0, 1.0, 5.0]]])  # total weight 8, the far pixel weighs 5
    curve = metrics.accuracy_curve(pred, true, pixel_weights=w)
    expected = np.array([1 / 8] * 3 + [2 / 8] * 7 + [3 / 8] * 141)
    np.testing.assert_allclose(curve.numpy(), expected)
    # area: (3*1 + 7*2 + 141*3) / 8 = 440 / 8 = 55 -> 55 / 151
    assert metrics.auc(pred, true, w) == pytest.approx(100 * 55 / 151)


def test_boundary_is_inclusive_and_fractional_distances_round_up() -> None:
    # d = 2.5 first counts at t = 3; d = 4 (exactly) counts at t = 4
    pred, true = _pixels([((2.5, 0), (0, 0)), ((0, 4), (0, 0))])
    curve = metrics.accuracy_curve(pred, true).numpy()
    np.testing.assert_allclose(curve[:6], [0, 0, 0, 0.5, 1.0, 1.0])


def test_curve_matches_brute_force_loop() -> None:
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 2, 9, 7, generator=g) * 60
    true = torch.randn(2, 2, 9, 7, generator=g) * 60
    w = torch.rand(2, 9, 7, generator=g)
    d = torch.sqrt(((pred.double() - true.double()) ** 2).sum(1))
    brute = torch.stack([(w * (d <= t)).sum() / w.sum() for t in range(151)]).double()
    torch.testing.assert_close(metrics.accuracy_curve(pred, true, w), brute)


def test_identical_prediction_gives_100() -> None:
    ab = torch.randn(3, 2, 8, 8) * 40
    assert metrics.auc(ab, ab.clone()) == pytest.approx(100.0)
    assert metrics.auc(ab[0], ab[0]) == pytest.approx(100.0)  # (2, H, W) accepted
    assert metrics.auc(ab, ab, torch.rand(3, 8, 8)) == pytest.approx(100.0)


def test_auc_from_curve_is_mean_in_percent() -> None:
    assert metrics.auc_from_curve(torch.ones(151)) == pytest.approx(100.0)
    assert metrics.auc_from_curve(np.zeros(151)) == 0.0
    ramp = np.arange(151) / 150
    assert metrics.auc_from_curve(ramp) == pytest.approx(50.0)


def test_histograms_add_up_to_pooled_curve() -> None:
    a, b = torch.randn(2, 2, 4, 4) * 30, torch.randn(2, 2, 4, 4) * 30
    h = metrics.accuracy_histogram(a[:1], b[:1]) + metrics.accuracy_histogram(a[1:], b[1:])
    torch.testing.assert_close(metrics.curve_from_histogram(h), metrics.accuracy_curve(a, b))


def test_bad_shapes_and_weights() -> None:
    with pytest.raises(ValueError, match="differ"):
        metrics.auc(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        metrics.auc(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="do not match"):
        metrics.auc(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.ones(1, 3, 4))
    with pytest.raises(ValueError, match="undefined"):
        metrics.auc(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2))


def test_rebalanced_weights_count_rare_colours_up() -> None:
    # Two bins; the prior says bin 0 is common (3/4), bin 1 rare (1/4).
    bins = np.array([[0.0, 0.0], [50.0, 50.0]])
    prior = np.array([0.75, 0.25])
    # lambda = 0: w ~ 1/p = (4/3, 4); normalised so that sum p w = 1 + 1 = 2 -> w = (2/3, 2)
    np.testing.assert_allclose(metrics.bin_weights_lambda0(prior), [2 / 3, 2.0])
    # Image: 3 common pixels predicted exactly, 1 rare pixel (50, 50) predicted gray
    # (distance 50*sqrt(2) = 70.7, correct from t = 71 on).
    true = torch.tensor([[0.0, 0.0, 0.0, 50.0], [0.0, 0.0, 0.0, 50.0]]).reshape(1, 2, 1, 4)
    pred = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 1, 4)
    w = metrics.rebalanced_pixel_weights(true, bins, prior)
    np.testing.assert_allclose(w.numpy().ravel(), [2 / 3, 2 / 3, 2 / 3, 2.0])
    plain = metrics.auc(pred, true)
    rebal = metrics.auc(pred, true, w)
    # plain: 0.75 for t = 0..70 (71 thresholds), 1 for t = 71..150 (80) -> (53.25 + 80) / 151
    assert plain == pytest.approx(100 * (71 * 0.75 + 80) / 151)  # 88.25 %
    # rebalanced: the rare pixel now carries half the weight: (71 * 0.5 + 80) / 151
    assert rebal == pytest.approx(100 * (71 * 0.5 + 80) / 151)  # 76.49 %
    assert rebal < plain


def test_lambda0_pixel_weights_are_inverse_prior_normalised() -> None:
    bins = reference_bins()
    g = np.random.default_rng(1)
    prior = g.random(len(bins)) + 0.01
    prior /= prior.sum()
    ab = torch.from_numpy(g.uniform(-80, 80, size=(2, 2, 5, 6)))
    w = metrics.pixel_weights_from_index(_nearest(ab, bins), metrics.bin_weights_lambda0(prior))
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy()
    expected = np.array([1 / p for p in prior])[[_nearest_one(x, bins) for x in flat]]
    expected = (expected / (prior * (1 / prior)).sum()).reshape(2, 5, 6)
    np.testing.assert_allclose(w.numpy(), expected)


def test_psnr_ssim_equal_scikit_image() -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    g = np.random.default_rng(0)
    true = g.random((32, 40, 3))
    pred = np.clip(true + g.normal(0, 0.05, true.shape), 0, 1)
    assert metrics.psnr(pred, true) == pytest.approx(
        peak_signal_noise_ratio(true, pred, data_range=1.0)
    )
    # channel-wise SSIM averaged == skimage with channel_axis == mean of per-channel SSIMs
    per_channel = [
        structural_similarity(true[..., c], pred[..., c], data_range=1.0) for c in range(3)
    ]
    assert metrics.ssim(pred, true) == pytest.approx(np.mean(per_channel))
    # PSNR by hand: 10 log10(1 / MSE)
    mse = float(((pred - true) ** 2).mean())
    assert metrics.psnr(pred, true) == pytest.approx(10 * math.log10(1 / mse))
    assert metrics.psnr(true, true) == math.inf
    assert metrics.ssim(true, true) == pytest.approx(1.0)


def test_colorfulness_hand_computed() -> None:
    # 1 x 2 image: a red pixel (255, 0, 0) and a black one (0, 0, 0)
    rgb = np.array([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    # rg = (255, 0): mean 127.5, std 127.5; yb = 0.5*(R+G) - B = (127.5, 0): mean 63.75, std 63.75
    # M = sqrt(127.5^2 + 63.75^2) + 0.3 sqrt(127.5^2 + 63.75^2) = 1.3 * 142.5459...
    expected = 1.3 * math.sqrt(127.5**2 + 63.75**2)
    assert metrics.colorfulness(rgb) == pytest.approx(expected)
    assert metrics.colorfulness(np.full((4, 4, 3), 0.3)) == 0.0


def test_is_grayscale_ab() -> None:
    ab = torch.zeros(2, 4, 4)
    assert metrics.is_grayscale_ab(ab)
    ab[0, 1, 1] = 5.0  # the threshold itself still counts as gray
    assert metrics.is_grayscale_ab(ab)
    ab[1, 2, 2] = -5.5
    assert not metrics.is_grayscale_ab(ab)
    assert metrics.is_grayscale_ab(np.full((2, 3, 3), 2.0))
    with pytest.raises(ValueError):
        metrics.is_grayscale_ab(torch.zeros(3, 4, 4))


def test_rebalanced_pixel_weights_match_brute_force_on_reference_bins() -> None:
    bins = reference_bins()
    g = np.random.default_rng(2)
    prior = g.random(len(bins)) + 0.01
    prior /= prior.sum()
    ab = torch.from_numpy(g.uniform(-80, 80, size=(2, 2, 4, 5)))
    w = metrics.rebalanced_pixel_weights(ab, bins, prior)
    brute = metrics.pixel_weights_from_index(_nearest(ab, bins), metrics.bin_weights_lambda0(prior))
    torch.testing.assert_close(w, brute)
    with pytest.raises(ValueError, match="does not match"):
        metrics.rebalanced_pixel_weights(ab, bins, prior[:-1])

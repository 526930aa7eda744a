from __future__ import annotations

import numpy as np
import pytest

from colorcli.color.bins import reference_bins
from colorcli.color.prior import (
    gaussian_kernel_1d,
    normalize_counts,
    rebalance_weights,
    smooth_on_grid,
    smooth_prior,
)


def test_lambda_one_gives_uniform_weights() -> None:
    p = normalize_counts(np.arange(1, 314, dtype=float))
    assert np.allclose(rebalance_weights(p, lam=1.0), 1.0)


def test_lambda_zero_gives_inverse_prior() -> None:
    p = normalize_counts(np.array([1.0, 2.0, 5.0, 2.0]))
    w = rebalance_weights(p, lam=0.0)
    # w proportional to 1/p and E_p[w] = 1 -> w = 1 / (Q p)
    assert np.allclose(w, 1.0 / (4 * p))
    assert np.isclose((p * w).sum(), 1.0)


def test_hand_worked_half_lambda() -> None:
    # p = [0.5, 0.25, 0.25], lambda = 0.5, Q = 3:
    # denominators 0.5*0.5+1/6 = 5/12, 0.5*0.25+1/6 = 7/24 -> raw w = 12/5, 24/7
    # E[w] = 0.5*12/5 + 0.5*24/7 = 6/5 + 12/7 = 102/35 -> w = (12/5, 24/7, 24/7) * 35/102
    p = np.array([0.5, 0.25, 0.25])
    w = rebalance_weights(p, lam=0.5)
    expected = np.array([12 / 5, 24 / 7, 24 / 7]) * 35 / 102
    assert np.allclose(w, expected)


def test_nonzero_q_mode_and_zero_bins() -> None:
    p = np.array([0.5, 0.5, 0.0, 0.0])
    w_all = rebalance_weights(p, lam=0.5, q_mode="all")
    w_nz = rebalance_weights(p, lam=0.5, q_mode="nonzero")
    assert np.isclose((p * w_all).sum(), 1.0) and np.isclose((p * w_nz).sum(), 1.0)
    # zero-probability bins get the uniform floor 1/(lambda/Q), above the seen bins
    assert w_all[2] > w_all[0]
    w0 = rebalance_weights(p, lam=0.0)
    assert np.isfinite(w0).all() and np.allclose(w0, 1.0)


def test_kernel_matches_formula() -> None:
    k = gaussian_kernel_1d(0.5)
    x = np.arange(-2, 3)
    ref = np.exp(-(x**2) / (2 * 0.25))
    assert np.allclose(k, ref / ref.sum())


def test_smoothing_against_brute_force() -> None:
    bins = reference_bins()
    rng = np.random.default_rng(1)
    v = rng.random(len(bins))
    out = smooth_on_grid(v, bins, sigma=5.0)
    # brute force: sum over all bin pairs of a sampled 2-D Gaussian (sigma 5 ab units,
    # truncated at 4 sigma in cells per axis, separable normalisation)
    k = gaussian_kernel_1d(0.5)
    r = len(k) // 2
    d = (bins[:, None, :] - bins[None, :, :]) / 10.0
    ia, ib = d[..., 0].round().astype(int), d[..., 1].round().astype(int)
    inside = (np.abs(ia) <= r) & (np.abs(ib) <= r)
    kk = np.where(inside, k[np.clip(ia + r, 0, 2 * r)] * k[np.clip(ib + r, 0, 2 * r)], 0.0)
    assert np.allclose(out, kk @ v)


def test_smooth_prior_normalised_and_validates() -> None:
    bins = reference_bins()
    p = np.zeros(len(bins))
    p[100] = 1.0
    s = smooth_prior(p, bins)
    assert np.isclose(s.sum(), 1.0) and s.argmax() == 100 and (s > 0).sum() > 1
    with pytest.raises(ValueError):
        normalize_counts(np.zeros(3))

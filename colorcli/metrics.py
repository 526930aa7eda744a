"""Evaluation metrics: AuC of the cumulative ab accuracy (plain and rebalanced), PSNR, SSIM,
colourfulness and the grayscale test. Pure functions; nothing here reads files.

AuC (Zhang et al. 2016, section 3.1): for every pixel, the Euclidean distance in ab between the
prediction and the ground truth; for each threshold t = 0, 1, ..., 150 the (weighted) fraction of
pixels with distance <= t; the AuC is the mean of that curve over the 151 thresholds, in percent
(the authors' code: sum / 151). The rebalanced variant weights each pixel by the lambda = 0
rebalancing weight (inverse smoothed prior) of its ground-truth bin.
"""

from __future__ import annotations

import numpy as np
import torch

from colorcli.color.constants import GRAY_THRESHOLD
from colorcli.color.encode import nearest_bin
from colorcli.color.prior import rebalance_weights

MAX_THRESHOLD = 150


def _as_batch(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[1] != 2:
        raise ValueError(f"{name} must be (B, 2, H, W) or (2, H, W), got {tuple(t.shape)}")
    return t


def ab_distance(pred_ab: torch.Tensor, true_ab: torch.Tensor) -> torch.Tensor:
    """Per-pixel L2 distance in ab, float64 ``(B, H, W)``.

    Inputs ``(B, 2, H, W)`` or ``(2, H, W)`` in Lab units."""
    p = _as_batch(pred_ab, "pred_ab").to(torch.float64)
    t = _as_batch(true_ab, "true_ab").to(device=p.device, dtype=torch.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred_ab {tuple(p.shape)} and true_ab {tuple(t.shape)} differ in shape")
    d = p - t
    # explicit squares: several times faster than torch.linalg.vector_norm on the CPU
    return torch.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])


def accuracy_histogram(
    pred_ab: torch.Tensor,
    true_ab: torch.Tensor,
    pixel_weights: torch.Tensor | None = None,
    max_threshold: int = MAX_THRESHOLD,
) -> torch.Tensor:
    """Weighted histogram ``(max_threshold + 2,)`` float64 of ceil(distance), clipped.

    Entry k (k <= max_threshold) holds the weight of pixels with ceil(d) = k, i.e. the pixels
    that first count as correct at threshold k; the last entry holds those beyond every
    threshold. Histograms of several images add up (pooled curves).
    """
    d = ab_distance(pred_ab, true_ab)
    # d <= t  <=>  ceil(d) <= t for integer t: one bincount replaces a loop over thresholds
    k = torch.ceil(d).clamp(max=max_threshold + 1).to(torch.int64).flatten()
    w = None
    if pixel_weights is not None:
        pw = torch.as_tensor(pixel_weights).to(device=d.device, dtype=torch.float64)
        if pw.dim() == 2:
            pw = pw.unsqueeze(0)
        if pw.shape != d.shape:
            raise ValueError(
                f"pixel_weights {tuple(pw.shape)} do not match the images {tuple(d.shape)}"
            )
        if (pw < 0).any():
            raise ValueError("pixel_weights must be non-negative")
        w = pw.flatten()
    return torch.bincount(k, weights=w, minlength=max_threshold + 2).to(torch.float64).cpu()


def curve_from_histogram(hist: torch.Tensor) -> torch.Tensor:
    """Histogram from :func:`accuracy_histogram` -> cumulative accuracy ``(len - 1,)`` in [0, 1]."""
    total = float(hist.sum())
    if total <= 0:
        raise ValueError("no pixels (or all pixel weights are zero): the curve is undefined")
    return torch.cumsum(hist[:-1], dim=0) / total


def accuracy_curve(
    pred_ab: torch.Tensor,
    true_ab: torch.Tensor,
    pixel_weights: torch.Tensor | None = None,
    max_threshold: int = MAX_THRESHOLD,
) -> torch.Tensor:
    """Cumulative ab accuracy ``(max_threshold + 1,)`` float64 in [0, 1].

    Entry t is the (weighted) fraction of pixels whose ab distance is <= t (inclusive), for
    t = 0, 1, ..., max_threshold. ``pred_ab``/``true_ab``: ``(B, 2, H, W)`` or ``(2, H, W)`` in
    Lab units; all pixels of the batch are pooled. ``pixel_weights``: ``(B, H, W)`` or ``(H, W)``,
    non-negative; the fraction is sum of weights within t / sum of all weights.
    """
    return curve_from_histogram(accuracy_histogram(pred_ab, true_ab, pixel_weights, max_threshold))


def auc_from_curve(curve: torch.Tensor | np.ndarray) -> float:
    """Normalised area under the accuracy curve, in percent [0, 100].

    The integration rule is the mean of the curve over its thresholds 0..150 (sum / 151, as in
    the authors' code), so a perfect prediction (curve all ones, including t = 0) gives 100.
    """
    c = torch.as_tensor(curve, dtype=torch.float64)
    if c.dim() != 1 or c.numel() == 0:
        raise ValueError(f"curve must be a non-empty 1-D array, got shape {tuple(c.shape)}")
    return float(c.mean()) * 100.0


def auc(
    pred_ab: torch.Tensor, true_ab: torch.Tensor, pixel_weights: torch.Tensor | None = None
) -> float:
    """AuC in percent of the cumulative ab accuracy over thresholds 0..150 (see module doc)."""
    return auc_from_curve(accuracy_curve(pred_ab, true_ab, pixel_weights))


def bin_weights_lambda0(prior_smoothed: np.ndarray) -> np.ndarray:
    """Per-bin weights ``(Q,)`` for rebalanced AuC: the lambda = 0 rebalancing weights
    (inverse smoothed prior, E_p~[w] = 1; bins with p~ = 0 get the largest finite weight)."""
    return rebalance_weights(np.asarray(prior_smoothed, dtype=np.float64), lam=0.0)


def pixel_weights_from_index(bin_index: torch.Tensor, bin_weights: np.ndarray) -> torch.Tensor:
    """Per-bin weights ``(Q,)`` at hard bin indices ``(B, H, W)`` -> float64 ``(B, H, W)``."""
    w = torch.as_tensor(np.asarray(bin_weights, dtype=np.float64), device=bin_index.device)
    return w[bin_index]


def rebalanced_pixel_weights(
    true_ab: torch.Tensor, bins: np.ndarray | torch.Tensor, prior_smoothed: np.ndarray
) -> torch.Tensor:
    """Per-pixel weights ``(B, H, W)`` float64 for rebalanced AuC.

    Each pixel gets the lambda = 0 rebalancing weight of the bin nearest to its ground-truth ab
    (hard assignment). ``true_ab``: ``(B, 2, H, W)`` or ``(2, H, W)`` in Lab units; ``bins``
    ``(Q, 2)``; ``prior_smoothed`` ``(Q,)`` (the smoothed prior p~ over the same bins).
    """
    ab = _as_batch(true_ab, "true_ab")
    prior = np.asarray(prior_smoothed, dtype=np.float64)
    if prior.shape != (len(bins),):
        raise ValueError(f"prior {prior.shape} does not match the {len(bins)} bins")
    index = nearest_bin(ab.float(), bins)
    return pixel_weights_from_index(index, bin_weights_lambda0(prior))


def _check_rgb(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be (H, W, 3), got {a.shape}")
    return a


def psnr(pred_rgb: np.ndarray, true_rgb: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB of ``(H, W, 3)`` sRGB images in [0, data_range] (scikit-image).

    With the default data_range = 1 on [0, 1] floats the peak equals 255 on 8-bit values (not the
    256 of seed 002's formula). Identical images give +inf.
    """
    from skimage.metrics import peak_signal_noise_ratio

    p, t = _check_rgb(pred_rgb, "pred_rgb"), _check_rgb(true_rgb, "true_rgb")
    if p.shape != t.shape:
        raise ValueError(f"pred_rgb {p.shape} and true_rgb {t.shape} differ in shape")
    if np.array_equal(p, t):
        return float("inf")
    return float(peak_signal_noise_ratio(t, p, data_range=data_range))


def ssim(pred_rgb: np.ndarray, true_rgb: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM of ``(H, W, 3)`` sRGB images in [0, data_range]: scikit-image's structural_similarity
    computed per channel (7x7 uniform window, its defaults) and averaged over the 3 channels."""
    from skimage.metrics import structural_similarity

    p, t = _check_rgb(pred_rgb, "pred_rgb"), _check_rgb(true_rgb, "true_rgb")
    if p.shape != t.shape:
        raise ValueError(f"pred_rgb {p.shape} and true_rgb {t.shape} differ in shape")
    return float(structural_similarity(t, p, data_range=data_range, channel_axis=2))


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M of an ``(H, W, 3)`` sRGB image in [0, 1].

    On the 0..255 scale: rg = R - G, yb = (R + G) / 2 - B,
    M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2) (population std).
    0 for any gray image; about 15-35 for "moderately" to "quite" colourful photos.
    """
    a = _check_rgb(rgb, "rgb") * 255.0
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = float(np.sqrt(rg.std() ** 2 + yb.std() ** 2))
    mu = float(np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
    return sigma + 0.3 * mu


def is_grayscale_ab(ab: torch.Tensor | np.ndarray, threshold: float = GRAY_THRESHOLD) -> bool:
    """True when no pixel has |a| > threshold or |b| > threshold (ab ``(..., 2, H, W)``, Lab units).

    The test Zhang et al.'s training code used to drop effectively grayscale images.
    """
    t = torch.as_tensor(ab)
    if t.dim() < 3 or t.shape[-3] != 2:
        raise ValueError(f"ab must be (..., 2, H, W), got {tuple(t.shape)}")
    return not bool((t.abs() > threshold).any())

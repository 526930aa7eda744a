"""Pure functions from bin counts to the smoothed ab prior and the class-rebalancing weights.

Zhang et al., section 2.2: p is the empirical distribution of training pixels over the Q bins,
smoothed with a Gaussian (sigma = 5 ab units) on the 2-D ab grid to give p~; the weights are
w proportional to 1 / ((1 - lambda) p~ + lambda / Q), normalised so that E_p~[w] = sum p~ w = 1.
(Folder streaming lives in ``colorcli.data``; this module never reads files.)
"""

from __future__ import annotations

import numpy as np

from colorcli.color.bins import grid_layout

QMode = str  # a value of choices.QMode


def normalize_counts(counts: np.ndarray) -> np.ndarray:
    """Bin counts ``(Q,)`` -> empirical distribution p (sums to 1)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError("counts must be a 1-D array of non-negative numbers")
    total = counts.sum()
    if total <= 0:
        raise ValueError("counts are all zero: no colour pixels were seen")
    return counts / total


def gaussian_kernel_1d(sigma_cells: float, truncate: float = 4.0) -> np.ndarray:
    """Normalised sampled Gaussian with standard deviation ``sigma_cells`` (in grid cells)."""
    if sigma_cells <= 0:
        return np.ones(1)
    radius = max(1, int(truncate * sigma_cells + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma_cells) ** 2)
    return k / k.sum()


def smooth_on_grid(values: np.ndarray, bins: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """Gaussian-smooth per-bin ``values`` ``(Q,)`` over the 2-D ab grid; sigma in ab units.

    The values are placed on the full rectangular grid (zeros outside the gamut), blurred with a
    separable Gaussian (zero padding), and read back at the bin cells. Mass that spreads to cells
    outside the gamut is dropped; callers renormalise.
    """
    layout = grid_layout(bins)
    grid = np.zeros(layout.shape, dtype=np.float64)
    grid[layout.ia, layout.ib] = values
    k = gaussian_kernel_1d(sigma / layout.grid)
    r = len(k) // 2
    padded = np.pad(grid, r)
    # separable convolution: along a, then along b
    tmp = sum(k[i] * padded[i : i + layout.shape[0], :] for i in range(len(k)))
    out = sum(k[i] * tmp[:, i : i + layout.shape[1]] for i in range(len(k)))
    return np.asarray(out[layout.ia, layout.ib], dtype=np.float64)


def smooth_prior(p: np.ndarray, bins: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """p ``(Q,)`` -> p~: Gaussian-smoothed on the ab grid and renormalised to sum to 1."""
    s = smooth_on_grid(normalize_counts(p), bins, sigma)
    return s / s.sum()


def rebalance_weights(p_smooth: np.ndarray, lam: float = 0.5, q_mode: QMode = "all") -> np.ndarray:
    """Class-rebalancing weights w ``(Q,)`` with E_p~[w] = 1.

    ``lam`` mixes the prior with a uniform distribution (1 = no rebalancing, all weights 1;
    0 = pure inverse prior). ``q_mode="all"`` uses Q = number of bins (the paper);
    ``"nonzero"`` uses the number of bins with non-zero p~ (the authors' code). Bins with p~ = 0
    at ``lam = 0`` have no finite weight; they get the largest finite weight (they never occur in
    the data the prior came from, so this only matters for other data).
    """
    p = np.asarray(p_smooth, dtype=np.float64)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    q = int((p > 0).sum()) if q_mode == "nonzero" else len(p)
    denom = (1.0 - lam) * p + lam / q
    w = np.zeros_like(p)
    ok = denom > 0
    w[ok] = 1.0 / denom[ok]
    w = w / float((p * w).sum())
    if not ok.all():
        w[~ok] = w[ok].max()
    return w

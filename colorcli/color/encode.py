"""Encoding ab onto bins (soft / one-hot, sparse) and decoding bin distributions to ab.

Soft encoding (Zhang et al.): each pixel's ab goes to its K nearest bin centres, weighted by a
Gaussian of the distance (sigma in ab units) and normalised to sum 1. Targets stay sparse:
``(index, weight)``, both ``(B, K, H, W)``; ``to_dense`` builds the ``(B, Q, H, W)`` tensor for
tests and plots only.

Exactness contract. The distance of a pixel to bin q is ``(a - A_q)**2 + (b - B_q)**2``
evaluated in float64 (whatever the input dtype). The K nearest are the K smallest of these
values; exactly equal values are ordered by bin index, lower first (what a stable sort of the
full ``(N, Q)`` distance matrix gives). Neighbours are returned nearest first. This holds for
every finite input, far outside the gamut included.

How it is fast. K = 1 (``nearest_bin``, ``one_hot_encode``): the pixel's grid cell by rounding
and a lookup table, exact by a margin argument, brute force for the few pixels too close to a
cell edge. K >= 2 on CPU: ``colorcli.color._knn_fine``, a fine table (sub-cells of 1/40 the
bin spacing) whose rows hold at most K + 1 candidate bins, ranked by a comparator network over
int64 keys, exact by construction (ties rechecked in float64, every pixel it cannot settle goes
to ``colorcli.color._knn``'s wide rows or the brute force); the table is built once per
machine and (bins, K), about a second, and cached on disk (``_knn_fine.cache_dir()``), loaded
in milliseconds; ``colorcli.color._knn`` (coarser table, built per process) serves bins and K
the fine table does not. Other devices: the brute force (one ``(N, Q)`` block at a time). Speed
against scikit-learn's ball tree: ``benchmarks/bench_encode.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from colorcli.color import _knn as _knn_engine
from colorcli.color import _knn_fine
from colorcli.color.bins import GridLayout, grid_layout

DecodeMethod = Literal["annealed", "mean", "mode"]
DEFAULT_TEMPERATURE = 0.38
DEFAULT_K = 5
DEFAULT_SIGMA = 5.0

# Pixels per chunk of the nearest-bin fast path (bounds the float64 temporaries).
_CHUNK = 65536


def as_bins_tensor(bins: np.ndarray | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bins ``(Q, 2)`` as a tensor on ``like``'s device and floating dtype."""
    dtype = like.dtype if like.is_floating_point() else torch.float32
    return torch.as_tensor(bins).to(device=like.device, dtype=dtype)


def _bins_numpy(bins: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = bins.detach().cpu().numpy() if isinstance(bins, torch.Tensor) else np.asarray(bins)
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 1:
        raise ValueError(f"bins must be a (Q, 2) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("bins contain non-finite values")
    return arr


def _check_ab(ab: torch.Tensor) -> None:
    if not isinstance(ab, torch.Tensor) or ab.dim() != 4 or ab.shape[1] != 2:
        shape = tuple(ab.shape) if isinstance(ab, torch.Tensor) else type(ab).__name__
        raise ValueError(f"ab must be a (B, 2, H, W) tensor, got {shape}")
    if not ab.is_floating_point():
        raise TypeError(f"ab must be a floating-point tensor, got {ab.dtype}")
    if ab.numel() and not bool(torch.isfinite(ab).all()):
        raise ValueError("ab contains NaN or infinite values")


def _exact_columns(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray, GridLayout] | None:
    """Per-column a and per-row b centres if every bin equals them bitwise, else None."""
    try:
        layout = grid_layout(bins)
    except ValueError:
        return None
    col_a = layout.a0 + np.arange(layout.shape[0]) * layout.grid
    col_b = layout.b0 + np.arange(layout.shape[1]) * layout.grid
    col_a[layout.ia] = bins[:, 0]
    col_b[layout.ib] = bins[:, 1]
    same_a = np.array_equal(col_a[layout.ia], bins[:, 0])
    if not (same_a and np.array_equal(col_b[layout.ib], bins[:, 1])):
        return None
    if np.any(np.diff(col_a) <= 0) or np.any(np.diff(col_b) <= 0):
        return None
    return col_a, col_b, layout


@dataclass(frozen=True)
class _NearestTable:
    """K = 1 by rounding: ``(ab - origin) / grid`` rounds to the nearest cell of the padded
    lookup table ``lut`` (cell (0, 0) is one cell below/left of the first bin column/row)."""

    scale: float  # 1 / grid
    offset: torch.Tensor  # (1, 2, 1, 1): origin / grid - 1, per axis, in the compute dtype
    hi: tuple[int, int]  # last padded cell index per axis (sa + 1, sb + 1)
    lut: torch.Tensor  # ((sa + 2) * (sb + 2),) int64 bin index per cell, -1 = no bin
    limit: float  # accept a pixel when |t - round(t)| < limit on both axes


def _build_nearest(
    bins: np.ndarray, device: torch.device, dtype: torch.dtype
) -> _NearestTable | None:
    """Tables for ``_nearest_fast``, or None when the bins are not on an exact grid.

    Exactness: let t be the computed ``x / g - origin / g + 1`` and u its exact value. With eps
    the machine epsilon of ``dtype``, |t - u| <= eps_t = 2 eps (3 n + 3 c + 8) (n: largest
    table side, c: largest |origin| / g) for every pixel whose cell is a bin (then |u| <= n + 1).
    The bin columns lie within eps_c * g of ``origin + i * g``. A pixel is accepted when
    |t - round(t)| < 1/2 - delta on both axes with delta = 2 (eps_t + eps_c) + 1e-9: then its
    rounded column is nearer than any other column by at least 2 (delta - eps_t - eps_c) g >=
    2e-9 g per axis, far more than float64 rounding of the squared distances, so the rounded
    cell's bin is the unique nearest bin in the exact float64 distance the brute force uses.
    """
    cols = _exact_columns(bins)
    if cols is None:
        return None
    col_a, col_b, layout = cols
    g = float(layout.grid)
    sa, sb = layout.shape
    dev_a = np.abs(col_a - (layout.a0 + np.arange(sa) * g)).max() / g
    dev_b = np.abs(col_b - (layout.b0 + np.arange(sb) * g)).max() / g
    eps = torch.finfo(dtype).eps
    c = max(abs(layout.a0), abs(layout.b0)) / g
    eps_t = 2.0 * eps * (3.0 * max(sa, sb) + 3.0 * c + 8.0)
    delta = 2.0 * (eps_t + max(dev_a, dev_b) + 1e-12) + 1e-9
    if delta >= 0.25:
        return None
    lut = np.full((sa + 2, sb + 2), -1, dtype=np.int64)
    lut[1:-1, 1:-1] = layout.lookup()
    offset = torch.tensor([layout.a0 / g - 1.0, layout.b0 / g - 1.0], dtype=torch.float64)
    return _NearestTable(
        scale=1.0 / g,
        offset=offset.to(device=device, dtype=dtype).view(1, 2, 1, 1),
        hi=(sa + 1, sb + 1),
        lut=torch.as_tensor(lut.reshape(-1), device=device),
        limit=0.5 - delta,
    )


_NEAREST_CACHE: dict[tuple[bytes, tuple[int, ...], str, torch.dtype], _NearestTable | None] = {}


def _nearest_table(
    bins: np.ndarray, device: torch.device, dtype: torch.dtype
) -> _NearestTable | None:
    key = (bins.tobytes(), bins.shape, str(device), dtype)
    if key not in _NEAREST_CACHE:
        if len(_NEAREST_CACHE) > 32:
            _NEAREST_CACHE.clear()
        _NEAREST_CACHE[key] = _build_nearest(bins, device, dtype)
    return _NEAREST_CACHE[key]


def _nearest_fast(ab: torch.Tensor, nt: _NearestTable) -> tuple[torch.Tensor, torch.Tensor]:
    """Rounded cell of each pixel of ab ``(B, 2, H, W)`` (compute dtype): (bin index (N,)
    int64, -1 where the cell is not a bin; largest |t - round(t)| of the two axes (N,))."""
    t = ab * nt.scale
    t -= nt.offset
    r = t.round()
    t -= r
    frac = t.abs_().amax(dim=1).reshape(-1)
    ra = r[:, 0].clamp_(0, nt.hi[0])
    rb = r[:, 1].clamp_(0, nt.hi[1])
    lin = torch.add(rb, ra, alpha=nt.hi[1] + 1).reshape(-1).long()  # exact: small integers
    return nt.lut.index_select(0, lin), frac


def _nearest(ab: torch.Tensor, bins: np.ndarray) -> torch.Tensor:
    """Nearest bin ``(B, H, W)`` int64 of each pixel of ab ``(B, 2, H, W)`` (checked): the
    rounding fast path where it is provably exact, the brute force for every other pixel.
    Rounding runs in float64 (a tiny margin, so few pixels need the fallback)."""
    bsz, _, h, w = ab.shape
    dtype = torch.float64
    with torch.no_grad():
        nt = _nearest_table(bins, ab.device, dtype)
        centres = torch.as_tensor(bins, device=ab.device)
        if nt is None or ab.numel() == 0:
            a = ab[:, 0].reshape(-1).to(dtype)
            b = ab[:, 1].reshape(-1).to(dtype)
            return _knn_engine.brute_knn(a, b, centres, 1)[1].reshape(bsz, h, w)
        out = torch.empty((bsz, h * w), dtype=torch.int64, device=ab.device)
        step = max(1, _CHUNK // max(1, h * w))  # whole images, about _CHUNK pixels a chunk
        for s in range(0, bsz, step):
            part = ab[s : s + step].to(dtype, memory_format=torch.contiguous_format)
            idx, frac = _nearest_fast(part, nt)
            # cheap reductions first: most chunks need no fallback at all
            if float(frac.max()) >= nt.limit or int(idx.min()) < 0:
                sel = ((frac >= nt.limit) | (idx < 0)).nonzero().squeeze(1)
                a = part[:, 0].reshape(-1).index_select(0, sel)
                b = part[:, 1].reshape(-1).index_select(0, sel)
                idx.index_copy_(0, sel, _knn_engine.brute_knn(a, b, centres, 1)[1][0])
            out[s : s + step] = idx.view(-1, h * w)
        return out.view(bsz, h, w)


# --------------------------------------------------------------------------------------------
# The K nearest (K >= 2): the exact table engine on CPU (``colorcli.color._knn``), the brute
# force elsewhere. Distances and indices are (K, N): one row per rank.


def _check_k(k: int, q: int) -> None:
    if not 1 <= k <= q:
        raise ValueError(f"k must be between 1 and the number of bins ({q}), got {k}")


def _knn(ab: torch.Tensor, bins: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute force: (squared distances (K, N) float64, indices (K, N) int64) of ab."""
    with torch.no_grad():
        a = ab[:, 0].reshape(-1).to(torch.float64)
        b = ab[:, 1].reshape(-1).to(torch.float64)
        return _knn_engine.brute_knn(a, b, torch.as_tensor(bins, device=ab.device), k)


def _to_bkhw(x: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(K, B*H*W) -> (B, K, H, W)."""
    bsz, _, h, w = ab.shape
    return x.reshape(x.shape[0], bsz, h, w).transpose(0, 1).contiguous()


def gaussian_weights(
    d2: torch.Tensor, sigma: float, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Normalised Gaussian weights from squared distances ``(K, N)``, nearest first.

    ``exp(-(d2 - d2_min) / (2 sigma^2))`` normalised over K: subtracting the nearest distance
    cancels in the ratio and keeps far-away points from underflowing to 0/0. The exponent is
    formed in ``d2``'s precision; exp and normalisation run in ``dtype``.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    w = ((d2 - d2.amin(dim=0, keepdim=True)) * (-0.5 / (sigma * sigma))).to(dtype).exp_()
    return w.div_(w.sum(dim=0, keepdim=True))


def soft_encode(
    ab: torch.Tensor,
    bins: np.ndarray | torch.Tensor,
    k: int = DEFAULT_K,
    sigma: float = DEFAULT_SIGMA,
    compile: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-encode ab ``(B, 2, H, W)`` (Lab units, any range) onto ``bins`` ``(Q, 2)``.

    Returns ``(index, weight)``, both ``(B, K, H, W)``: the K nearest bins of each pixel, nearest
    first (int64; equal distances ordered by lower bin index), and their Gaussian weights
    ``exp(-d^2 / (2 sigma^2))`` normalised to sum 1 over K, in ab's dtype. Exact for every finite
    input (see the module docstring). ValueError for bad shapes, NaN/inf, or k outside [1, Q].

    ``compile``: accepted for compatibility and ignored (the CPU engine needs no compilation).
    """
    arr = _bins_numpy(bins)
    if k == 1:  # one neighbour: weight 1, no distances needed
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        _check_ab(ab)
        _check_k(k, len(arr))
        idx1 = _nearest(ab, arr).unsqueeze(1)
        return idx1, torch.ones(idx1.shape, dtype=ab.dtype, device=ab.device)
    del compile
    _check_ab(ab)
    _check_k(k, len(arr))
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    cpu = ab.device.type == "cpu" and ab.numel() and ab.dtype in (torch.float32, torch.float64)
    fine = _knn_fine.table(arr, k) if cpu else None
    if fine is not None:
        out_i, out_w = _knn_fine.soft_encode(ab.detach().numpy(), arr, fine, sigma)
        return torch.from_numpy(out_i), torch.from_numpy(out_w)
    tab = _knn_engine.table(arr, k) if cpu else None
    if tab is not None:
        out_i, out_w = _knn_engine.soft_encode(ab.detach().numpy(), arr, tab, sigma)
        return torch.from_numpy(out_i), torch.from_numpy(out_w)
    d2, idx = _knn(ab, arr, k)
    return _to_bkhw(idx, ab), _to_bkhw(gaussian_weights(d2, sigma, ab.dtype), ab)


def nearest_bin(ab: torch.Tensor, bins: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Index ``(B, H, W)`` int64 of the nearest bin of each pixel (ties: lower index).

    Grid bins: the pixel's cell by rounding and a lookup table, exact by a margin argument
    (``_build_nearest``); pixels too close to a cell edge (exact ties included) or whose cell is
    not a bin go to the brute force.
    """
    arr = _bins_numpy(bins)
    _check_ab(ab)
    return _nearest(ab, arr)


def one_hot_encode(
    ab: torch.Tensor, bins: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard encoding: ``(index (B, 1, H, W) int64, weight ones (B, 1, H, W) in ab's dtype)``."""
    idx = nearest_bin(ab, bins).unsqueeze(1)
    return idx, torch.ones(idx.shape, dtype=ab.dtype, device=ab.device)


def to_dense(index: torch.Tensor, weight: torch.Tensor, q: int) -> torch.Tensor:
    """Sparse targets ``(B, K, H, W)`` -> dense ``(B, Q, H, W)``; repeated indices add up."""
    if index.shape != weight.shape or index.dim() != 4:
        raise ValueError(
            f"index and weight must both be (B, K, H, W), got {tuple(index.shape)} and "
            f"{tuple(weight.shape)}"
        )
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= q):
        raise ValueError(f"index values must lie in [0, {q})")
    bsz, _, h, w = index.shape
    dense = torch.zeros((bsz, q, h, w), dtype=weight.dtype, device=weight.device)
    return dense.scatter_add_(1, index.long(), weight)


def decode(
    logits: torch.Tensor,
    bins: np.ndarray | torch.Tensor,
    method: DecodeMethod = "annealed",
    temperature: float = DEFAULT_TEMPERATURE,
) -> torch.Tensor:
    """Bin logits ``(B, Q, H, W)`` -> ab ``(B, 2, H, W)`` in Lab units.

    ``annealed``: expectation of the bin centres under softmax(logits / T) (Zhang et al.,
    T = 0.38; T = 1 is the plain mean, T -> 0 the mode). ``mean``: T = 1. ``mode``: the centre
    of the most probable bin (ties -> lowest index).
    """
    if logits.dim() != 4:
        raise ValueError(f"logits must be (B, Q, H, W), got {tuple(logits.shape)}")
    centres = as_bins_tensor(bins, logits)
    if centres.shape != (logits.shape[1], 2):
        raise ValueError(f"bins {tuple(centres.shape)} do not match Q = {logits.shape[1]}")
    if method == "mode":
        idx = logits.argmax(dim=1)  # (B, H, W)
        return centres[idx].permute(0, 3, 1, 2).contiguous()
    if method == "mean":
        t = 1.0
    elif method == "annealed":
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        t = float(temperature)
    else:
        raise ValueError(f"unknown decode method {method!r} (annealed, mean, mode)")
    probs = torch.softmax(logits.float() / t, dim=1).to(centres.dtype)
    return torch.einsum("bqhw,qc->bchw", probs, centres)

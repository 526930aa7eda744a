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

How it is fast. Bins lie on a regular grid (``colorcli.color.bins.grid_layout``). Per axis, a
pixel's squared distances to the grid columns around its nearest column, ranked (nearest, then
the neighbour on the pixel's side, then the other side, ...), form a sorted list; the squared
distance to a cell is the sum of one entry per axis. So only cells whose (rank_a, rank_b) lie on
the "staircase" ``(rank_a + 1) * (rank_b + 1) <= K`` (any other cell is no closer than K
staircase cells) and within the largest K-th-neighbour radius of a full grid can be among the K
nearest: 8 cells for K = 5, 15 for K = 10, 1 for K = 1. Their distances are sorted by a small
comparator network (Batcher's, pruned of comparators that the rank order makes redundant: 9 for
K = 5), computed column-wise in float64 with plain elementwise torch ops. A pixel is accepted only
if its K first candidates are bins, its ranked axis lists are indeed sorted, and its K-th distance
is strictly below a lower bound for every cell left out (the staircase's outer corners and the
window's edge); exact ties among candidates are re-ordered by bin index; every other pixel
(near or beyond the gamut edge, non-grid bins) goes to an exact brute-force fallback over all Q
bins. Eager by default (no first-call latency); ``compile=True`` (or inputs of 2**20 pixels and
more) runs the window search under ``torch.compile`` once per process, falling back to eager if
compilation fails. Speed against scikit-learn's ball tree: ``benchmarks/bench_encode.py``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from colorcli.color.bins import GridLayout, grid_layout

_log = logging.getLogger(__name__)

DecodeMethod = Literal["annealed", "mean", "mode"]
DEFAULT_TEMPERATURE = 0.38
DEFAULT_K = 5
DEFAULT_SIGMA = 5.0

# Pixels per chunk of the fast path (bounds the float64 per-candidate temporaries).
_CHUNK = 65536
# Rows per chunk of the brute-force fallback ((rows, Q) float64 distance block).
_BRUTE_CHUNK = 4096
# torch.compile (optional): fixed chunk length, and the size from which it is used by default.
_COMPILE_CHUNK = 65536
_COMPILE_MIN_PIXELS = 1 << 20
# Above this K the window machinery stops paying off; brute force is used.
_MAX_FAST_K = 32


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


# --------------------------------------------------------------------------------------------
# Candidate geometry (pure, depends on K only)


@lru_cache(maxsize=64)
def _full_grid_radius(k: int) -> float:
    """Largest K-th-nearest distance (in cells) of any point to the infinite unit lattice.

    Sampled over the quadrant [0, 1/2]^2 (by symmetry the whole plane); only used to size the
    candidate set, never for correctness.
    """
    r = math.isqrt(k) + 3
    off = np.arange(-r, r + 1, dtype=np.float64)
    oa, ob = (g.ravel() for g in np.meshgrid(off, off, indexing="ij"))
    f = np.linspace(0.0, 0.5, 51)
    fa, fb = (g.ravel() for g in np.meshgrid(f, f, indexing="ij"))
    d2 = (fa[:, None] - oa[None, :]) ** 2 + (fb[:, None] - ob[None, :]) ** 2
    return float(np.sqrt(np.partition(d2, k - 1, axis=1)[:, k - 1].max()))


@dataclass(frozen=True)
class _Geometry:
    m: int  # window half-width: per axis, ranks 0..2m cover column offsets -m..m
    cand: tuple[tuple[int, int], ...]  # candidate (rank_a, rank_b) pairs
    corners: tuple[tuple[int, int], ...]  # minimal left-out (rank_a, rank_b) pairs in the window


@lru_cache(maxsize=64)
def _geometry(k: int) -> _Geometry:
    radius = _full_grid_radius(k)
    m = 1
    while m + 0.5 <= radius + 0.2:
        m += 1
    n = 2 * m + 1

    # rank r is at least r/2 cells away (ranks alternate sides: 0, +-1, -+1, +-2, ...)
    def keep(i: int, j: int) -> bool:
        return (i + 1) * (j + 1) <= k and (i * i + j * j) / 4.0 <= radius * radius + 1e-9

    inside = {(i, j) for i in range(n) for j in range(n) if keep(i, j)}
    cand = tuple(sorted(inside, key=lambda c: (max(c), c)))
    corners = tuple(
        (i, j)
        for i in range(n)
        for j in range(n)
        if (i, j) not in inside
        and (i == 0 or (i - 1, j) in inside)
        and (j == 0 or (i, j - 1) in inside)
    )
    return _Geometry(m, cand, corners)


def _rank_offsets(m: int) -> np.ndarray:
    """``(2, 2m+1)``: column offset of each rank for side s = 0 (pixel at or right of its
    nearest column: 0, +1, -1, +2, -2, ...) and s = 1 (mirrored)."""
    r = np.arange(2 * m + 1)
    mag = (r + 1) // 2
    sign = np.where(r % 2 == 1, 1, -1)
    plus = mag * sign
    return np.stack([plus, -plus])


# --------------------------------------------------------------------------------------------
# Tables (depend on the bins, K and the device)


def _merge_network(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort for ``n`` wires (padded to a power of two; comparators
    touching the padding are dropped, valid when the padding holds +inf). Pairs (i, j), i < j:
    after the comparator wire i holds the smaller value."""
    size = 1
    while size < n:
        size *= 2
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < size:
        step = p
        while step >= 1:
            for j in range(step % p, size - step, 2 * step):
                for i in range(min(step, size - j - step)):
                    if (i + j) // (2 * p) == (i + j + step) // (2 * p):
                        pairs.append((i + j, i + j + step))
            step //= 2
        p *= 2
    return [(i, j) for i, j in pairs if j < n]


def _dead_pruned(pairs: list[tuple[int, int]], outputs: int) -> list[tuple[int, int]]:
    """Drop comparators that cannot affect the first ``outputs`` wires."""
    needed = set(range(outputs))
    kept: list[tuple[int, int]] = []
    for i, j in reversed(pairs):
        if i in needed or j in needed:
            kept.append((i, j))
            needed.update((i, j))
    return kept[::-1]


@lru_cache(maxsize=64)
def _selection_network(
    cand: tuple[tuple[int, int], ...], outputs: int
) -> tuple[tuple[int, int], ...]:
    """Comparators that sort the smallest ``outputs`` of the candidate distances (wire c holds
    candidate c), knowing that d2 is monotone in both ranks: candidate x <= candidate y whenever
    x is dominated by y. Batcher's network, minus comparators that never swap on any 0-1 input
    consistent with that order (0-1 principle: then they never swap on real inputs either).
    """
    n = len(cand)
    pairs = _dead_pruned(_merge_network(n), outputs)
    if n > 16:
        return tuple(pairs)
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1  # all 0-1 inputs
    ok = np.ones(len(bits), dtype=bool)
    for x in range(n):
        for y in range(n):
            if x != y and cand[x][0] <= cand[y][0] and cand[x][1] <= cand[y][1]:
                ok &= bits[:, x] <= bits[:, y]
    state = bits[ok].copy()
    kept: list[tuple[int, int]] = []
    for i, j in pairs:
        if np.any(state[:, j] < state[:, i]):
            kept.append((i, j))
            lo = np.minimum(state[:, i], state[:, j])
            state[:, j] = np.maximum(state[:, i], state[:, j])
            state[:, i] = lo
    return tuple(_dead_pruned(kept, outputs))


@dataclass(frozen=True)
class _Tables:
    k: int
    geo: _Geometry
    a0: float
    b0: float
    grid: float
    na: int  # padded column counts
    nb: int
    pad: int
    col_a: torch.Tensor  # (na,) float64 centre a of each padded column
    col_b: torch.Tensor  # (nb,)
    rank_a: torch.Tensor  # (2m+1, na * 2) float64: a of each rank's column, per (column, side)
    rank_b: torch.Tensor  # (2m+1, nb * 2)
    cand_idx: torch.Tensor  # (na * nb * 4 * C,) int64 bin index of each candidate, -1 = no bin
    beyond: float  # lower bound on the squared distance of any cell outside the window
    network: tuple[tuple[int, int], ...]  # comparators selecting the smallest kk candidates
    kk: int  # candidates kept sorted: K + 1 (to see ties with the next one) or C if fewer


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


def _build_tables(bins: np.ndarray, k: int, device: torch.device) -> _Tables | None:
    if k > _MAX_FAST_K:
        return None
    cols = _exact_columns(bins)
    if cols is None:
        return None
    col_a0, col_b0, layout = cols
    geo = _geometry(k)
    m = geo.m
    pad = 2 * m + 1
    sa, sb = layout.shape
    g = float(layout.grid)
    na, nb = sa + 2 * pad, sb + 2 * pad
    col_a = float(layout.a0) + (np.arange(na) - pad) * g
    col_b = float(layout.b0) + (np.arange(nb) - pad) * g
    col_a[pad : pad + sa] = col_a0
    col_b[pad : pad + sb] = col_b0
    look = np.full((na, nb), -1, dtype=np.int64)
    look[pad : pad + sa, pad : pad + sb] = layout.lookup()

    offs = _rank_offsets(m)  # (2, R)
    base_a = np.clip(np.arange(na)[:, None, None] + offs[None], 0, na - 1)  # (na, 2, R)
    base_b = np.clip(np.arange(nb)[:, None, None] + offs[None], 0, nb - 1)
    ci = np.array([c[0] for c in geo.cand])
    cj = np.array([c[1] for c in geo.cand])
    # cand[(ia * nb + ib) * 4 + sa * 2 + sb, c]
    ca = base_a[:, :, ci]  # (na, 2, C)
    cb = base_b[:, :, cj]  # (nb, 2, C)
    cand = look[ca[:, None, :, None, :], cb[None, :, None, :, :]]  # (na, nb, 2, 2, C)
    cand = cand.reshape(na * nb * 4, len(ci))
    kk = min(k + 1, len(ci))

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), device=device)

    return _Tables(
        k=k,
        geo=geo,
        a0=float(layout.a0),
        b0=float(layout.b0),
        grid=g,
        na=na,
        nb=nb,
        pad=pad,
        col_a=t(col_a),
        col_b=t(col_b),
        rank_a=t(col_a[base_a].reshape(na * 2, -1).T),
        rank_b=t(col_b[base_b].reshape(nb * 2, -1).T),
        cand_idx=t(cand.reshape(-1)),
        # Cells beyond the window are >= m + 1/2 cells away (up to rounding of the base column).
        beyond=((m + 0.5) * g) ** 2 * (1.0 - 1e-9),
        network=_selection_network(geo.cand, kk),
        kk=kk,
    )


_TABLE_CACHE: dict[tuple[bytes, tuple[int, ...], int, str], _Tables | None] = {}


def _tables(bins: np.ndarray, k: int, device: torch.device) -> _Tables | None:
    key = (bins.tobytes(), bins.shape, k, str(device))
    if key not in _TABLE_CACHE:
        if len(_TABLE_CACHE) > 32:
            _TABLE_CACHE.clear()
        _TABLE_CACHE[key] = _build_tables(bins, k, device)
    return _TABLE_CACHE[key]


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
            return _brute_knn(a, b, centres, 1)[1].reshape(bsz, h, w)
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
                idx.index_copy_(0, sel, _brute_knn(a, b, centres, 1)[1][0])
            out[s : s + step] = idx.view(-1, h * w)
        return out.view(bsz, h, w)


# --------------------------------------------------------------------------------------------
# The K nearest: fast path, tie resolution, brute force. Results are (K, N): one row per rank.


def _brute_knn(
    a: torch.Tensor, b: torch.Tensor, centres: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact K nearest of points (a, b) (float64, (M,)) over all ``centres`` (Q, 2) float64.

    Returns (squared distances (K, M) float64 ascending, bin indices (K, M) int64); ties by
    lower bin index (what a stable sort of the full distance rows gives). K = 1: ``min`` (its
    index is the first minimum, i.e. the lowest bin index). K > 1: ``topk`` of the K + 1
    smallest; rows with any equal values among them are re-done with a stable sort (without
    ties the K smallest and their order are unique).
    """
    m, q = a.shape[0], centres.shape[0]
    dist = a.new_empty((k, m))
    index = torch.empty((k, m), dtype=torch.int64, device=a.device)
    ca, cb = centres[:, 0], centres[:, 1]
    kk = min(k + 1, q)
    for s in range(0, m, _BRUTE_CHUNK):
        pa, pb = a[s : s + _BRUTE_CHUNK, None], b[s : s + _BRUTE_CHUNK, None]
        d2 = (pa - ca).square_() + (pb - cb).square_()
        if k == 1:
            val, idx = d2.min(dim=1, keepdim=True)
        else:
            val, idx = torch.topk(d2, kk, dim=1, largest=False, sorted=True)
            tie = (val[:, 1:] == val[:, :-1]).any(dim=1)
            if bool(tie.any()):
                rows = tie.nonzero().squeeze(1)
                sv, si = torch.sort(d2.index_select(0, rows), dim=1, stable=True)
                val[rows], idx[rows] = sv[:, :kk], si[:, :kk]
        dist[:, s : s + _BRUTE_CHUNK] = val[:, :k].t()
        index[:, s : s + _BRUTE_CHUNK] = idx[:, :k].t()
    return dist, index


def _axis(
    x: torch.Tensor, origin: float, col: torch.Tensor, ranks: torch.Tensor, tab: _Tables, n: int
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Per axis: nearest padded column (N,), side (N,) 0/1, and per rank the squared distance
    (N,) to that rank's column (sorted by rank unless rounding misplaced the nearest column;
    the caller checks)."""
    m, pad = tab.geo.m, tab.pad
    # clamped so that the whole window exists; clamped points see only non-bin cells
    base = torch.floor((x - origin) * (1.0 / tab.grid) + 0.5).clamp_(m - pad, n - pad - m - 1)
    base = base.long().add_(pad)
    side = (x < col.take(base)).long()  # 1: left of its column's centre, ranks go -1, +1, ...
    key = base * 2 + side
    return base, side, [(x - r.take(key)).square_() for r in ranks]


def _fast_core(
    a: torch.Tensor,
    b: torch.Tensor,
    tab: _Tables,
    out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> _CoreOut:
    """The vectorised window search for points (a, b) float64 (N,).

    Candidates are ranked by their geometric distance, bin or not. Returns (dist (K, N),
    idx (K, N), ok (N,) bool: exact unless ties (the K first are all bins, the axis lists are
    sorted and every cell left out is strictly farther), tie (N,) bool: equal distances among the
    first K + 1, the ranked squared distances of axis a then axis b (2 * (2m+1) of (N,)),
    row (N,)). ``out``: (dist, idx) buffers to write into (eager only; saves allocations).
    """
    k = tab.k
    ia, sa, ea = _axis(a, tab.a0, tab.col_a, tab.rank_a, tab, tab.na)
    ib, sb, eb = _axis(b, tab.b0, tab.col_b, tab.rank_b, tab, tab.nb)
    row = ((ia * tab.nb + ib) * 2 + sa) * 2 + sb
    vals = [ea[i] + eb[j] for i, j in tab.geo.cand]  # == (a - A)^2 + (b - B)^2, bitwise
    pos: list[torch.Tensor | int] = list(range(len(vals)))
    for i, j in tab.network:
        swap = vals[j] < vals[i]
        vals[i], vals[j] = torch.minimum(vals[i], vals[j]), torch.maximum(vals[i], vals[j])
        low = torch.where(swap, pos[j], pos[i])
        pos[i], pos[j] = low, pos[i] + pos[j] - low  # the other one; cheaper than a 2nd where
    flat = row * len(vals)
    if out is None:
        idx = torch.stack([tab.cand_idx.take(flat + p) for p in pos[:k]])
        dist = torch.stack(vals[:k])
    else:
        dist, idx = out
        for r in range(k):
            torch.take(tab.cand_idx, flat + pos[r], out=idx[r])
            dist[r].copy_(vals[r])
    ok = vals[k - 1] < tab.beyond
    for i, j in tab.geo.corners:
        ok &= vals[k - 1] < ea[i] + eb[j]
    for r in range(k):
        ok &= idx[r] >= 0
    for e in (ea, eb):
        for r in range(len(e) - 1):
            ok &= e[r + 1] >= e[r]
    tie = torch.zeros_like(ok)
    for r in range(tab.kk - 1):
        tie |= vals[r] == vals[r + 1]
    return dist, idx, ok, tie & ok, ea + eb, row


def _fast_knn(
    a: torch.Tensor,
    b: torch.Tensor,
    tab: _Tables,
    centres: torch.Tensor,
    core: _Core,
    out: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """K nearest of points (a, b) float64 (N,), exact (see module docstring), written into
    ``out`` = (squared distances (K, N) float64, bin indices (K, N) int64)."""
    k, n = tab.k, a.shape[0]
    if core is _fast_core:
        dist, idx, ok, tie, e, row = _fast_core(a, b, tab, out)
    else:
        # compiled: fixed chunk length (one compilation), padded with copies of a real point
        fill = _COMPILE_CHUNK - n
        pa = torch.cat([a, a[:1].expand(fill)]) if fill else a
        pb = torch.cat([b, b[:1].expand(fill)]) if fill else b
        dist, idx, ok, tie, e, row = core(pa, pb, tab)
        out[0].copy_(dist[:, :n])
        out[1].copy_(idx[:, :n])
        dist, idx, ok, tie, row = out[0], out[1], ok[:n], tie[:n], row[:n]
    if bool(tie.any()):
        # exact ties: order all candidates by (distance, bin index), non-bins last
        cand, n_rank = tab.geo.cand, 2 * tab.geo.m + 1
        n_cand = len(cand)
        rows = tie.nonzero().squeeze(1)
        er = [x.index_select(0, rows) for x in e]
        d2 = torch.stack([er[i] + er[n_rank + j] for i, j in cand], dim=1)
        ci = tab.cand_idx.view(-1, n_cand).index_select(0, row[rows])
        key = torch.where(ci >= 0, ci, torch.iinfo(torch.int64).max)
        order = torch.argsort(key, dim=1, stable=True)
        dd = d2.masked_fill(ci < 0, torch.inf).gather(1, order)
        o2 = torch.argsort(dd, dim=1, stable=True)[:, :k]
        dist[:, rows] = dd.gather(1, o2).t()
        idx[:, rows] = ci.gather(1, order.gather(1, o2)).t()
    bad = (~ok).nonzero().squeeze(1)
    if bad.numel():
        bd, bi = _brute_knn(a[bad], b[bad], centres, k)
        dist[:, bad] = bd
        idx[:, bad] = bi


_CoreOut = tuple[
    torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor
]
_Core = Callable[[torch.Tensor, torch.Tensor, _Tables], _CoreOut]
_compiled_core: _Core | None = None
_compile_failed = False


def _pick_core(n: int, device: torch.device, compile: bool | None) -> _Core:
    """Eager core, or the ``torch.compile``d one: only for CPU inputs of at least
    ``_COMPILE_MIN_PIXELS`` pixels (``compile=None``) or when asked (``compile=True``), and never
    again after a failed compilation (no C++ compiler, unsupported platform, ...)."""
    global _compiled_core
    if _compile_failed or compile is False or device.type != "cpu":
        return _fast_core
    if compile is None and (n < _COMPILE_MIN_PIXELS or os.environ.get("COLORCLI_NO_COMPILE")):
        return _fast_core
    if _compiled_core is None:
        _compiled_core = torch.compile(_fast_core, dynamic=False)
    return _compiled_core


def _run_chunks(
    a: torch.Tensor, b: torch.Tensor, tab: _Tables, centres: torch.Tensor, core: _Core
) -> tuple[torch.Tensor, torch.Tensor]:
    global _compile_failed
    n = a.shape[0]
    dist = torch.empty((tab.k, n), dtype=torch.float64, device=a.device)
    idx = torch.empty((tab.k, n), dtype=torch.int64, device=a.device)
    chunk = _CHUNK if core is _fast_core else _COMPILE_CHUNK
    try:
        for s in range(0, n, chunk):
            sl = slice(s, s + chunk)
            _fast_knn(a[sl], b[sl], tab, centres, core, (dist[:, sl], idx[:, sl]))
    except Exception as exc:  # any compiler/toolchain failure: remember it, run eager
        if core is _fast_core:
            raise
        _compile_failed = True
        _log.warning("torch.compile of the soft encoder failed (%s); using eager mode", exc)
        return _run_chunks(a, b, tab, centres, _fast_core)
    return dist, idx


def _knn(
    ab: torch.Tensor, bins: np.ndarray, k: int, compile: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(squared distances (K, N) float64, indices (K, N) int64) for ab (B, 2, H, W)."""
    _check_ab(ab)
    q = len(bins)
    if not 1 <= k <= q:
        raise ValueError(f"k must be between 1 and the number of bins ({q}), got {k}")
    device = ab.device
    with torch.no_grad():
        a = ab[:, 0].reshape(-1).to(torch.float64)
        b = ab[:, 1].reshape(-1).to(torch.float64)
        centres = torch.as_tensor(bins, device=device)
        tab = _tables(bins, k, device)
        if tab is None:
            return _brute_knn(a, b, centres, k)
        if a.shape[0] == 0:
            empty = a.new_zeros((k, 0))
            return empty, empty.long()
        return _run_chunks(a, b, tab, centres, _pick_core(a.shape[0], device, compile))


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

    ``compile``: run the window search under ``torch.compile`` (CPU only; same results). None
    (default) compiles lazily, once per process and K, for inputs of at least 2**20 pixels (a
    training batch), where the one-off compile pays for itself, unless the environment sets
    ``COLORCLI_NO_COMPILE``; a failed compilation falls back to eager mode for good.
    """
    arr = _bins_numpy(bins)
    if k == 1:  # one neighbour: weight 1, no distances needed
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        _check_ab(ab)
        idx1 = _nearest(ab, arr).unsqueeze(1)
        return idx1, torch.ones(idx1.shape, dtype=ab.dtype, device=ab.device)
    d2, idx = _knn(ab, arr, k, compile)
    weight = gaussian_weights(d2, sigma, ab.dtype)
    return _to_bkhw(idx, ab), _to_bkhw(weight, ab)


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

"""The fast exact K-nearest-bins engine behind ``color.encode.soft_encode`` (CPU, numpy).

Contract (the same as the brute force): the squared distance of a pixel (a, b) to bin q is
``(a - A_q)**2 + (b - B_q)**2`` evaluated in float64; the K nearest are the K smallest of these
values, exactly equal values ordered by lower bin index; nearest first.

How. The ab plane around the bins is cut into small square sub-cells (a tenth of the bin spacing
a side). For each sub-cell a table lists, in bin-index order, every bin that can be among the
K + 1 nearest of *any* point of the (slightly enlarged) sub-cell: a rigorous superset, from the
bound ``min over the cell of |p - X| <= (K+1)-th smallest over Y of max over the cell of
|p - Y|``. For the reference bins and K = 5 that is 6 to 8 bins (``C`` = 8 slots, unused ones
hold a far-away dummy). Per pixel: one table row gather, C float64 distances (the brute force's
own formula, bit for bit), then a sort of C small integers: each distance is rounded to float32
(monotone), its bits read as an int32 (monotone for non-negative floats), and its lowest bits
replaced by the slot number (slots are in bin-index order). A fixed comparator network
(Batcher's, pruned to the K first outputs) orders these keys with elementwise ``minimum`` /
``maximum`` only; the slot comes back from the low bits. The key order equals the exact
(distance, index) order except where two keys share their high bits; a pixel is accepted only
if, among its K first, every adjacent pair with equal high bits has exactly equal float64
distances (then slot order = index order is the right tie break) and the K-th and (K+1)-th
differ in their high bits (so no bin beyond the K-th can be nearer). Every other pixel (near
ties, exact ties at the K-th place, outside the table, a sub-cell with more than C candidates)
goes to an exact brute force over all bins. Chunks of a few thousand pixels keep every
temporary in cache; buffers are reused. No compilation, no first-call stall: the table is built
in numpy once per (bins, K) and process (tens of milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from colorcli.color import _scratch

# Pixels per chunk of the engine (every (C, chunk) temporary stays in L2).
CHUNK = 8192
# Rows per chunk of the brute force ((rows, Q) float64 distance block).
BRUTE_CHUNK = 4096
# Sub-cells per bin spacing, per axis.
_RES = 10
# At most this many sub-cells in a table (coarser sub-cells for sparse, wide bin sets).
_MAX_SUBCELLS = 1 << 18
_DUMMY = 1.0e7  # coordinate of the padding "bin": farther than any real one from the table


def brute_knn(
    a: torch.Tensor, b: torch.Tensor, centres: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact K nearest of points (a, b) (float64, (M,)) over all ``centres`` (Q, 2) float64.

    Returns (squared distances (K, M) float64 ascending, bin indices (K, M) int64); ties by
    lower bin index (what a stable sort of the full distance rows gives). K = 1: ``min`` (its
    index is the first minimum). K > 1: ``topk`` of the K + 1 smallest; rows with equal values
    among them are redone with a stable sort (without ties the K smallest and their order are
    unique).
    """
    m, q = a.shape[0], centres.shape[0]
    dist = a.new_empty((k, m))
    index = torch.empty((k, m), dtype=torch.int64, device=a.device)
    ca, cb = centres[:, 0], centres[:, 1]
    kk = min(k + 1, q)
    for s in range(0, m, BRUTE_CHUNK):
        pa, pb = a[s : s + BRUTE_CHUNK, None], b[s : s + BRUTE_CHUNK, None]
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
        dist[:, s : s + BRUTE_CHUNK] = val[:, :k].t()
        index[:, s : s + BRUTE_CHUNK] = idx[:, :k].t()
    return dist, index


# --------------------------------------------------------------------------------------------
# Comparator networks


def merge_network(n: int) -> list[tuple[int, int]]:
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


@lru_cache(maxsize=32)
def selection_network(n: int, outputs: int) -> tuple[tuple[int, int], ...]:
    """Comparators that leave the ``outputs`` smallest of ``n`` wires sorted on wires
    0..outputs-1: Batcher's network minus the comparators that cannot reach those wires."""
    needed = set(range(outputs))
    kept: list[tuple[int, int]] = []
    for i, j in reversed(merge_network(n)):
        if i in needed or j in needed:
            kept.append((i, j))
            needed.update((i, j))
    return tuple(kept[::-1])


# --------------------------------------------------------------------------------------------
# The sub-cell table


@dataclass(frozen=True)
class Slots:
    """Candidate rows of one slot width C (a power of two): row r lists the candidates of one
    sub-cell in bin-index order, padded with a far-away dummy."""

    bits: int  # C = 2**bits
    coord_a: np.ndarray  # (rows, C) float64 a of each slot's bin (dummy: far away)
    coord_b: np.ndarray  # (rows, C)
    index: np.ndarray  # (rows * C,) int64 bin index of each slot (dummy: 0, never used)
    network: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Table:
    k: int
    lo_a: float  # table origin
    lo_b: float
    inv_h: float  # 1 / sub-cell side
    na: int  # sub-cells per axis
    nb: int
    narrow: Slots  # C >= K + 1 (8 for K = 5), one row per sub-cell
    wide: Slots  # 2C, rows only for the sub-cells with more than C candidates
    wide_row: np.ndarray  # (S,) int64 row in ``wide``; -1: fits ``narrow``; -2: neither


def _spacing(bins: np.ndarray) -> float:
    """Median nearest-neighbour distance between bins (the table's length scale)."""
    sample = bins[:: max(1, len(bins) // 512)]
    d2 = ((sample[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    d2[d2 == 0] = np.inf
    nn = np.sqrt(d2.min(axis=1))
    finite = nn[np.isfinite(nn)]
    return float(np.median(finite)) if finite.size else 1.0


def _candidates(
    x0: np.ndarray, y0: np.ndarray, side: float, pa: np.ndarray, pb: np.ndarray, k: int
) -> np.ndarray:
    """Boolean (M, P): bin p can be among the K nearest of some point of the square
    ``[x0, x0 + side] x [y0, y0 + side]`` (rows), for bins with coordinates pa, pb (M, P)
    (per row; +inf = no bin). A superset: its distance to the square is at most the K-th
    smallest farthest distance to the square, with a relative slack far above rounding. Any
    other bin is then, at every point of the square, farther than K candidates by more than
    rounding, so the exact (float64, ties by index) K nearest are all candidates."""
    x1, y1 = x0 + side, y0 + side
    dx = np.maximum(np.maximum(x0[:, None] - pa, pa - x1[:, None]), 0.0)
    dy = np.maximum(np.maximum(y0[:, None] - pb, pb - y1[:, None]), 0.0)
    near = dx * dx + dy * dy
    dx = np.maximum(np.abs(x0[:, None] - pa), np.abs(x1[:, None] - pa))
    dy = np.maximum(np.abs(y0[:, None] - pb), np.abs(y1[:, None] - pb))
    far = dx * dx + dy * dy
    thr = np.partition(far, k - 1, axis=1)[:, k - 1]
    return near <= thr[:, None] * (1.0 + 1e-9) + 1e-300


def _slots(lst: np.ndarray, fine: np.ndarray, bins: np.ndarray, bits: int, k: int) -> Slots:
    """Rows of C = 2**bits slots from candidate lists ``lst`` (M, W) (index order, -1 pad)
    masked by ``fine`` (M, W) (each row at most C candidates)."""
    c = 1 << bits
    pos = np.argsort(~fine, axis=1, kind="stable")[:, :c]
    idx = np.where(np.take_along_axis(fine, pos, 1), np.take_along_axis(lst, pos, 1), -1)
    if idx.shape[1] < c:
        idx = np.pad(idx, ((0, 0), (0, c - idx.shape[1])), constant_values=-1)
    real = idx >= 0
    safe = np.maximum(idx, 0)
    return Slots(
        bits=bits,
        coord_a=np.ascontiguousarray(np.where(real, bins[safe, 0], _DUMMY)),
        coord_b=np.ascontiguousarray(np.where(real, bins[safe, 1], _DUMMY)),
        index=np.ascontiguousarray(safe.reshape(-1)),
        network=selection_network(c, k + 1),
    )


def build_table(bins: np.ndarray, k: int) -> Table | None:
    """Sub-cell table for ``bins`` (Q, 2) float64 and K, or None when the engine does not
    serve (fewer than K + 1 bins, K + 1 > 16, or a very sparse, wide bin set)."""
    q = len(bins)
    bits = max(3, (k).bit_length())  # narrow slots 2**bits >= K + 1
    if q < k + 1 or bits > 4:
        return None
    g = _spacing(bins)
    # bins and the centres of grid cells fall on sub-cell centres for a regular grid
    lo = bins.min(axis=0) - g - 0.5 * g / _RES
    hi = bins.max(axis=0) + g
    h = g / _RES
    na, nb = (int(x) for x in np.ceil((hi - lo) / h))
    if na * nb > _MAX_SUBCELLS:
        return None
    # Coarse blocks of half a spacing a side: candidates over all bins.
    blk_n = max(1, _RES // 2)
    ba, bb = -(-na // blk_n), -(-nb // blk_n)
    gi, gj = (x.ravel() for x in np.meshgrid(np.arange(ba), np.arange(bb), indexing="ij"))
    eps = 1e-7 * h  # enlarged: a pixel's computed sub-cell may be off by rounding at its edges
    bside = blk_n * h
    pa = np.broadcast_to(bins[:, 0], (len(gi), q))
    pb = np.broadcast_to(bins[:, 1], (len(gi), q))
    coarse = _candidates(
        lo[0] + gi * bside - eps, lo[1] + gj * bside - eps, bside + 2 * eps, pa, pb, k
    )
    width = int(coarse.sum(axis=1).max())
    order = np.argsort(~coarse, axis=1, kind="stable")[:, :width]
    blist = np.where(np.take_along_axis(coarse, order, 1), order, -1)  # index order, -1 pad
    # Fine: every sub-cell against its block's list.
    si, sj = (x.ravel() for x in np.meshgrid(np.arange(na), np.arange(nb), indexing="ij"))
    lst = blist[(si // blk_n) * bb + (sj // blk_n)]  # (S, width)
    have = lst >= 0
    ca = np.where(have, bins[np.maximum(lst, 0), 0], np.inf)
    cb = np.where(have, bins[np.maximum(lst, 0), 1], np.inf)
    fine = _candidates(lo[0] + si * h - eps, lo[1] + sj * h - eps, h + 2 * eps, ca, cb, k)
    fine &= have
    count = fine.sum(axis=1)
    narrow_ok = count <= 1 << bits
    wide_sel = np.flatnonzero(~narrow_ok & (count <= 2 << bits))
    wide_row = np.where(narrow_ok, -1, -2).astype(np.int64)
    wide_row[wide_sel] = np.arange(len(wide_sel))
    return Table(
        k=k,
        lo_a=float(lo[0]),
        lo_b=float(lo[1]),
        inv_h=1.0 / h,
        na=na,
        nb=nb,
        narrow=_slots(lst, fine & narrow_ok[:, None], bins, bits, k),
        wide=_slots(lst[wide_sel], fine[wide_sel], bins, bits + 1, k),
        wide_row=wide_row,
    )


_TABLES: dict[tuple[bytes, int], Table | None] = {}


def table(bins: np.ndarray, k: int) -> Table | None:
    """The cached table of ``bins`` (Q, 2) float64 and K (built once per process)."""
    key = (bins.tobytes(), k)
    if key not in _TABLES:
        if len(_TABLES) > 16:
            _TABLES.clear()
        _TABLES[key] = build_table(bins, k)
    return _TABLES[key]


# --------------------------------------------------------------------------------------------
# The search


_OWNER = "knn"  # this module's buffers in the shared scratch pools


def work(n: int) -> _scratch.Pool:
    """The scratch buffers of this engine for chunks of ``n`` pixels."""
    return _scratch.pool(_OWNER, n)


def _locate(
    tab: Table, a: np.ndarray, b: np.ndarray, w: _scratch.Pool
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-cell (n,) int64 of each point (clamped) and whether it lies inside the table."""
    n = w.n
    u, v = w.get("u", (n,)), w.get("v", (n,))
    inside, tmp = w.get("inside", (n,), bool), w.get("tmp", (n,), bool)
    np.subtract(a, tab.lo_a, out=u)
    u *= tab.inv_h
    np.subtract(b, tab.lo_b, out=v)
    v *= tab.inv_h
    np.greater_equal(u, 0.0, out=inside)
    inside &= np.less(u, tab.na, out=tmp)
    inside &= np.greater_equal(v, 0.0, out=tmp)
    inside &= np.less(v, tab.nb, out=tmp)
    np.clip(u, 0.0, tab.na - 1, out=u)
    np.clip(v, 0.0, tab.nb - 1, out=v)
    s, sv = w.get("s", (n,), np.int64), w.get("sv", (n,), np.int64)
    np.copyto(s, u, casting="unsafe")  # truncation = floor (non-negative)
    np.copyto(sv, v, casting="unsafe")
    s *= tab.nb
    s += sv
    return s, inside


def _search(
    sl: Slots,
    row: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    k: int,
    w: _scratch.Pool,
    dist: np.ndarray,
    index: np.ndarray,
) -> np.ndarray:
    """K nearest of the points (a, b) float64 (n,) among the candidates of their rows
    ``row`` (n,) into dist (K, n) float64 and index (K, n) int64. Returns the (n,) bool mask of
    points whose order the keys could not settle (near ties)."""
    n, c = a.shape[0], 1 << sl.bits
    d, db = w.get("d", (n, c)), w.get("db", (n, c))
    np.take(sl.coord_a, row, axis=0, out=d, mode="clip")
    np.take(sl.coord_b, row, axis=0, out=db, mode="clip")
    # flat (n * C) operands: numpy's inner loops are slow on a broadcast axis of length C
    np.subtract(np.repeat(a, c).reshape(n, c), d, out=d)
    np.square(d, out=d)
    np.subtract(np.repeat(b, c).reshape(n, c), db, out=db)
    np.square(db, out=db)
    d += db  # (n, C): (a - A)^2 + (b - B)^2, the brute force's expression bit for bit
    keys = w.get("keys", (c, n), np.int32)
    with np.errstate(over="ignore"):
        np.copyto(keys.view(np.float32), d.T, casting="same_kind")
    low = (1 << sl.bits) - 1
    keys &= np.int32(~low)
    keys |= np.arange(c, dtype=np.int32)[:, None]
    wires = list(keys)
    spare = w.get("spare", (n,), np.int32)
    for i, j in sl.network:
        np.minimum(wires[i], wires[j], out=spare)
        np.maximum(wires[i], wires[j], out=wires[j])
        wires[i], spare = spare, wires[i]
    top = w.get("top", (k + 1, n), np.int32)
    for r in range(k + 1):
        top[r] = wires[r]
    hi = np.bitwise_or(top, low, out=w.get("hi", (k + 1, n), np.int32))
    eq = np.equal(hi[1:], hi[:-1], out=w.get("eq", (k, n), bool))
    top &= low  # slots
    flat = w.get("flat", (k, n), np.int64)
    np.add(top[:k], w.const(f"ar{c}", lambda: np.arange(n, dtype=np.int64) * c), out=flat)
    np.take(d.reshape(-1), flat, out=dist, mode="clip")
    bad = eq[k - 1].copy()
    if k > 1 and eq[: k - 1].any():
        bad |= (eq[: k - 1] & (dist[1:] != dist[:-1])).any(axis=0)
    sv = np.multiply(row, c, out=w.get("sv", (n,), np.int64))
    np.add(top[:k], sv, out=flat)
    np.take(sl.index, flat, out=index, mode="clip")
    return bad


def _weights(dist: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian weights (K, n) float64 of squared distances (K, n), nearest first:
    ``exp(-(d - d_0) / (2 sigma^2))`` over their sum (``encode.gaussian_weights``' formula;
    the nearest's term is exp(0) = 1 exactly, so it is not computed)."""
    w = np.empty_like(dist)
    np.subtract(dist[1:], dist[:1], out=w[1:])
    w[1:] *= -0.5 / (sigma * sigma)
    np.exp(w[1:], out=w[1:])
    w[0] = 1.0
    total = w[1:].sum(axis=0)
    total += 1.0
    w /= total
    return w


def _chunks(bsz: int, hw: int) -> list[tuple[int, int, int, int]]:
    """(first image, last image + 1, first pixel, last pixel + 1) blocks of about CHUNK pixels:
    whole images grouped when small, pixel ranges of one image when large."""
    if hw >= CHUNK:
        return [(i, i + 1, p, min(hw, p + CHUNK)) for i in range(bsz) for p in range(0, hw, CHUNK)]
    g = max(1, CHUNK // max(1, hw))
    return [(i, min(bsz, i + g), 0, hw) for i in range(0, bsz, g)]


def soft_encode(
    ab: np.ndarray, bins: np.ndarray, tab: Table, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact soft encoding of ab ``(B, 2, H, W)`` (float32 or float64): (bin indices
    ``(B, K, H, W)`` int64 nearest first, ties by lower index; Gaussian weights ``(B, K, H, W)``
    in ab's dtype, normalised over K)."""
    bsz, _, h, wd = ab.shape
    hw, k = h * wd, tab.k
    out_i = np.empty((bsz, k, hw), dtype=np.int64)
    out_w = np.empty((bsz, k, hw), dtype=ab.dtype)
    a_all = ab[:, 0].reshape(bsz, hw)
    b_all = ab[:, 1].reshape(bsz, hw)
    wide: list[np.ndarray] = []
    redo: list[np.ndarray] = []
    for i0, i1, p0, p1 in _chunks(bsz, hw):
        ni, npx = i1 - i0, p1 - p0
        n = ni * npx
        w = work(n)
        a, b = w.get("a", (n,)), w.get("b", (n,))
        np.copyto(a.reshape(ni, npx), a_all[i0:i1, p0:p1])
        np.copyto(b.reshape(ni, npx), b_all[i0:i1, p0:p1])
        cell, inside = _locate(tab, a, b, w)
        wrow = tab.wide_row.take(cell, mode="clip")
        dist, index = w.get("dist", (k, n)), w.get("index", (k, n), np.int64)
        bad = _search(tab.narrow, cell, a, b, k, w, dist, index)
        bad |= ~inside
        more = wrow >= 0
        more &= inside
        bad |= wrow == -2
        flag = more | bad
        if flag.any():
            # global pixel positions (image * hw + pixel) of the chunk's flagged points
            pos = np.flatnonzero(flag)
            glob = (pos // npx + i0) * hw + pos % npx + p0
            wide.append(glob[more[pos]])
            redo.append(glob[bad[pos] & ~more[pos]])
        wt = _weights(dist, sigma)
        out_w[i0:i1, :, p0:p1] = wt.reshape(k, ni, npx).transpose(1, 0, 2)
        out_i[i0:i1, :, p0:p1] = index.reshape(k, ni, npx).transpose(1, 0, 2)
    flat_a, flat_b = a_all.reshape(-1), b_all.reshape(-1)
    if wide:
        pts = np.concatenate(wide)
        for s in range(0, len(pts), CHUNK):
            sel = pts[s : s + CHUNK]
            m = len(sel)
            size = 1 << max(10, (m - 1).bit_length())  # few distinct buffer sizes
            sel = np.concatenate([sel, np.full(size - m, sel[-1])]) if size > m else sel
            w = work(size)
            pa, pb = w.get("a", (size,)), w.get("b", (size,))
            np.copyto(pa, flat_a[sel])
            np.copyto(pb, flat_b[sel])
            cell, _ = _locate(tab, pa, pb, w)
            dist, index = w.get("dist", (k, size)), w.get("index", (k, size), np.int64)
            bad = _search(tab.wide, tab.wide_row[cell], pa, pb, k, w, dist, index)[:m]
            good = ~bad
            _scatter(
                out_i,
                out_w,
                sel[:m][good],
                index[:, :m][:, good],
                _weights(dist[:, :m][:, good], sigma),
            )
            if bad.any():
                redo.append(sel[:m][bad])
    if redo:
        rows = np.concatenate(redo)
        ta = torch.from_numpy(flat_a[rows].astype(np.float64))
        tb = torch.from_numpy(flat_b[rows].astype(np.float64))
        bd, bi = brute_knn(ta, tb, torch.from_numpy(bins), k)
        _scatter(out_i, out_w, rows, bi.numpy(), _weights(bd.numpy(), sigma))
    return out_i.reshape(bsz, k, h, wd), out_w.reshape(bsz, k, h, wd)


def _scatter(
    out_i: np.ndarray, out_w: np.ndarray, glob: np.ndarray, index: np.ndarray, wt: np.ndarray
) -> None:
    """Write (K, m) results of the pixels at global positions ``glob`` (m,) into (B, K, HW)."""
    hw = out_i.shape[2]
    img, pix = glob // hw, glob % hw
    out_i[img, :, pix] = index.T
    out_w[img, :, pix] = wt.T

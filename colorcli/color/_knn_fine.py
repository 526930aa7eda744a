"""The fine-table K-nearest-bins engine behind ``color.encode.soft_encode`` (CPU, numpy).

Same contract as ``colorcli.color._knn`` (and the brute force): squared distances
``(a - A_q)**2 + (b - B_q)**2`` in float64, the K smallest, exactly equal values ordered by
lower bin index, nearest first.

Why another table. Per pixel the work is dominated by gathers (about 1 ns per element with
numpy) and by the number of candidates each pixel ranks. Sub-cells of 1/40 of the bin spacing
(0.25 ab units for the reference bins) make the rigorous candidate superset of ``_knn`` tiny:
for 99 % of the sub-cells (and of photo pixels) it holds at most K + 1 bins (exactly K, i.e.
the K-nearest *set* is constant over the sub-cell, for about 75 %). So every pixel ranks just
``C = K + 1`` candidates (a far-away dummy pads the rows with K), with a fixed sorting network
on int64 keys: the float64 distance's bits (monotone for non-negative floats) with the lowest 3
bits replaced by the slot (slots are in bin-index order). The sorted keys give the order, the
slot (hence, by one gather, the bin) and the distance to 2**-49 relative (for the weights).
The order is exact except where two adjacent keys among the first K + 1 share their high bits:
those pixels get their exact float64 distances rechecked (exactly equal values are then
correctly ordered by slot = bin index; the grey pixels a = b = 0 of photos are such exact
ties), and any unequal pair goes to the brute force. Sub-cells with more than K + 1 candidates
go to ``_knn``'s wide-row search (16 slots), the table's border ring (every pixel outside the
table is clamped onto it) and the rest to the brute force.

Distinct candidate rows are shared (about 10^4 for the reference bins), so the sub-cell table
is one int16 (or int32) per sub-cell: 1.5 MB for the reference bins. Building it takes about a
second, so it is cached on disk (``cache_dir()``, an ``.npz`` of plain arrays written
atomically, loaded with ``allow_pickle=False``, checked, rebuilt when unreadable or stale); a
process loads it in milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from colorcli.color import _knn, _scratch
from colorcli.fsutil import atomic_write

# Sub-cells per bin spacing, per axis.
RES = 40
# Pixels per chunk (every (C, chunk) int64 temporary is 6 x 128 KB: L2/L3 resident).
CHUNK = 16384
# At most this many sub-cells (else: no fine table, ``_knn``'s coarse one serves).
_MAX_SUBCELLS = 1 << 22
# Fine cells per build step (bounds the build's temporaries).
_BUILD_STEP = 1 << 15
_SLOT_BITS = 3  # slot number in the low bits of a key (narrow rows: C <= 8)
_DUMMY = 1.0e7
_WIDE_BITS = 4  # wide rows: 16 slots
FORMAT = 1  # bump when the table layout or its construction changes


def cache_dir() -> Path:
    """Folder of the cached tables: ``$COLORCLI_CACHE/knn`` or
    ``$XDG_CACHE_HOME/colorcli/knn`` (default ``~/.cache/colorcli/knn``)."""
    root = os.environ.get("COLORCLI_CACHE")
    if root:
        return Path(root).expanduser() / "knn"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "colorcli" / "knn"


@dataclass(frozen=True)
class FineTable:
    k: int
    lo_a: float
    lo_b: float
    inv_h: float
    na: int
    nb: int
    code: np.ndarray  # (na * nb,) int16/int32: narrow row, or ``rows`` (not narrow)
    rows: int  # narrow rows R (row R: all dummies)
    coord_a: np.ndarray  # (C * (R + 1),) float64, slot-major: [slot * (R + 1) + row]
    coord_b: np.ndarray
    index: np.ndarray  # (C * (R + 1),) int64 bin of each slot (dummy: 0)
    wide_cells: np.ndarray  # (W,) int64 sorted sub-cells served by the wide rows
    wide: _knn.Slots  # W rows of 16 slots
    network: tuple[tuple[int, int], ...]

    @property
    def width(self) -> int:
        return self.k + 1


def _key(bins: np.ndarray, k: int) -> str:
    digest = hashlib.sha256()
    digest.update(f"fine-v{FORMAT}-res{RES}-k{k}-q{len(bins)}".encode())
    digest.update(np.ascontiguousarray(bins, dtype="<f8").tobytes())
    return digest.hexdigest()[:32]


def build_arrays(bins: np.ndarray, k: int) -> dict[str, np.ndarray] | None:
    """The table's plain arrays for ``bins`` (Q, 2) float64 and K, or None when it does not
    serve (fewer than K + 1 bins, K + 1 > 8, too many sub-cells)."""
    q, cn = len(bins), k + 1
    if q < cn or cn > 1 << _SLOT_BITS:
        return None
    g = _knn._spacing(bins)
    h = g / RES
    lo = bins.min(axis=0) - g - 0.5 * h
    hi = bins.max(axis=0) + g
    na, nb = (int(x) for x in np.ceil((hi - lo) / h))
    if na * nb > _MAX_SUBCELLS or na < 3 or nb < 3:
        return None
    eps = 1e-6 * h  # a pixel's computed sub-cell may be off by rounding near its edges
    # coarse blocks (half a spacing a side): candidates over all bins
    blk_n = max(1, RES // 2)
    ba, bb = -(-na // blk_n), -(-nb // blk_n)
    gi, gj = (x.ravel() for x in np.meshgrid(np.arange(ba), np.arange(bb), indexing="ij"))
    bside = blk_n * h
    pa = np.broadcast_to(bins[:, 0], (len(gi), q))
    pb = np.broadcast_to(bins[:, 1], (len(gi), q))
    coarse = _knn._candidates(
        lo[0] + gi * bside - eps, lo[1] + gj * bside - eps, bside + 2 * eps, pa, pb, k
    )
    width = int(coarse.sum(axis=1).max())
    order = np.argsort(~coarse, axis=1, kind="stable")[:, :width]
    blist = np.where(np.take_along_axis(coarse, order, 1), order, -1)  # index order, -1 pad
    total = na * nb
    lists = np.full((total, 1 << _WIDE_BITS), -1, dtype=np.int64)
    count = np.empty(total, dtype=np.int64)
    for s in range(0, total, _BUILD_STEP):
        cell = np.arange(s, min(total, s + _BUILD_STEP))
        si, sj = cell // nb, cell % nb
        lst = blist[(si // blk_n) * bb + (sj // blk_n)]
        have = lst >= 0
        ca = np.where(have, bins[np.maximum(lst, 0), 0], np.inf)
        cb = np.where(have, bins[np.maximum(lst, 0), 1], np.inf)
        fine = _knn._candidates(lo[0] + si * h - eps, lo[1] + sj * h - eps, h + 2 * eps, ca, cb, k)
        fine &= have
        count[cell] = fine.sum(axis=1)
        pos = np.argsort(~fine, axis=1, kind="stable")[:, : 1 << _WIDE_BITS]
        sel = np.take_along_axis(fine, pos, 1)
        lists[cell, : pos.shape[1]] = np.where(sel, np.take_along_axis(lst, pos, 1), -1)
    ring = np.zeros((na, nb), dtype=bool)
    ring[0], ring[-1], ring[:, 0], ring[:, -1] = True, True, True, True
    ring_flat = ring.ravel()
    narrow = (count <= cn) & ~ring_flat
    # distinct narrow rows
    rows_all = lists[narrow, :cn]
    uniq, inverse = np.unique(rows_all, axis=0, return_inverse=True)
    r = len(uniq)
    code_dtype = np.int16 if r < np.iinfo(np.int16).max else np.int32
    code = np.full(total, r, dtype=code_dtype)
    code[narrow] = inverse.reshape(-1)
    wide = np.flatnonzero(~narrow & ~ring_flat & (count <= 1 << _WIDE_BITS))
    return {
        "geometry": np.array([lo[0], lo[1], 1.0 / h], dtype=np.float64),
        "shape": np.array([k, na, nb], dtype=np.int64),
        "code": code,
        "rows": uniq.astype(np.int16),
        "wide_cells": wide.astype(np.int64),
        "wide_rows": lists[wide].astype(np.int16),
    }


def _from_arrays(arr: dict[str, np.ndarray], bins: np.ndarray, k: int) -> FineTable:
    """The table of the plain arrays (validated: ValueError when inconsistent)."""
    geo, shape = arr["geometry"], arr["shape"]
    code, rows = arr["code"], arr["rows"]
    wide_cells, wide_rows = arr["wide_cells"], arr["wide_rows"]
    if geo.shape != (3,) or geo.dtype != np.float64 or not np.isfinite(geo).all():
        raise ValueError("geometry")
    if shape.shape != (3,) or int(shape[0]) != k:
        raise ValueError("shape")
    na, nb = int(shape[1]), int(shape[2])
    cn, q = k + 1, len(bins)
    if code.dtype not in (np.int16, np.int32) or code.shape != (na * nb,):
        raise ValueError("code")
    if rows.dtype != np.int16 or rows.ndim != 2 or rows.shape[1] != cn:
        raise ValueError("rows")
    r = len(rows)
    if code.min() < 0 or code.max() > r:
        raise ValueError("code range")
    if rows.size and (rows.min() < -1 or rows.max() >= q or (rows[:, :k] < 0).any()):
        raise ValueError("rows range")
    if wide_rows.dtype != np.int16 or wide_rows.shape != (len(wide_cells), 1 << _WIDE_BITS):
        raise ValueError("wide rows")
    if wide_cells.dtype != np.int64 or (
        len(wide_cells)
        and (
            wide_cells.min() < 0 or wide_cells.max() >= na * nb or np.any(np.diff(wide_cells) <= 0)
        )
    ):
        raise ValueError("wide cells")
    if wide_rows.size and (wide_rows.min() < -1 or wide_rows.max() >= q):
        raise ValueError("wide rows range")
    full = np.vstack([rows.astype(np.int64), np.full((1, cn), -1, dtype=np.int64)])  # (R+1, C)
    real = full >= 0
    safe = np.maximum(full, 0)
    ca = np.where(real, bins[safe, 0], _DUMMY)
    cb = np.where(real, bins[safe, 1], _DUMMY)
    wl = wide_rows.astype(np.int64)
    wide = _knn.Slots(
        bits=_WIDE_BITS,
        coord_a=np.ascontiguousarray(np.where(wl >= 0, bins[np.maximum(wl, 0), 0], _DUMMY)),
        coord_b=np.ascontiguousarray(np.where(wl >= 0, bins[np.maximum(wl, 0), 1], _DUMMY)),
        index=np.ascontiguousarray(np.maximum(wl, 0).reshape(-1)),
        network=_knn.selection_network(1 << _WIDE_BITS, k + 1),
    )
    return FineTable(
        k=k,
        lo_a=float(geo[0]),
        lo_b=float(geo[1]),
        inv_h=float(geo[2]),
        na=na,
        nb=nb,
        code=code,
        rows=r,
        coord_a=np.ascontiguousarray(ca.T).reshape(-1),
        coord_b=np.ascontiguousarray(cb.T).reshape(-1),
        index=np.ascontiguousarray(safe.T).reshape(-1),
        wide_cells=wide_cells,
        wide=wide,
        network=_knn.selection_network(cn, cn),
    )


_NAMES = ("geometry", "shape", "code", "rows", "wide_cells", "wide_rows")


def _load(path: Path, bins: np.ndarray, k: int) -> FineTable | None:
    """The cached table at ``path``, or None when missing, unreadable or inconsistent."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if sorted(data.files) != sorted(_NAMES):
                return None
            arr = {name: data[name] for name in _NAMES}
        return _from_arrays(arr, bins, k)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _save(path: Path, arr: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arr)  # type: ignore[arg-type]

        atomic_write(path, write)
    except OSError:
        pass  # a read-only or full cache: the table is rebuilt next time


_TABLES: dict[tuple[bytes, int], FineTable | None] = {}


def cache_path(bins: np.ndarray, k: int) -> Path:
    return cache_dir() / f"fine-{_key(bins, k)}.npz"


def table(bins: np.ndarray, k: int) -> FineTable | None:
    """The table of ``bins`` (Q, 2) float64 and K: from memory, else from the disk cache, else
    built (about a second) and cached. None when it does not serve these bins and K."""
    key = (bins.tobytes(), k)
    if key in _TABLES:
        return _TABLES[key]
    if len(_TABLES) > 16:
        _TABLES.clear()
    path = cache_path(bins, k)
    tab = _load(path, bins, k) if path.is_file() else None
    if tab is None:
        arr = build_arrays(bins, k)
        if arr is not None:
            _save(path, arr)
            tab = _from_arrays(arr, bins, k)
    _TABLES[key] = tab
    return tab


# --------------------------------------------------------------------------------------------
# The search


_OWNER = "fine"  # this module's buffers in the shared scratch pools


def _chunks(bsz: int, hw: int) -> list[tuple[int, int, int, int]]:
    if hw >= CHUNK:
        return [(i, i + 1, p, min(hw, p + CHUNK)) for i in range(bsz) for p in range(0, hw, CHUNK)]
    g = max(1, CHUNK // max(1, hw))
    return [(i, min(bsz, i + g), 0, hw) for i in range(0, bsz, g)]


_LOW = (1 << _SLOT_BITS) - 1


def _narrow(
    tab: FineTable, w: _scratch.Pool, n: int, sigma: float, wt_out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """K nearest of the pool's a[:n], b[:n] over their narrow rows: indices into its
    ``index``, weights into ``wt_out`` (K, n). Returns (positions needing the wide search or
    brute force, positions whose keys tie in their high bits: to recheck)."""
    k, c, size = tab.k, tab.width, w.n
    a, b, u = w.get("a", (size,))[:n], w.get("b", (size,))[:n], w.get("u", (size,))[:n]
    iu, iv = w.get("iu", (size,), np.int64)[:n], w.get("iv", (size,), np.int64)[:n]
    code = w.get("code", (size,), np.int64)[:n]
    # sub-cell (clamped onto the border ring, whose pixels all go to the brute force)
    np.multiply(a, tab.inv_h, out=u)
    u -= tab.lo_a * tab.inv_h
    np.clip(u, 0.0, tab.na - 1, out=u)
    np.copyto(iu, u, casting="unsafe")
    np.multiply(b, tab.inv_h, out=u)
    u -= tab.lo_b * tab.inv_h
    np.clip(u, 0.0, tab.nb - 1, out=u)
    np.copyto(iv, u, casting="unsafe")
    iu *= tab.nb
    iu += iv  # sub-cell
    small = w.get("small", (size,), tab.code.dtype)[:n]
    np.take(tab.code, iu, out=small, mode="clip")
    np.copyto(code, small)
    rows1 = tab.rows + 1
    flat = w.get("flat", (c, size), np.int64)[:, :n]
    np.add(code, np.arange(c, dtype=np.int64)[:, None] * rows1, out=flat)
    ca, cb = w.get("ca", (c, size))[:, :n], w.get("cb", (c, size))[:, :n]
    np.take(tab.coord_a, flat, out=ca, mode="clip")
    np.take(tab.coord_b, flat, out=cb, mode="clip")
    np.subtract(a, ca, out=ca)
    np.square(ca, out=ca)
    np.subtract(b, cb, out=cb)
    np.square(cb, out=cb)
    ca += cb  # (C, n) squared distances, the brute force's expression bit for bit
    keys = ca.view(np.int64)
    keys &= ~_LOW
    keys |= np.arange(c, dtype=np.int64)[:, None]
    wires = list(keys)
    spare = w.get("spare", (size,), np.int64)[:n]
    for i, j in tab.network:
        np.minimum(wires[i], wires[j], out=spare)
        np.maximum(wires[i], wires[j], out=wires[j])
        wires[i], spare = spare, wires[i]
    x = w.get("x", (k, size), np.int64)[:, :n]
    for r in range(k):
        np.bitwise_xor(wires[r], wires[r + 1], out=x[r])
    xm = np.minimum.reduce(x, axis=0) if k > 1 else x[0]
    farm = np.equal(code, tab.rows, out=w.get("farm", (size,), bool)[:n])  # no narrow row
    tiem = np.less_equal(xm, _LOW, out=w.get("tiem", (size,), bool)[:n])
    tiem &= ~farm
    tie = np.flatnonzero(tiem)
    slot = w.get("slot", (k, size), np.int64)[:, :n]
    dist = w.get("dist", (k, size), np.int64)[:, :n]  # float64 bits
    for r in range(k):
        np.bitwise_and(wires[r], _LOW, out=slot[r])
        np.bitwise_and(wires[r], ~_LOW, out=dist[r])
    slot *= rows1
    slot += code
    index = w.get("index", (k, size), np.int64)[:, :n]
    np.take(tab.index, slot, out=index, mode="clip")  # slot now holds flat rows
    far = np.flatnonzero(farm)
    e = w.get("e", (k - 1, size), wt_out.dtype)[:, :n]
    _weights_into(dist.view(np.float64), sigma, e, w.get("tot", (size,), wt_out.dtype)[:n], wt_out)
    return far, tie


def _weights_into(
    dist: np.ndarray, sigma: float, e: np.ndarray, tot: np.ndarray, out: np.ndarray
) -> None:
    """Normalised Gaussian weights of the squared distances dist (K, n) float64, nearest
    first, into out (K, n) (``encode.gaussian_weights``' formula; exp(0) = 1 is not computed).
    e (K - 1, n) and tot (n,) are buffers in out's dtype.

    Why this way: the exponent is formed in float64 (as the brute force does), then exp and
    the normalisation run in the output dtype (as ``gaussian_weights`` does) with torch's
    vectorised exp: numpy's float64 exp is scalar code on CPUs without AVX-512 (about 10 ns
    an element here, a third of the engine's time), torch's float32 one about 2 ns."""
    np.subtract(dist[1:], dist[:1], out=e, casting="same_kind")
    e *= -0.5 / (sigma * sigma)
    torch.from_numpy(e).exp_()
    np.add.reduce(e, axis=0, out=tot)
    tot += 1.0
    np.reciprocal(tot, out=tot)
    np.copyto(out[0], tot)
    np.multiply(e, tot, out=out[1:])


def soft_encode(
    ab: np.ndarray, bins: np.ndarray, tab: FineTable, sigma: float
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
    flat_a, flat_b = a_all.reshape(-1), b_all.reshape(-1)
    redo: list[np.ndarray] = []
    chunks = _chunks(bsz, hw)
    size = max((i1 - i0) * (p1 - p0) for i0, i1, p0, p1 in chunks)
    w = _scratch.pool(_OWNER, size)
    wt = w.get("wt", (k, size), ab.dtype)
    index = w.get("index", (k, size), np.int64)
    for i0, i1, p0, p1 in chunks:
        ni, npx = i1 - i0, p1 - p0
        n = ni * npx
        np.copyto(w.get("a", (size,))[:n].reshape(ni, npx), a_all[i0:i1, p0:p1])
        np.copyto(w.get("b", (size,))[:n].reshape(ni, npx), b_all[i0:i1, p0:p1])
        far, tie = _narrow(tab, w, n, sigma, wt[:, :n])
        if tie.size:
            tie = tie[_unsettled(tab, w, tie)]
        flag = np.concatenate([far, tie]) if tie.size else far
        if flag.size:
            redo.append((flag // npx + i0) * hw + flag % npx + p0)
        out_w[i0:i1, :, p0:p1] = wt[:, :n].reshape(k, ni, npx).transpose(1, 0, 2)
        out_i[i0:i1, :, p0:p1] = index[:, :n].reshape(k, ni, npx).transpose(1, 0, 2)
    if redo:
        _rest(tab, bins, np.concatenate(redo), flat_a, flat_b, sigma, out_i, out_w)
    return out_i.reshape(bsz, k, h, wd), out_w.reshape(bsz, k, h, wd)


def _unsettled(tab: FineTable, w: _scratch.Pool, pos: np.ndarray) -> np.ndarray:
    """Of the pixels ``pos`` whose sorted keys tie in their high bits, the mask of those whose
    exact float64 distances differ within a tie (the order by slot may be wrong there)."""
    k, size = tab.k, w.n
    a, b = w.get("a", (size,))[pos], w.get("b", (size,))[pos]
    rows1 = tab.rows + 1
    code = w.get("code", (size,), np.int64)[pos]
    x = w.get("x", (k, size), np.int64)[:, pos]
    slots = w.get("slot", (k, size), np.int64)
    bad = np.zeros(len(pos), dtype=bool)
    prev = None
    for r in range(k + 1):
        if r < k:
            flat = slots[r, pos]  # slot * (R + 1) + row
        else:  # the (K+1)-th key's slot is not kept: recover it from x = key_K ^ key_K+1
            last = (slots[k - 1, pos] - code) // rows1
            flat = ((x[k - 1] ^ last) & _LOW) * rows1 + code
        d = (a - tab.coord_a[flat]) ** 2 + (b - tab.coord_b[flat]) ** 2
        if prev is not None:
            bad |= (x[r - 1] <= _LOW) & (d != prev)
        prev = d
    return bad


def _rest(
    tab: FineTable,
    bins: np.ndarray,
    glob: np.ndarray,
    flat_a: np.ndarray,
    flat_b: np.ndarray,
    sigma: float,
    out_i: np.ndarray,
    out_w: np.ndarray,
) -> None:
    """The pixels at global positions ``glob``: wide rows where their sub-cell has one, the
    brute force otherwise (and where the wide keys tie)."""
    k = tab.k
    pa = flat_a[glob].astype(np.float64)
    pb = flat_b[glob].astype(np.float64)
    u = np.clip((pa * tab.inv_h - tab.lo_a * tab.inv_h), 0.0, tab.na - 1).astype(np.int64)
    v = np.clip((pb * tab.inv_h - tab.lo_b * tab.inv_h), 0.0, tab.nb - 1).astype(np.int64)
    cell = u * tab.nb + v
    wrow = np.searchsorted(tab.wide_cells, cell)
    wrow = np.minimum(wrow, max(0, len(tab.wide_cells) - 1))
    has = (tab.wide_cells[wrow] == cell) if len(tab.wide_cells) else np.zeros(len(cell), bool)
    brute = [np.flatnonzero(~has)]
    sel = np.flatnonzero(has)
    for s in range(0, len(sel), _knn.CHUNK):
        part = sel[s : s + _knn.CHUNK]
        m = len(part)
        size = 1 << max(8, (m - 1).bit_length())  # few distinct buffer sizes
        padded = np.concatenate([part, np.full(size - m, part[-1])])
        ww = _knn.work(size)
        wa, wb = ww.get("a", (size,)), ww.get("b", (size,))
        np.copyto(wa, pa[padded])
        np.copyto(wb, pb[padded])
        dist, index = ww.get("dist", (k, size)), ww.get("index", (k, size), np.int64)
        bad = _knn._search(tab.wide, wrow[padded], wa, wb, k, ww, dist, index)[:m]
        good = np.flatnonzero(~bad)
        _knn._scatter(
            out_i, out_w, glob[part[good]], index[:, good], _knn._weights(dist[:, good], sigma)
        )
        brute.append(part[bad])
    rows = np.concatenate(brute)
    if rows.size:
        bd, bi = _knn.brute_knn(
            torch.from_numpy(pa[rows]), torch.from_numpy(pb[rows]), torch.from_numpy(bins), k
        )
        _knn._scatter(out_i, out_w, glob[rows], bi.numpy(), _knn._weights(bd.numpy(), sigma))

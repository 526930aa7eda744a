"""The quantized ab gamut: bin centres on a regular grid.

Bins are a ``(Q, 2)`` float array of (a, b) centres in Lab units, sorted a ascending then
b ascending. The reference set is the Q = 313 centres of Zhang et al. (grid 10); other sets can be
computed from the sRGB gamut or from a folder of images (see ``srgb_bins`` and
``bins_from_counts``). A bins file is a plain ``.npy`` of that array.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colorcli.errors import BadWeights

REFERENCE_GRID = 10.0

# a value -> (b from, b to), both ends included, step 10 (REFERENCE.md table).
_REFERENCE_RANGES: dict[int, tuple[int, int]] = {
    -90: (50, 90),
    -80: (20, 90),
    -70: (0, 90),
    -60: (-20, 90),
    -50: (-30, 100),
    -40: (-40, 100),
    -30: (-50, 100),
    -20: (-50, 100),
    -10: (-60, 100),
    0: (-70, 100),
    10: (-80, 90),
    20: (-80, 90),
    30: (-90, 90),
    40: (-100, 90),
    50: (-100, 80),
    60: (-110, 80),
    70: (-110, 80),
    80: (-110, 70),
    90: (-110, 70),
    100: (-90, 0),
}


def reference_bins() -> np.ndarray:
    """The 313 reference bin centres of Zhang et al., ``(313, 2)`` float64, a then b ascending."""
    rows = [
        (a, b)
        for a in sorted(_REFERENCE_RANGES)
        for b in range(_REFERENCE_RANGES[a][0], _REFERENCE_RANGES[a][1] + 1, 10)
    ]
    return np.asarray(rows, dtype=np.float64)


def sort_bins(bins: np.ndarray) -> np.ndarray:
    """Return ``bins`` ordered a ascending, then b ascending."""
    order = np.lexsort((bins[:, 1], bins[:, 0]))
    return np.ascontiguousarray(bins[order])


@dataclass(frozen=True)
class GridLayout:
    """Where each bin sits on its regular grid: bin q is cell ``(ia[q], ib[q])`` of ``shape``.

    Cell (i, j) has centre ``(a0 + i * grid, b0 + j * grid)``.
    """

    grid: float
    a0: float
    b0: float
    shape: tuple[int, int]
    ia: np.ndarray
    ib: np.ndarray

    def lookup(self) -> np.ndarray:
        """``shape`` int64 array: the bin index of each cell, -1 where the cell is not a bin."""
        table = np.full(self.shape, -1, dtype=np.int64)
        table[self.ia, self.ib] = np.arange(len(self.ia))
        return table


def infer_grid(bins: np.ndarray) -> float:
    """The grid spacing of ``bins`` (smallest positive difference between centre coordinates)."""
    diffs = np.concatenate([np.diff(np.unique(bins[:, 0])), np.diff(np.unique(bins[:, 1]))])
    diffs = diffs[diffs > 1e-9]
    return float(diffs.min()) if diffs.size else REFERENCE_GRID


def grid_layout(bins: np.ndarray, grid: float | None = None) -> GridLayout:
    """Place ``bins`` on their regular grid; raises ValueError if they are not on one."""
    validate_bins(bins)
    g = infer_grid(bins) if grid is None else float(grid)
    a0, b0 = float(bins[:, 0].min()), float(bins[:, 1].min())
    fa = (bins[:, 0] - a0) / g
    fb = (bins[:, 1] - b0) / g
    ia, ib = np.rint(fa).astype(np.int64), np.rint(fb).astype(np.int64)
    if np.abs(fa - ia).max() > 1e-6 or np.abs(fb - ib).max() > 1e-6:
        raise ValueError(f"bins are not on a regular grid of spacing {g}")
    shape = (int(ia.max()) + 1, int(ib.max()) + 1)
    if len(set(zip(ia.tolist(), ib.tolist(), strict=True))) != len(bins):
        raise ValueError("bins contain duplicate centres")
    return GridLayout(g, a0, b0, shape, ia, ib)


def validate_bins(bins: np.ndarray) -> None:
    if not isinstance(bins, np.ndarray) or bins.ndim != 2 or bins.shape[1] != 2 or len(bins) < 2:
        shape = getattr(bins, "shape", None)
        raise ValueError(f"bins must be a (Q, 2) array with Q >= 2, got shape {shape}")
    if not np.isfinite(bins).all():
        raise ValueError("bins contain non-finite values")


def save_bins(path: str | Path, bins: np.ndarray) -> Path:
    """Write ``bins`` as a ``.npy`` file atomically; returns the final path."""
    validate_bins(bins)
    path = Path(path)
    if path.suffix != ".npy":
        path = path.with_name(path.name + ".npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.asarray(bins, dtype=np.float64), allow_pickle=False)
    tmp.replace(path)
    return path


def load_bins(path: str | Path) -> np.ndarray:
    """Read a bins ``.npy`` file (never unpickles); raises BadWeights naming the file."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise BadWeights(f"{path}: no such file") from exc
    except (ValueError, OSError, EOFError) as exc:
        raise BadWeights(f"{path}: not a bins .npy file ({exc})") from exc
    try:
        validate_bins(arr)
    except ValueError as exc:
        raise BadWeights(f"{path}: {exc}") from exc
    return np.asarray(arr, dtype=np.float64)

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
from colorcli.fsutil import atomic_open

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
    with atomic_open(path, tmp=path.with_name(f".{path.name}.tmp")) as fh:
        np.save(fh, np.asarray(bins, dtype=np.float64), allow_pickle=False)
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


# --- bins computed from the sRGB gamut or from pixel samples --------------------------------

AB_EXTENT = 128.0
"""Half-width of the ab plane covered by histograms: every sRGB colour has |a|, |b| < 128."""


def ab_axis(grid: float, extent: float = AB_EXTENT) -> np.ndarray:
    """Cell centres along one ab axis: the multiples of ``grid`` covering ``[-extent, extent]``.

    Returns a ``(n,)`` float64 array ``k * grid`` for ``k = -m .. m`` with ``m = ceil(extent /
    grid)``; cell k is the half-open interval ``[k*grid - grid/2, k*grid + grid/2)``.
    """
    if not grid > 0:
        raise ValueError(f"grid must be > 0, got {grid}")
    m = int(np.ceil(extent / grid))
    return np.arange(-m, m + 1, dtype=np.float64) * float(grid)


def ab_cell_index(values: np.ndarray, grid: float, extent: float = AB_EXTENT) -> np.ndarray:
    """Cell index along an ``ab_axis(grid, extent)`` of each value (any shape, ab units).

    Value v falls in the cell of centre c when ``c - grid/2 <= v < c + grid/2``. Values beyond the
    axis are clipped into the first/last cell (cannot happen for sRGB colours at the default
    extent).
    """
    m = int(np.ceil(extent / grid))
    idx = np.floor((np.asarray(values, dtype=np.float64) + grid / 2.0) / grid).astype(np.int64)
    return np.clip(idx + m, 0, 2 * m)


def histogram_ab_samples(
    ab: np.ndarray, grid: float = REFERENCE_GRID, extent: float = AB_EXTENT
) -> np.ndarray:
    """Count ab samples ``(N, 2)`` per grid cell -> ``(n, n)`` int64 counts over the ab plane.

    Axis 0 is a and axis 1 is b, both laid out as ``ab_axis(grid, extent)``.
    """
    ab = np.asarray(ab, dtype=np.float64).reshape(-1, 2)
    n = len(ab_axis(grid, extent))
    ia = ab_cell_index(ab[:, 0], grid, extent)
    ib = ab_cell_index(ab[:, 1], grid, extent)
    flat = np.bincount(ia * n + ib, minlength=n * n)
    return flat.reshape(n, n).astype(np.int64)


def bins_from_counts(
    counts: np.ndarray,
    grid: float = REFERENCE_GRID,
    min_pixels: float = 1,
    extent: float = AB_EXTENT,
) -> np.ndarray:
    """Bins of the cells with at least ``min_pixels`` samples.

    ``counts`` is an ``(n, n)`` histogram laid out as ``histogram_ab_samples`` makes it (a on
    axis 0, b on axis 1, cells of ``ab_axis(grid, extent)``). Returns ``(Q, 2)`` float64 centres,
    a ascending then b ascending. Raises ValueError when the layout does not match.
    """
    if min_pixels <= 0:
        raise ValueError(f"min_pixels must be > 0, got {min_pixels}")
    axis = ab_axis(grid, extent)
    counts = np.asarray(counts)
    if counts.shape != (len(axis), len(axis)):
        raise ValueError(
            f"counts have shape {counts.shape}, expected {(len(axis), len(axis))} for grid {grid}"
        )
    ia, ib = np.nonzero(counts >= min_pixels)  # row-major: a ascending, then b ascending
    return np.stack([axis[ia], axis[ib]], axis=1).astype(np.float64).reshape(-1, 2)


def bins_from_samples(
    ab: np.ndarray, grid: float = REFERENCE_GRID, min_pixels: float = 1
) -> np.ndarray:
    """Bins of the cells that at least ``min_pixels`` of the ab samples ``(N, 2)`` fall into."""
    return bins_from_counts(histogram_ab_samples(ab, grid), grid, min_pixels)


SRGB_RULE = (
    "a cell of centre (a, b) (multiples of the grid g) counts when at least one colour of the "
    "sRGB gamut, sampled on the 6 faces of the RGB cube at {steps} levels per channel and "
    "converted to Lab, has a in [a - g/2, a + g/2) and b in [b - g/2, b + g/2)"
)


def srgb_surface(steps: int = 256) -> np.ndarray:
    """The colours on the 6 faces of the sRGB cube at ``steps`` levels: ``(3, 6 * steps, steps)``
    float64 in [0, 1] (one face after the other; edge colours appear on several faces)."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    levels = np.linspace(0.0, 1.0, steps)
    u, v = np.meshgrid(levels, levels, indexing="ij")
    faces = []
    for channel in range(3):
        others = [c for c in range(3) if c != channel]
        for value in (0.0, 1.0):
            face = np.empty((3, steps, steps))
            face[channel] = value
            face[others[0]], face[others[1]] = u, v
            faces.append(face)
    return np.concatenate(faces, axis=1)


def srgb_histogram(grid: float = REFERENCE_GRID, steps: int = 256) -> np.ndarray:
    """How many surface colours of the sRGB cube fall in each ab cell: ``(n, n)`` int64.

    Only the faces of the cube are sampled (``srgb_surface(steps)``, 256 levels = the 8-bit
    colours with a channel at 0 or 255): Lab maps the cube to a solid whose shadow on the ab plane
    is the shadow of its surface, so the interior adds no cell. (Checked at grids 5, 7, 10 and 20:
    the same cells as all 256^3 8-bit colours, 40x faster.) Lab via
    ``colorcli.color.lab.rgb_to_lab`` in float64; layout as ``histogram_ab_samples``.
    """
    import torch

    from colorcli.color.lab import rgb_to_lab

    lab = rgb_to_lab(torch.from_numpy(srgb_surface(steps)))
    return histogram_ab_samples(lab[1:].reshape(2, -1).T.numpy(), grid)


def srgb_bins(grid: float = REFERENCE_GRID, steps: int = 256) -> np.ndarray:
    """Bins of the sRGB gamut at grid spacing ``grid``: ``(Q, 2)`` float64, a then b ascending.

    Rule (``SRGB_RULE``): a cell counts when any colour of the sRGB gamut (sampled on the surface
    of the RGB cube at ``steps`` levels per channel), converted to Lab, falls into the cell's
    square ``[c - g/2, c + g/2)`` on both axes. At grid 10 with the default 256 levels this gives
    Q = 261, all inside the reference 313 (the reference set is a dilated gamut); sampling much
    more densely (1024 levels) adds one corner cell (262).
    """
    return bins_from_counts(srgb_histogram(grid, steps), grid, min_pixels=1)

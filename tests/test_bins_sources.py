"""Bins computed from the sRGB gamut and from pixel counts, against brute-force references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from skimage.color import rgb2lab

from colorcli.color.bins import (
    ab_axis,
    ab_cell_index,
    bins_from_counts,
    bins_from_samples,
    grid_layout,
    histogram_ab_samples,
    reference_bins,
    srgb_bins,
    srgb_histogram,
    srgb_surface,
)


def brute_force_cells(steps: int, grid: float) -> set[tuple[float, float]]:
    """Cell centres hit by a steps^3 sRGB cube, one colour at a time with scikit-image."""
    levels = np.linspace(0.0, 1.0, steps)
    cube = np.array(list(itertools.product(levels, levels, levels)), dtype=np.float64)
    lab = rgb2lab(cube.reshape(-1, 1, 3)).reshape(-1, 3)
    cells = set()
    for _, a, b in lab:
        ca = math.floor(a / grid + 0.5) * grid
        cb = math.floor(b / grid + 0.5) * grid
        cells.add((ca, cb))
    return cells


@pytest.mark.parametrize("grid", [10.0, 20.0])
def test_srgb_bins_match_brute_force(grid: float) -> None:
    bins = srgb_bins(grid, steps=21)
    expected = brute_force_cells(21, grid)
    assert {(float(a), float(b)) for a, b in bins} == expected
    # ordered a ascending then b ascending, on a regular grid
    assert np.array_equal(bins, bins[np.lexsort((bins[:, 1], bins[:, 0]))])
    assert grid_layout(bins).grid == grid


def test_srgb_bins_grid10_count_and_inside_reference() -> None:
    bins = srgb_bins(10.0, steps=65)
    # the dense-cube gamut is 261 cells at grid 10 (REFERENCE.md: roughly 260-270)
    assert len(bins) == 261
    ref = {tuple(r) for r in reference_bins()}
    assert {tuple(r) for r in bins} <= ref
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 90


def test_srgb_histogram_counts_every_surface_colour() -> None:
    surface = srgb_surface(9)
    assert surface.shape == (3, 6 * 9, 9)
    # every colour with a channel at 0 or 1 is there, and nothing else
    got = {tuple(c) for c in np.round(surface.reshape(3, -1).T * 8).astype(int).tolist()}
    want = {c for c in itertools.product(range(9), repeat=3) if 0 in c or 8 in c}
    assert got == want
    hist = srgb_histogram(10.0, steps=9)
    assert hist.sum() == 6 * 9 * 9
    # black and white (on every face that holds them) are at a = b = 0 -> the centre cell
    m = len(ab_axis(10.0)) // 2
    assert hist[m, m] >= 6


def test_cell_index_half_open_squares() -> None:
    axis = ab_axis(10.0)
    idx = ab_cell_index(np.array([-5.0, -4.999, 4.999, 5.0, 0.0]), 10.0)
    assert axis[idx].tolist() == [0.0, 0.0, 0.0, 10.0, 0.0]
    assert axis[ab_cell_index(np.array([-1e6, 1e6]), 10.0)].tolist() == [axis[0], axis[-1]]


def test_histogram_and_bins_from_counts_hand_worked() -> None:
    # 3 samples in cell (0, 0), 1 in (10, -20), 2 in (-30, 40)
    ab = np.array(
        [[0.0, 0.0], [4.9, -5.0], [-4.0, 3.0], [12.0, -18.0], [-31.0, 44.9], [-25.1, 35.0]]
    )
    counts = histogram_ab_samples(ab, 10.0)
    axis = ab_axis(10.0)
    assert counts.sum() == 6
    assert counts[list(axis).index(0.0), list(axis).index(0.0)] == 3
    assert bins_from_counts(counts, 10.0, 1).tolist() == [[-30, 40], [0, 0], [10, -20]]
    assert bins_from_counts(counts, 10.0, 2).tolist() == [[-30, 40], [0, 0]]
    assert bins_from_counts(counts, 10.0, 3).tolist() == [[0, 0]]
    assert bins_from_samples(ab, 10.0, 2).tolist() == [[-30, 40], [0, 0]]
    with pytest.raises(ValueError):
        bins_from_counts(counts, 5.0, 1)
    with pytest.raises(ValueError):
        bins_from_counts(counts, 10.0, 0)


def test_bins_from_samples_random_against_brute_force() -> None:
    rng = np.random.default_rng(3)
    ab = rng.uniform(-100, 100, size=(500, 2))
    for grid in (7.0, 10.0):
        hist: dict[tuple[float, float], int] = {}
        for a, b in ab:
            key = (math.floor(a / grid + 0.5) * grid, math.floor(b / grid + 0.5) * grid)
            hist[key] = hist.get(key, 0) + 1
        expected = sorted(k for k, v in hist.items() if v >= 2)
        got = bins_from_samples(ab, grid, 2)
        assert got.shape == (len(expected), 2) and np.allclose(got, np.array(expected))

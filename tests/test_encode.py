"""colorcli.color.encode: soft / one-hot encoding (exact vs brute force) and decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import colorcli.color._knn as knn_engine
import colorcli.color._knn_fine as knn_fine
import colorcli.color.encode as enc
from colorcli.color.bins import reference_bins
from colorcli.color.encode import (
    decode,
    nearest_bin,
    one_hot_encode,
    soft_encode,
    to_dense,
)

SIGMA = 5.0


def brute_force(
    ab: torch.Tensor, bins: np.ndarray, k: int, sigma: float = SIGMA
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: full (N, Q) float64 distance matrix, stable sort (ties -> lower index),
    Gaussian weights of the K first. Returns (index, weight) (B, K, H, W), weight float64."""
    bsz, _, h, w = ab.shape
    pts = ab.permute(0, 2, 3, 1).reshape(-1, 2).double()
    c = torch.as_tensor(bins, dtype=torch.float64)
    d2 = (pts[:, :1] - c[:, 0]) ** 2 + (pts[:, 1:] - c[:, 1]) ** 2
    val, idx = torch.sort(d2, dim=1, stable=True)
    val, idx = val[:, :k], idx[:, :k]
    wt = torch.exp(-(val - val[:, :1]) / (2 * sigma**2))
    wt = wt / wt.sum(dim=1, keepdim=True)

    def back(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(bsz, h, w, k).permute(0, 3, 1, 2)

    return back(idx), back(wt)


def grid_bins(step: float, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    ga = np.arange(a[0], a[1] + step / 2, step)
    gb = np.arange(b[0], b[1] + step / 2, step)
    return np.stack(np.meshgrid(ga, gb, indexing="ij"), -1).reshape(-1, 2)


def subset_bins() -> np.ndarray:
    ref = reference_bins()
    keep = np.sort(np.random.default_rng(1).choice(len(ref), 120, replace=False))
    return ref[keep]


BIN_SETS = {
    "reference": reference_bins,
    "subset": subset_bins,  # holes everywhere: windows are often incomplete
    "grid5": lambda: grid_bins(5.0, (-40.0, 60.0), (-55.0, 35.0)),
}


def random_ab(seed: int, shape: tuple[int, int, int], dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((shape[0], 2, shape[1], shape[2]), generator=g, dtype=dtype) * 300) - 150


def assert_same(ab: torch.Tensor, bins: np.ndarray, k: int, sigma: float = SIGMA) -> None:
    idx, wt = soft_encode(ab, bins, k=k, sigma=sigma, compile=False)
    ref_i, ref_w = brute_force(ab, bins, k, sigma)
    assert idx.dtype == torch.int64 and idx.shape == ref_i.shape
    assert wt.dtype == ab.dtype and wt.shape == ref_w.shape
    assert torch.equal(idx, ref_i)
    tol = 1e-12 if ab.dtype == torch.float64 else 1e-6
    assert torch.allclose(wt.double(), ref_w, atol=tol, rtol=0)


@pytest.mark.parametrize("name", sorted(BIN_SETS))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_soft_encode_matches_brute_force_whole_plane(name: str, k: int) -> None:
    bins = BIN_SETS[name]()
    for seed, dtype in ((0, torch.float32), (1, torch.float64)):
        assert_same(random_ab(seed, (2, 48, 48), dtype), bins, k)


@pytest.mark.parametrize("name", sorted(BIN_SETS))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_soft_encode_exact_on_centres_and_midpoints(name: str, k: int) -> None:
    """Lattice of half-cells over [-150, 150]^2: cell centres, edge midpoints and corners
    (2- and 4-way ties, diagonal ties) must be broken exactly like the stable brute force."""
    bins = BIN_SETS[name]()
    half, end = (2.5, 75.0) if name == "grid5" else (5.0, 150.0)
    vals = torch.arange(-end, end + half / 2, half, dtype=torch.float64)
    a, b = torch.meshgrid(vals, vals, indexing="ij")
    ab = torch.stack([a, b]).unsqueeze(0)
    assert_same(ab, bins, k)
    assert_same(ab.float(), bins, k)
    # integer points make many more exact (diagonal) ties, e.g. |da| == |db|
    ints = torch.arange(-end, end + 1.0, 1.0)
    a, b = torch.meshgrid(ints, ints, indexing="ij")
    assert_same(torch.stack([a, b]).unsqueeze(0)[:, :, ::4, ::3], bins, k)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_soft_encode_far_outside_gamut(k: int) -> None:
    bins = reference_bins()
    pts = [(200.0, -200.0), (1e4, 1e4), (-3e5, 7.0), (110.5, 0.0), (-95.0, 95.0), (0.0, -1e6)]
    ab = torch.tensor(pts, dtype=torch.float64).t().reshape(1, 2, 1, len(pts))
    assert_same(ab, bins, k)
    _, wt = soft_encode(ab, bins, k=k)
    assert torch.isfinite(wt).all()
    assert torch.allclose(wt.sum(dim=1), torch.ones(1, 1, len(pts), dtype=torch.float64))


def test_weights_formula_hand_example() -> None:
    """Point (3, 4) in the interior: squared distances to (0,0), (0,10), (10,0), (10,10),
    (-10,0) are 3^2+4^2, 3^2+6^2, 7^2+4^2, 7^2+6^2, 13^2+4^2 (next: (0,-10) at 3^2+14^2);
    weights are the normalised Gaussians."""
    bins = reference_bins()
    ab = torch.tensor([3.0, 4.0], dtype=torch.float64).view(1, 2, 1, 1)
    idx, wt = soft_encode(ab, bins, k=5, sigma=SIGMA)
    centres = bins[idx.view(-1).numpy()]
    expected_centres = np.array([(0, 0), (0, 10), (10, 0), (10, 10), (-10, 0)], dtype=float)
    assert np.array_equal(centres, expected_centres)
    d2 = np.array([9 + 16, 9 + 36, 49 + 16, 49 + 36, 169 + 16])
    w = np.exp(-d2 / (2 * SIGMA**2))
    assert np.allclose(wt.view(-1).numpy(), w / w.sum(), atol=1e-14, rtol=0)


def test_ties_lower_index_first_and_nearest_first() -> None:
    bins = reference_bins()
    ab = torch.tensor([5.0, 5.0]).view(1, 2, 1, 1)  # equidistant from 4 bins
    idx, wt = soft_encode(ab, bins, k=5)
    four = idx.view(-1)[:4]
    assert torch.equal(four, four.sort().values)
    assert torch.allclose(wt.view(-1)[:4], wt.view(-1)[:1].expand(4))
    assert wt.view(-1)[4] < wt.view(-1)[0]


def test_unsorted_and_off_grid_bins_stay_exact() -> None:
    ref = reference_bins()
    perm = np.random.default_rng(3).permutation(len(ref))
    ab = random_ab(5, (1, 32, 32), torch.float32)
    for bins in (ref[perm], ref + np.random.default_rng(4).normal(0, 0.01, ref.shape)):
        for k in (1, 5):
            assert_same(ab, bins, k)
    # bins given as a tensor
    idx_t, _ = soft_encode(ab, torch.as_tensor(ref), k=5)
    idx_n, _ = soft_encode(ab, ref, k=5)
    assert torch.equal(idx_t, idx_n)


def test_weight_dtype_and_sigma_limits() -> None:
    bins = reference_bins()
    ab = random_ab(6, (1, 8, 8), torch.float64) / 2
    _, wide = soft_encode(ab, bins, k=5, sigma=1e6)
    assert torch.allclose(wide, torch.full_like(wide, 0.2), atol=1e-9)
    _, narrow = soft_encode(ab, bins, k=5, sigma=1e-3)
    assert torch.allclose(narrow[:, 0], torch.ones_like(narrow[:, 0]))
    with pytest.raises(ValueError, match="sigma"):
        soft_encode(ab, bins, sigma=0.0)


def test_one_hot_and_nearest_bin() -> None:
    bins = subset_bins()
    ab = random_ab(7, (3, 16, 20), torch.float32)
    ref_i, _ = brute_force(ab, bins, 1)
    near = nearest_bin(ab, bins)
    assert near.shape == (3, 16, 20) and near.dtype == torch.int64
    assert torch.equal(near, ref_i[:, 0])
    idx, wt = one_hot_encode(ab, bins)
    assert idx.shape == wt.shape == (3, 1, 16, 20)
    assert torch.equal(idx[:, 0], near)
    assert wt.dtype == ab.dtype and bool((wt == 1).all())


def test_to_dense() -> None:
    bins = reference_bins()
    ab = random_ab(8, (2, 5, 6), torch.float32) / 2
    idx, wt = soft_encode(ab, bins, k=5)
    dense = to_dense(idx, wt, len(bins))
    assert dense.shape == (2, len(bins), 5, 6)
    assert torch.allclose(dense.sum(dim=1), torch.ones(2, 5, 6))
    assert torch.equal(dense.gather(1, idx), wt)
    assert int((dense > 0).sum()) == idx.numel()
    # repeated indices add up
    rep = to_dense(torch.zeros(1, 2, 1, 1, dtype=torch.long), torch.full((1, 2, 1, 1), 0.5), 3)
    assert rep.view(-1).tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="index values"):
        to_dense(idx, wt, 10)
    with pytest.raises(ValueError, match=r"\(B, K, H, W\)"):
        to_dense(idx[0], wt[0], len(bins))


def test_input_errors() -> None:
    bins = reference_bins()
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        soft_encode(torch.zeros(1, 3, 4, 4), bins)
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        soft_encode(torch.zeros(2, 4, 4), bins)
    with pytest.raises(TypeError, match="floating"):
        soft_encode(torch.zeros(1, 2, 4, 4, dtype=torch.long), bins)
    with pytest.raises(ValueError, match="NaN"):
        soft_encode(torch.full((1, 2, 2, 2), float("nan")), bins)
    with pytest.raises(ValueError, match="k must be"):
        soft_encode(torch.zeros(1, 2, 2, 2), bins, k=0)
    with pytest.raises(ValueError, match="k must be"):
        soft_encode(torch.zeros(1, 2, 2, 2), bins, k=len(bins) + 1)
    with pytest.raises(ValueError, match=r"\(Q, 2\)"):
        soft_encode(torch.zeros(1, 2, 2, 2), np.zeros((5, 3)))
    idx, wt = soft_encode(torch.zeros(0, 2, 4, 4), bins)
    assert idx.shape == wt.shape == (0, 5, 4, 4)


def test_engine_serves_reference_bins_and_both_dtypes() -> None:
    """The table engine (not the brute force) runs for the reference bins, K = 5 and 10, and
    equals the brute force on random ab in float32 and float64 (bitwise squared distances)."""
    bins = reference_bins()
    for k in (2, 5, 10):
        assert knn_engine.table(bins, k) is not None
    for dtype in (torch.float32, torch.float64):
        ab = random_ab(21, (3, 40, 50), dtype)
        for k in (2, 5, 10):
            assert_same(ab, bins, k)


def test_engine_ties_centres_midpoints_and_outside() -> None:
    """Bin centres (4-way ties for 2nd, 4-way for 6th), edge midpoints, cell centres (8-way
    ties), points one ulp and 1e-9 off them, and far outside the gamut, in both dtypes."""
    bins = reference_bins()
    base = torch.arange(-130.0, 130.1, 5.0, dtype=torch.float64)
    a, b = torch.meshgrid(base, base, indexing="ij")
    lattice = torch.stack([a, b]).unsqueeze(0)
    variants = [lattice, lattice + 1e-9, lattice - 1e-9]
    variants.append(lattice.nextafter(torch.tensor(np.inf, dtype=torch.float64)))
    far = torch.tensor([[1e6, -1e6], [3e30, 2.0], [-7.5e3, 0.0], [0.0, 1e-300], [150.0, 150.0]])
    variants.append(far.t().reshape(1, 2, 1, -1).double())
    for ab in variants:
        for x in (ab, ab.float()):
            assert_same(x, bins, 5)


def srgb_ab(seed: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """ab of smooth random sRGB images (what photos look like: in gamut, spatially coherent,
    with exact greys)."""
    from colorcli.color.lab import rgb_to_lab

    g = torch.Generator().manual_seed(seed)
    n, h, w = shape
    small = torch.rand((n, 3, max(2, h // 8), max(2, w // 8)), generator=g)
    rgb = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear")
    rgb[:, :, : h // 4] = rgb[:, :1, : h // 4]  # grey band: a = b = 0 (exact ties)
    return rgb_to_lab(rgb)[:, 1:].contiguous()


def test_engine_on_photo_like_ab() -> None:
    bins = reference_bins()
    ab = srgb_ab(22, (4, 64, 80))
    assert_same(ab, bins, 5)
    assert_same(ab.double(), bins, 5)


def test_engine_on_real_photos() -> None:
    from pathlib import Path

    from PIL import Image

    from colorcli.color.lab import rgb_to_lab

    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24"
    paths = sorted(folder.glob("*.*"))[:3] if folder.is_dir() else []
    if not paths:
        pytest.skip("no photos in ../shared/data/kodak24")
    bins = reference_bins()
    for path in paths:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB").resize((192, 128)), dtype=np.float32) / 255
        ab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[:, 1:].contiguous()
        assert_same(ab, bins, 5)


def test_engine_chunking_wide_cells_and_views() -> None:
    """Several chunks per image and several images per chunk, a non-contiguous input."""
    bins = reference_bins()
    ab = srgb_ab(23, (3, 90, 70))
    chunk = knn_engine.CHUNK
    try:
        for size in (1000, 4096, 20000):
            knn_engine.CHUNK = size
            assert_same(ab, bins, 5)
    finally:
        knn_engine.CHUNK = chunk
    assert_same(ab.transpose(2, 3), bins, 5)


def test_candidate_sets_are_exact_supersets() -> None:
    """Dense sampling of sub-cells: the brute-force K nearest of every sample are among its
    sub-cell's candidates (narrow or wide row)."""
    bins = reference_bins()
    tab = knn_engine.table(bins, 5)
    assert tab is not None
    g = torch.Generator().manual_seed(24)
    pts = (torch.rand((20000, 2), generator=g, dtype=torch.float64) * 200 - 100).numpy()
    ia = ((pts[:, 0] - tab.lo_a) * tab.inv_h).astype(np.int64)
    ib = ((pts[:, 1] - tab.lo_b) * tab.inv_h).astype(np.int64)
    assert ia.min() >= 0 and ib.min() >= 0 and ia.max() < tab.na and ib.max() < tab.nb
    cell = ia * tab.nb + ib
    _, ref = knn_engine.brute_knn(
        torch.from_numpy(pts[:, 0]), torch.from_numpy(pts[:, 1]), torch.from_numpy(bins), 5
    )
    for p in range(len(pts)):
        row = tab.wide_row[cell[p]]
        sl, r = (tab.narrow, cell[p]) if row == -1 else (tab.wide, row)
        assert row != -2
        c = 1 << sl.bits
        cand = set(sl.index[r * c : (r + 1) * c][sl.coord_a[r] < 1e6].tolist())
        assert set(ref[:, p].tolist()) <= cand


def test_selection_networks_sort_the_first_outputs() -> None:
    """0-1 principle, exhaustively for 8 wires: the pruned networks leave the K + 1 smallest
    sorted on the first wires."""
    n = 8
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    for outputs in (3, 6, 8):
        state = bits.copy()
        for i, j in knn_engine.selection_network(n, outputs):
            lo = np.minimum(state[:, i], state[:, j])
            state[:, j] = np.maximum(state[:, i], state[:, j])
            state[:, i] = lo
        assert np.array_equal(state[:, :outputs], np.sort(bits, axis=1)[:, :outputs])


def test_compile_flag_is_accepted() -> None:
    bins = reference_bins()
    ab = random_ab(9, (1, 16, 16), torch.float32)
    a = soft_encode(ab, bins, k=5, compile=True)
    b = soft_encode(ab, bins, k=5, compile=False)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------------------------- decode


def three_bins() -> np.ndarray:
    return np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])


def test_decode_mean_hand_example() -> None:
    p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    logits = p.log().view(1, 3, 1, 1)
    out = decode(logits, three_bins(), method="mean")
    # a = 0.3 * 10 = 3, b = 0.5 * 20 = 10
    assert torch.allclose(out.view(-1), torch.tensor([3.0, 10.0], dtype=torch.float64))


def test_decode_annealed_limits_and_mode() -> None:
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    logits.scatter_add_(
        1, logits.argmax(dim=1, keepdim=True), torch.full((2, 1, 4, 5), 0.1, dtype=torch.float64)
    )
    bins = three_bins()
    mean = decode(logits, bins, method="mean")
    assert torch.allclose(decode(logits, bins, method="annealed", temperature=1.0), mean)
    mode = decode(logits, bins, method="mode")
    centres = torch.as_tensor(bins)[logits.argmax(dim=1)].permute(0, 3, 1, 2)
    assert torch.equal(mode, centres)
    cold = decode(logits, bins, method="annealed", temperature=1e-3)
    assert torch.allclose(cold, mode, atol=1e-6)
    # annealing sharpens: T = 0.38 lies between the mean and the mode
    t38 = decode(logits, bins)
    assert (t38 - mode).abs().sum() < (mean - mode).abs().sum()
    # hand-worked annealed value for one pixel: softmax(x / T) weights
    x = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    w = torch.exp(x / 0.38) / torch.exp(x / 0.38).sum()
    expected = torch.tensor([10 * w[1], 20 * w[2]], dtype=torch.float64)
    got = decode(x.view(1, 3, 1, 1), bins, temperature=0.38).view(-1)
    assert torch.allclose(got, expected)


def test_decode_mode_ties_lowest_index() -> None:
    logits = torch.zeros(1, 3, 1, 1)
    assert decode(logits, three_bins(), method="mode").view(-1).tolist() == [0.0, 0.0]


def test_decode_errors() -> None:
    bins = three_bins()
    with pytest.raises(ValueError, match=r"\(B, Q, H, W\)"):
        decode(torch.zeros(3, 4, 4), bins)
    with pytest.raises(ValueError, match="do not match"):
        decode(torch.zeros(1, 4, 2, 2), bins)
    with pytest.raises(ValueError, match="temperature"):
        decode(torch.zeros(1, 3, 2, 2), bins, temperature=0.0)
    with pytest.raises(ValueError, match="unknown decode method"):
        decode(torch.zeros(1, 3, 2, 2), bins, method="median")  # type: ignore[arg-type]


def test_brute_force_fallback_all_bins_and_ties() -> None:
    """Off-grid bins take the brute-force path: K = Q (every bin, ties by index) and K = 1
    (first minimum) on points with many exact ties."""
    bins = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0], [3.3, 0.0]])
    vals = torch.arange(-10.0, 20.5, 2.5, dtype=torch.float64)
    a, b = torch.meshgrid(vals, vals, indexing="ij")
    ab = torch.stack([a, b]).unsqueeze(0)
    for k in (1, 3, len(bins)):
        assert_same(ab, bins, k)
        assert_same(ab.float(), bins, k)


def brute_nearest(ab: torch.Tensor, bins: np.ndarray) -> torch.Tensor:
    return brute_force(ab, bins, 1)[0][:, 0]


def off_grid_step_bins() -> np.ndarray:
    """A non-integer grid (step 0.7, odd origin), shuffled: lower index != lower coordinate."""
    bins = grid_bins(0.7, (-3.1, 4.6), (-2.3, 1.2))
    return bins[np.random.default_rng(12).permutation(len(bins))]


NEAREST_SETS = {**BIN_SETS, "step0.7": off_grid_step_bins}


@pytest.mark.parametrize("name", sorted(NEAREST_SETS))
def test_nearest_bin_fast_path_matches_brute_force(name: str) -> None:
    """Rounding fast path vs the stable brute force: the whole plane, cell centres, edge
    midpoints and corners (exact ties: lower index), points one ulp / 1e-7 / 1e-5 of a cell
    either side of the midpoints, far outside points; float32 and float64."""
    bins = NEAREST_SETS[name]()
    g = 0.7 if name == "step0.7" else (5.0 if name == "grid5" else 10.0)
    lo, hi = bins.min(0) - 3 * g, bins.max(0) + 3 * g
    a = torch.arange(lo[0], hi[0], g / 2, dtype=torch.float64)
    b = torch.arange(lo[1], hi[1], g / 2, dtype=torch.float64)
    # snap to exact half-cells of the bins' own grid (centres, midpoints, corners)
    a = (a - bins[:, 0].min()).div(g / 2).round() * (g / 2) + bins[:, 0].min()
    b = (b - bins[:, 1].min()).div(g / 2).round() * (g / 2) + bins[:, 1].min()
    aa, bb = torch.meshgrid(a, b, indexing="ij")
    lattice = torch.stack([aa, bb]).unsqueeze(0)
    nudged = [lattice, lattice.nextafter(torch.tensor(np.inf, dtype=torch.float64))]
    nudged.append(lattice.nextafter(torch.tensor(-np.inf, dtype=torch.float64)))
    for eps in (1e-7, 1e-5, -1e-5):
        nudged.append(lattice + eps * g)
    g0 = torch.Generator().manual_seed(13)
    span = torch.tensor(hi - lo, dtype=torch.float64).view(1, 2, 1, 1)
    nudged.append(
        torch.rand((2, 2, 40, 40), generator=g0, dtype=torch.float64) * span
        + torch.tensor(lo).view(1, 2, 1, 1)
    )
    far = torch.tensor([[1e6, -1e6], [3e30, 2.0], [-7.5e3, 0.0], [0.0, 1e-300]])
    nudged.append(far.t().reshape(1, 2, 1, -1).double())
    for ab in nudged:
        for x in (ab, ab.float()):
            near = nearest_bin(x, bins)
            assert near.dtype == torch.int64 and near.shape == (x.shape[0], *x.shape[2:])
            assert torch.equal(near, brute_nearest(x, bins))
            idx, wt = soft_encode(x, bins, k=1)
            assert torch.equal(idx[:, 0], near) and bool((wt == 1).all())


def test_nearest_bin_batches_and_views() -> None:
    """Several chunks (more than one batch of whole images) and a non-contiguous input."""
    bins = reference_bins()
    ab = random_ab(14, (6, 120, 100), torch.float32)
    monkey = enc._CHUNK
    try:
        enc._CHUNK = 2 * 120 * 100
        assert torch.equal(nearest_bin(ab, bins), brute_nearest(ab, bins))
    finally:
        enc._CHUNK = monkey
    view = ab.transpose(2, 3)
    assert torch.equal(nearest_bin(view, bins), brute_nearest(view, bins))
    assert nearest_bin(torch.zeros(0, 2, 3, 3), bins).shape == (0, 3, 3)


# ------------------------------------------------------------------ the fine-table engine


def fine_table(bins: np.ndarray, k: int = 5) -> knn_fine.FineTable:
    tab = knn_fine.table(bins, k)
    assert tab is not None
    return tab


def test_fine_engine_serves_and_matches_brute_force() -> None:
    """The fine table serves the reference bins (K = 2, 5, 7) and the test bin sets; random ab
    in both dtypes equal the brute force."""
    for name in sorted(BIN_SETS):
        bins = BIN_SETS[name]()
        for k in (2, 5, 7):
            fine_table(bins, k)
            for dtype in (torch.float32, torch.float64):
                assert_same(random_ab(31 + k, (2, 33, 41), dtype), bins, k)


def test_fine_engine_sub_cell_edges_ties_and_outside() -> None:
    """Points on sub-cell edges and corners (and one ulp either side), bin centres, midpoints,
    exact greys, and far outside the table, in both dtypes."""
    bins = reference_bins()
    tab = fine_table(bins)
    h = 1.0 / tab.inv_h
    ia = np.arange(0, tab.na, 37)
    ib = np.arange(0, tab.nb, 41)
    ea = tab.lo_a + ia * h
    eb = tab.lo_b + ib * h
    a, b = np.meshgrid(ea, eb, indexing="ij")
    pts = np.stack([a.ravel(), b.ravel()])
    variants = [pts, np.nextafter(pts, np.inf), np.nextafter(pts, -np.inf)]
    vals = np.arange(-120.0, 120.1, 2.5)
    a, b = np.meshgrid(vals, vals, indexing="ij")
    variants.append(np.stack([a.ravel(), b.ravel()]))
    variants.append(np.array([[0.0, 0.0, -0.0, 1e5, -3e4, 250.0], [0.0, -0.0, 0.0, 1e5, 2.0, 0.0]]))
    for pts in variants:
        ab = torch.from_numpy(np.ascontiguousarray(pts)).reshape(1, 2, 1, -1)
        for x in (ab, ab.float()):
            assert_same(x, bins, 5)


def test_fine_engine_real_photos_and_photo_like() -> None:
    bins = reference_bins()
    fine_table(bins)
    ab = srgb_ab(32, (5, 48, 64))  # grey bands: exact ties, rechecked in float64
    assert_same(ab, bins, 5)
    assert_same(ab.double(), bins, 5)
    from pathlib import Path

    from PIL import Image

    from colorcli.color.lab import rgb_to_lab

    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    paths = sorted((root / "imagenet-sample").glob("*.JPEG"))[:6] if root.is_dir() else []
    if not paths:
        pytest.skip("no photos in ../shared/data/imagenet-sample")
    rgbs = []
    for path in paths:
        with Image.open(path) as img:
            rgbs.append(np.asarray(img.convert("RGB").resize((96, 64)), dtype=np.float32) / 255)
    rgb = torch.from_numpy(np.stack(rgbs)).permute(0, 3, 1, 2)
    assert_same(rgb_to_lab(rgb)[:, 1:].contiguous(), bins, 5)


def test_fine_rows_are_exact_supersets() -> None:
    """Dense random points: the brute-force K nearest are among the sub-cell's narrow row (or
    its wide row; or the cell goes to the brute force)."""
    bins = reference_bins()
    tab = fine_table(bins)
    g = torch.Generator().manual_seed(33)
    pts = (torch.rand((20000, 2), generator=g, dtype=torch.float64) * 200 - 100).numpy()
    ia = ((pts[:, 0] - tab.lo_a) * tab.inv_h).astype(np.int64)
    ib = ((pts[:, 1] - tab.lo_b) * tab.inv_h).astype(np.int64)
    assert ia.min() >= 0 and ib.min() >= 0 and ia.max() < tab.na and ib.max() < tab.nb
    cell = ia * tab.nb + ib
    _, ref = knn_engine.brute_knn(
        torch.from_numpy(pts[:, 0]), torch.from_numpy(pts[:, 1]), torch.from_numpy(bins), 5
    )
    ref_np = ref.numpy()
    r1 = tab.rows + 1
    for p in range(len(pts)):
        row = int(tab.code[cell[p]])
        if row == tab.rows:
            continue
        slots = np.arange(tab.width) * r1 + row
        cand = set(tab.index[slots][tab.coord_a[slots] < 1e6].tolist())
        assert set(ref_np[:, p].tolist()) <= cand


def test_fine_chunking_and_views() -> None:
    bins = reference_bins()
    ab = srgb_ab(34, (3, 90, 70))
    chunk = knn_fine.CHUNK
    try:
        for size in (999, 4096, 20000):
            knn_fine.CHUNK = size
            assert_same(ab, bins, 5)
    finally:
        knn_fine.CHUNK = chunk
    assert_same(ab.transpose(2, 3), bins, 5)


def test_fine_table_cache_built_once_reloaded_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built once into the user cache, loaded (not rebuilt) by a fresh process, and rebuilt
    when the file is truncated, corrupt or holds a pickled object (never unpickled)."""
    monkeypatch.setenv("COLORCLI_CACHE", str(tmp_path))
    bins = BIN_SETS["grid5"]()
    monkeypatch.setattr(knn_fine, "_TABLES", {})
    builds: list[int] = []
    real_build = knn_fine.build_arrays

    def counting(b: np.ndarray, k: int) -> dict[str, np.ndarray] | None:
        builds.append(k)
        return real_build(b, k)

    monkeypatch.setattr(knn_fine, "build_arrays", counting)
    path = knn_fine.cache_path(bins, 5)
    assert path.parent == tmp_path / "knn"
    first = fine_table(bins)
    assert builds == [5] and path.is_file()
    assert not list(path.parent.glob(".*.tmp"))  # atomic: no temporary left
    monkeypatch.setattr(knn_fine, "_TABLES", {})  # a fresh process
    again = fine_table(bins)
    assert builds == [5]
    assert np.array_equal(first.code, again.code) and np.array_equal(first.index, again.index)
    assert_same(random_ab(35, (1, 20, 20), torch.float32), bins, 5)
    data = path.read_bytes()
    for bad in (data[: len(data) // 2], b"not a zip at all"):
        path.write_bytes(bad)
        monkeypatch.setattr(knn_fine, "_TABLES", {})
        fine_table(bins)
        assert len(builds) == 1 + (1 if bad != b"not a zip at all" else 2)
        assert knn_fine._load(path, bins, 5) is not None  # rewritten
    # a pickled object array under a valid name: refused, not unpickled, rebuilt
    with open(path, "wb") as fh:
        arrays = {name: np.array([object()], dtype=object) for name in knn_fine._NAMES}
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    assert knn_fine._load(path, bins, 5) is None
    monkeypatch.setattr(knn_fine, "_TABLES", {})
    fine_table(bins)
    assert len(builds) == 4
    # inconsistent arrays (an index beyond Q) are refused too
    arr = real_build(bins, 5)
    assert arr is not None
    arr["rows"] = arr["rows"].copy()
    arr["rows"][0, 0] = len(bins)
    with open(path, "wb") as fh:
        np.savez(fh, **arr)  # type: ignore[arg-type]
    assert knn_fine._load(path, bins, 5) is None


def test_scratch_pools_are_shared_and_bounded() -> None:
    """One buffer cache serves both engines: same name, shape and dtype -> the same array;
    owners and chunk lengths never share; the cache is bounded."""
    from colorcli.color import _scratch

    p = _scratch.pool("knn", 1234)
    assert _scratch.pool("knn", 1234) is p and _scratch.pool("fine", 1234) is not p
    buf = p.get("d", (3, 1234), np.float32)
    assert buf.shape == (3, 1234) and buf.dtype == np.float32
    assert p.get("d", (3, 1234), np.float32) is buf
    assert p.get("d", (3, 1234), np.float64) is not buf
    for n in range(100):
        _scratch.pool("knn", n)
    assert len(_scratch._POOLS) <= _scratch._LIMIT
    assert knn_engine.work(77) is _scratch.pool("knn", 77)

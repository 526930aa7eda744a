"""Folder streaming, the ab prior of a folder and rebalancing files, against brute force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcli.color.bins import ab_axis, reference_bins, srgb_bins
from colorcli.color.lab import rgb_to_lab
from colorcli.data import (
    PriorEstimate,
    compute_rebalance,
    estimate_prior,
    histogram_ab,
    iter_decoded,
    list_folder,
    load_rebalance,
    save_rebalance,
)
from colorcli.errors import BadWeights, EmptyDataset
from colorcli.imageio import read_rgb


def make_folder(root: Path) -> Path:
    """Colour images, two grayscale ones, and three bad files (corrupt, empty, text)."""
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), (220, 30, 40)).save(root / "a_red.png")
    Image.new("RGB", (9, 9), (30, 60, 200)).save(root / "b_blue.bmp")
    y, x = np.mgrid[0:20, 0:24]
    grad = np.stack([x * 10, y * 12, 255 - x * 10], axis=-1).astype(np.uint8)
    sub = root / "sub"
    sub.mkdir()
    Image.fromarray(grad).save(sub / "c_gradient.png")
    rng = np.random.default_rng(0)
    photo = (rng.random((16, 16)) * 255).astype(np.uint8)
    Image.fromarray(photo, "L").save(root / "d_gray.jpg", quality=90)
    Image.fromarray(np.repeat(photo[..., None], 3, axis=2)).save(root / "e_gray_rgb.png")
    (root / "f_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "g_empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    return root


COLOUR = ["a_red.png", "b_blue.bmp", "sub/c_gradient.png"]


def reference_ab(path: Path, max_side: int | None) -> np.ndarray:
    rgb = torch.from_numpy(read_rgb(path, max_side)).permute(2, 0, 1)
    return rgb_to_lab(rgb)[1:].reshape(2, -1).T.double().numpy()  # (N, 2)


def brute_nearest(ab: np.ndarray, bins: np.ndarray) -> np.ndarray:
    d2 = ((ab[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    return d2.argmin(axis=1)


def brute_soft(ab: np.ndarray, bins: np.ndarray, k: int, sigma: float) -> np.ndarray:
    d2 = ((ab[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    w = np.exp(-np.take_along_axis(d2, idx, axis=1) / (2 * sigma**2))
    w /= w.sum(axis=1, keepdims=True)
    return np.bincount(idx.ravel(), weights=w.ravel(), minlength=len(bins))


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "photos")


def test_list_folder_splits_images_and_others(folder: Path) -> None:
    images, others = list_folder(folder)
    assert [p.name for p in images] == [
        "a_red.png",
        "b_blue.bmp",
        "d_gray.jpg",
        "e_gray_rgb.png",
        "f_corrupt.jpg",
        "g_empty.png",
        "c_gradient.png",
    ]
    assert [p.name for p, _ in others] == ["notes.txt"]


def test_hard_prior_matches_brute_force(folder: Path) -> None:
    bins = reference_bins()
    images, _ = list_folder(folder)
    est = estimate_prior(images, bins, max_side=16)
    expected = np.zeros(len(bins))
    n_pixels = 0
    for name in COLOUR:
        ab = reference_ab(folder / name, 16)
        expected += np.bincount(brute_nearest(ab, bins), minlength=len(bins))
        n_pixels += len(ab)
    assert np.array_equal(est.counts, expected)
    assert est.n_images == 5 and est.n_gray == 2 and est.n_colour == 3
    assert est.n_pixels == n_pixels == est.counts.sum()
    assert sorted(p.name for p, _ in est.bad) == ["f_corrupt.jpg", "g_empty.png"]
    assert all(str(p) in reason for p, reason in est.bad)


def test_soft_prior_matches_brute_force(folder: Path) -> None:
    bins = reference_bins()
    files = [folder / n for n in COLOUR]
    est = estimate_prior(files, bins, max_side=None, assignment="soft")
    expected = sum(brute_soft(reference_ab(f, None), bins, 5, 5.0) for f in files)
    assert np.allclose(est.counts, expected, atol=1e-4)
    assert np.isclose(est.counts.sum(), est.n_pixels)


def test_workers_are_ordered_and_deterministic(folder: Path) -> None:
    bins = reference_bins()
    images, _ = list_folder(folder)
    seen: list[tuple[int, int, str]] = []
    one = estimate_prior(images, bins, max_side=16, workers=1)
    three = estimate_prior(
        images, bins, max_side=16, workers=3, on_image=lambda d, t, p: seen.append((d, t, p.name))
    )
    assert np.array_equal(one.counts, three.counts)
    assert one.bad == three.bad
    assert seen == [(i + 1, len(images), p.name) for i, p in enumerate(images)]
    many = [images[i % len(images)] for i in range(40)]
    assert [d.path for d in iter_decoded(many, 8, workers=3)] == many


def test_grayscale_threshold(tmp_path: Path) -> None:
    # a gray image with one faintly tinted pixel: |b| about 3 -> still gray; strong tint -> colour
    base = np.full((8, 8, 3), 128, dtype=np.uint8)
    faint, strong = base.copy(), base.copy()
    faint[0, 0] = (128, 128, 124)
    strong[0, 0] = (128, 128, 100)
    Image.fromarray(faint).save(tmp_path / "faint.png")
    Image.fromarray(strong).save(tmp_path / "strong.png")
    lab_faint = rgb_to_lab(torch.tensor(faint[0, 0] / 255.0).view(3, 1, 1).float())
    assert 0 < abs(float(lab_faint[2])) <= 5
    est = estimate_prior([tmp_path / "faint.png", tmp_path / "strong.png"], reference_bins())
    assert est.n_gray == 1 and est.n_pixels == 64


def test_histogram_ab_matches_brute_force(folder: Path) -> None:
    images, _ = list_folder(folder)
    hist = histogram_ab(images, 10.0, max_side=16, workers=2)
    axis = ab_axis(10.0)
    expected = np.zeros((len(axis), len(axis)), dtype=np.int64)
    for name in COLOUR:
        for a, b in reference_ab(folder / name, 16):
            expected[int(np.floor(a / 10 + 0.5)) + len(axis) // 2,
                     int(np.floor(b / 10 + 0.5)) + len(axis) // 2] += 1  # fmt: skip
    assert np.array_equal(hist.counts, expected)
    assert hist.n_gray == 2 and len(hist.bad) == 2


def test_compute_rebalance_expectation_and_lambda_one() -> None:
    bins = reference_bins()
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 50, len(bins)).astype(float)
    est = PriorEstimate(counts=counts, n_images=3, n_pixels=int(counts.sum()))
    prior, smoothed, w = compute_rebalance(est, bins, lam=0.5)
    assert np.allclose(prior, counts / counts.sum())
    assert np.isclose(smoothed.sum(), 1.0) and np.isclose((smoothed * w).sum(), 1.0)
    # rarer (smoothed) bins get larger weights: w is decreasing in p~
    order = np.argsort(smoothed)
    assert np.all(np.diff(w[order]) <= 1e-12)
    _, _, w1 = compute_rebalance(est, bins, lam=1.0)
    assert np.allclose(w1, 1.0)
    with pytest.raises(EmptyDataset):
        compute_rebalance(PriorEstimate(counts=np.zeros(len(bins))), bins)


def test_rebalance_file_round_trip(tmp_path: Path) -> None:
    bins = srgb_bins(10.0, steps=17)
    rng = np.random.default_rng(2)
    p = rng.random(len(bins))
    p /= p.sum()
    settings = {"lambda": 0.5, "sigma": 5.0, "q_mode": "all", "source": "/x", "n_images": 3}
    out = save_rebalance(
        tmp_path / "w", bins=bins, prior=p, prior_smoothed=p, weights=1 / p, settings=settings
    )
    assert out.name == "w.npz" and [f.name for f in tmp_path.iterdir()] == ["w.npz"]
    reb = load_rebalance(out)
    assert np.array_equal(reb.bins, bins) and np.array_equal(reb.weights, 1 / p)
    assert np.array_equal(reb.prior, p) and reb.settings == settings
    with np.load(out, allow_pickle=False) as npz:  # plain arrays only: loads without pickle
        assert json.loads(str(npz["settings"])) == settings


def test_load_rebalance_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.npz"
    with pytest.raises(BadWeights, match=r"nope\.npz: no such file"):
        load_rebalance(missing)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 garbage garbage")
    with pytest.raises(BadWeights, match=r"corrupt\.npz"):
        load_rebalance(corrupt)
    arr = tmp_path / "bins.npy"
    np.save(arr, reference_bins())
    with pytest.raises(BadWeights, match="single array"):
        load_rebalance(arr)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    with pytest.raises(BadWeights, match="missing"):
        load_rebalance(other)
    obj = tmp_path / "pickled.npz"
    np.savez(obj, kind=np.array("colorcli-rebalance"), bins=np.array([{"a": 1}], dtype=object),
             prior=np.ones(1), prior_smoothed=np.ones(1), weights=np.ones(1),
             settings=np.array("{}"))  # fmt: skip
    with pytest.raises(BadWeights, match=r"pickled\.npz"):
        load_rebalance(obj)
    bins = reference_bins()
    bad_shape = save_rebalance(
        tmp_path / "shape.npz",
        bins=bins,
        prior=np.ones(len(bins)),
        prior_smoothed=np.ones(len(bins)),
        weights=np.ones(len(bins)),
        settings={},
    )
    with np.load(bad_shape) as npz:
        data = dict(npz)
    data["weights"] = np.ones(5)
    np.savez(bad_shape, **data)
    with pytest.raises(BadWeights, match=r"weights has shape \(5,\)"):
        load_rebalance(bad_shape)


def test_real_photos_prior_peaks_near_neutral(shared_data: Path) -> None:
    train = shared_data / "bsds500" / "train"
    if not train.is_dir():
        pytest.skip(f"{train} not found")
    files = sorted(train.glob("*.jpg"))[:8]
    bins = reference_bins()
    est = estimate_prior(files, bins, max_side=96)
    assert est.n_colour >= 6 and not est.bad
    top = bins[np.argsort(est.counts)[::-1][:5]]
    assert np.abs(top).max() <= 20, top

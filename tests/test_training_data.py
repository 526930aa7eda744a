"""Training data path: crops, deterministic resumable batch order, sharding, splits, config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcli.errors import UsageError
from colorcli.training.common import colour_mask, select, to_lab
from colorcli.training.config import LR_MILESTONES, make_config
from colorcli.training.dataset import (
    SCALE_JITTER,
    BatchOrder,
    PhotoCrops,
    load_crop,
    make_loader,
    split_files,
)


def _photo(path: Path, w: int, h: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)
    return path


# --- crops --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("w", "h"), [(20, 12), (64, 48), (300, 500)])
def test_load_crop_size_any_image(tmp_path: Path, w: int, h: int) -> None:
    p = _photo(tmp_path / "a.png", w, h)
    for seed in range(3):
        out = load_crop(p, 32, np.random.default_rng(seed))
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8
        assert out.flags.writeable
    assert load_crop(p, 32, None).shape == (32, 32, 3)


def test_val_crop_is_the_centre_of_the_resized_image(tmp_path: Path) -> None:
    p = _photo(tmp_path / "a.png", 64, 32)
    out = load_crop(p, 32, None)  # short side already 32: no resize, centre window in x
    ref = np.asarray(Image.open(p))[:, 16:48]
    np.testing.assert_array_equal(out, ref)


def test_train_crop_scale_range_and_flip(tmp_path: Path) -> None:
    """A 64x64 image whose pixel value encodes x: crops cover between 32/46 and all of the
    short side, and about half of them are flipped."""
    x = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    p = tmp_path / "ramp.png"
    Image.fromarray(np.stack([x, x, x], axis=2)).save(p)
    flips = 0
    spans = []
    for seed in range(40):
        out = load_crop(p, 32, np.random.default_rng(seed)).astype(int)[:, :, 0]
        row = out[16]
        flips += int(row[0] > row[-1])
        spans.append(abs(int(row[-1]) - int(row[0])))
    assert 8 <= flips <= 32
    # a crop of 32 pixels of a short side resized to s in [32, 46] covers 32/s of the ramp
    assert max(spans) >= 240 * 32 / 33 - 12
    assert min(spans) >= 255 * 31 / round(32 * SCALE_JITTER) - 12


def test_photo_crops_bad_file_is_flagged(tmp_path: Path) -> None:
    good = _photo(tmp_path / "good.png", 40, 40)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    ds = PhotoCrops([good, bad], 32, train=True, seed=0)
    rgb, ok, idx, err = ds[(1, 0)]
    assert not ok and idx == 1 and "bad.jpg" in err and rgb.shape == (3, 32, 32)
    rgb, ok, _, err = ds[(0, 0)]
    assert ok and err == "" and rgb.dtype == torch.uint8
    # same key, same crop (no hidden global RNG)
    assert torch.equal(ds[(0, 3)][0], ds[(0, 3)][0])
    assert not torch.equal(ds[(0, 3)][0], ds[(0, 4)][0])


# --- batch order --------------------------------------------------------------------------------


def test_batch_order_is_a_permutation_per_epoch() -> None:
    order = BatchOrder(n=10, batch_size=3, seed=1)
    assert order.batches_per_epoch == 3
    keys = order.epoch_keys(0)
    assert keys.shape == (3, 3) and len(set(keys.ravel().tolist())) == 9
    assert not np.array_equal(order.epoch_keys(0), order.epoch_keys(1))
    np.testing.assert_array_equal(order.epoch_keys(2), BatchOrder(10, 3, 1).epoch_keys(2))


def test_batch_order_resume_position() -> None:
    order = BatchOrder(n=7, batch_size=2, seed=5)
    full = order.batches(0)
    seq = [next(full) for _ in range(11)]
    for start in (0, 1, 3, 4, 9):
        it = order.batches(start)
        assert [next(it) for _ in range(11 - start)] == seq[start:]


def test_batch_order_small_dataset_repeats_files() -> None:
    order = BatchOrder(n=1, batch_size=4, seed=0)
    assert order.batches_per_epoch == 1
    assert next(order.batches(0)) == [(0, 0)] * 4


def test_sharding_is_disjoint_and_matches_the_global_batch() -> None:
    one = BatchOrder(n=20, batch_size=6, seed=3)
    r0 = BatchOrder(n=20, batch_size=3, seed=3, rank=0, world_size=2)
    r1 = BatchOrder(n=20, batch_size=3, seed=3, rank=1, world_size=2)
    g, a, b = one.batches(0), r0.batches(0), r1.batches(0)
    for _ in range(7):
        ga, gb, gg = next(a), next(b), next(g)
        assert not set(ga) & set(gb)
        assert ga + gb == gg


def test_loader_with_workers_equals_in_process(tmp_path: Path) -> None:
    files = [_photo(tmp_path / f"{i}.png", 40 + i, 36, seed=i) for i in range(5)]
    ds = PhotoCrops(files, 32, train=True, seed=0)
    order = BatchOrder(len(files), 2, seed=0)
    a = make_loader(ds, order, 3, workers=0, pin_memory=False)
    b = make_loader(ds, order, 3, workers=2, pin_memory=False)
    for (xa, oka, ia, _), (xb, okb, ib, _) in zip(a, b, strict=False):
        assert torch.equal(xa, xb) and torch.equal(ia, ib) and bool(oka.all() and okb.all())
        break


def test_split_files_deterministic(tmp_path: Path) -> None:
    files = [Path(f"f{i}.jpg") for i in range(40)]
    tr, va = split_files(files, 0.05, seed=0)
    assert len(va) == 2 and len(tr) == 38 and not set(tr) & set(va)
    assert split_files(files, 0.05, seed=0) == (tr, va)
    assert split_files(files[:1], 0.05, seed=0) == (files[:1], [])
    assert split_files(files[:3], 0.05, seed=0)[1].__len__() == 1


# --- Lab batches and masks ----------------------------------------------------------------------


def test_to_lab_matches_skimage_and_gray_mask() -> None:
    from skimage.color import rgb2lab

    rng = np.random.default_rng(0)
    rgb = (rng.random((2, 8, 8, 3)) * 255).astype(np.uint8)
    rgb[1] = rgb[1, :, :, :1]  # second image gray
    lum, ab = to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2), torch.device("cpu"))
    ref = rgb2lab(rgb / 255.0)
    np.testing.assert_allclose(lum[:, 0].numpy(), ref[..., 0], atol=1e-3)
    np.testing.assert_allclose(ab.permute(0, 2, 3, 1).numpy(), ref[..., 1:], atol=1e-3)
    assert colour_mask(ab).tolist() == [True, False]
    sub_l, sub_ab, scale = select(lum, ab, colour_mask(ab))
    assert sub_l.shape[0] == sub_ab.shape[0] == 1 and scale == 1.0
    _, all_ab, zero = select(lum, ab, torch.zeros(2, dtype=torch.bool))
    assert all_ab.shape[0] == 2 and zero == 0.0


# --- config -------------------------------------------------------------------------------------


def test_config_defaults_follow_the_papers() -> None:
    c = make_config("d", "o", "classification")
    assert (c.lr, c.betas, c.weight_decay, c.crop, c.batch_size) == (
        3e-5,
        (0.9, 0.99),
        1e-3,
        176,
        40,
    )
    assert c.lr_milestones == LR_MILESTONES
    # Zhang: 3e-5 -> 1e-5 at 200k -> 3e-6 at 375k of 450k
    assert c.lr * c.lr_factor(199_999) == pytest.approx(3e-5)
    assert c.lr * c.lr_factor(200_000) == pytest.approx(1e-5)
    assert c.lr * c.lr_factor(375_000) == pytest.approx(3e-6)
    short = make_config("d", "o", "classification", steps=900)
    assert short.lr_factor(399) == 1.0 and short.lr_factor(400) == pytest.approx(1 / 3)
    assert short.lr_factor(750) == pytest.approx(0.1)
    g = make_config("d", "o", "cgan")
    assert (g.lr, g.betas, g.arch, g.crop, g.lambda_l1) == (2e-4, (0.5, 0.999), "unet", 256, 100.0)
    assert g.lr_factor(10**9) == 1.0


def test_config_round_trip_and_errors() -> None:
    c = make_config("d", "o", "cgan", gan="hinge", width=0.5, depth=5, crop=64)
    assert type(c).from_dict(c.to_dict()) == c
    with pytest.raises(UsageError, match="multiple of 32"):
        make_config("d", "o", "regression", crop=48, depth=5)
    with pytest.raises(UsageError, match="multiple of 8"):
        make_config("d", "o", "classification", crop=36)
    with pytest.raises(UsageError, match="label-smoothing"):
        make_config("d", "o", "cgan", gan="hinge", label_smoothing=0.9, crop=256)
    with pytest.raises(UsageError, match="eccv16"):
        make_config("d", "o", "classification", arch="unet")

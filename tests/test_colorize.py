"""colorize core: full-resolution colour math against scikit-image, legacy handling, the
Colorizer API (arrays, PIL, 16-bit, alpha, orientation) with a tiny random model."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from colorcli.color.lab_np import lab_to_rgb_image, luminance
from colorcli.color.legacy import detect_legacy, restore_luminance
from colorcli.colorize import ColorizeConfig, colorize_paths
from colorcli.errors import UsageError
from colorcli.inference import Colorizer, ColorSettings

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def colorizer(tiny_model: Path) -> Colorizer:
    return Colorizer.load(tiny_model, device="cpu")


def _constant(ab: tuple[float, float], size: int = 32) -> Colorizer:
    """A Colorizer whose 'network' predicts the same ab everywhere (a hand-checkable model)."""

    def predict(lum: torch.Tensor, temperature: float | None) -> torch.Tensor:
        out = torch.empty(lum.shape[0], 2, *lum.shape[-2:])
        out[:, 0], out[:, 1] = ab
        return out

    return Colorizer(predict, size)


def _photo(h: int = 40, w: int = 56) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / w * 4)
    g = 30 + 200 * y / h
    b = 220 - 180 * (x + y) / (h + w)
    return np.clip(np.dstack([r, g, b]), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- colour math


def test_luminance_matches_skimage() -> None:
    rgb8 = RNG.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    np.testing.assert_allclose(luminance(rgb8), rgb2lab(rgb8 / 255.0)[..., 0], atol=1e-3)
    rgb16 = RNG.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    np.testing.assert_allclose(luminance(rgb16), rgb2lab(rgb16 / 65535.0)[..., 0], atol=1e-3)
    gray = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    ref = rgb2lab(np.repeat(gray[..., None], 3, axis=2) / 255.0)[..., 0]
    np.testing.assert_allclose(luminance(gray), ref, atol=1e-3)
    assert luminance(rgb8).dtype == np.float32


def test_lab_to_rgb_matches_skimage() -> None:
    lab = np.dstack(
        [
            RNG.uniform(0, 100, (60, 70)),
            RNG.uniform(-90, 90, (60, 70)),
            RNG.uniform(-90, 90, (60, 70)),
        ]
    )
    with pytest.warns(UserWarning):  # skimage reports the negative Z it clips, as we do
        ref = lab2rgb(lab)
    lum, ab = lab[..., 0].astype(np.float32), lab[..., 1:].astype(np.float32)
    out8 = lab_to_rgb_image(lum, ab, 8)
    assert out8.dtype == np.uint8
    diff8 = np.abs(out8.astype(int) - np.round(ref * 255))
    assert diff8.max() <= 1 and (diff8 > 0).mean() < 0.01
    out16 = lab_to_rgb_image(lum, ab, 16)
    assert out16.dtype == np.uint16
    assert np.abs(out16.astype(int) - np.round(ref * 65535)).max() <= 2


def test_parallel_strips_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from colorcli.color import lab_np

    rgb = RNG.integers(0, 256, (97, 61, 3), dtype=np.uint8)
    ab = RNG.uniform(-60, 60, (97, 61, 2)).astype(np.float32)
    serial_l = luminance(rgb)
    serial_rgb = lab_to_rgb_image(serial_l, ab)
    monkeypatch.setattr(lab_np, "PARALLEL_PIXELS", 0)
    monkeypatch.setattr(lab_np, "STRIP_PIXELS", 500)  # many strips of 8 rows
    np.testing.assert_array_equal(luminance(rgb), serial_l)
    np.testing.assert_array_equal(lab_to_rgb_image(serial_l, ab), serial_rgb)


def test_detect_legacy() -> None:
    photo = _photo()
    assert detect_legacy(photo[..., 1]) == "grayscale"
    assert detect_legacy(np.repeat(photo[..., 1:2], 3, axis=2)) == "grayscale"
    # sepia toning: a fixed hue whose chroma follows L, as in a toned print
    lum = rgb2lab(np.repeat(photo[..., 1:2], 3, axis=2) / 255.0)[..., 0]
    sepia = np.dstack([lum, 0.12 * lum + 2, 0.3 * lum + 4])
    sepia_rgb = np.round(lab2rgb(sepia) * 255).astype(np.uint8)
    assert detect_legacy(sepia_rgb) == "tinted"
    assert detect_legacy(photo) is None


def test_detect_legacy_real_photos(shared_data: Path) -> None:
    colour = np.asarray(Image.open(shared_data / "bsds500" / "test" / "100039.jpg").convert("RGB"))
    assert detect_legacy(colour) is None
    gray = np.asarray(Image.open(shared_data / "bsds500" / "test" / "100039.jpg").convert("L"))
    assert detect_legacy(gray) == "grayscale"


def test_restore_luminance() -> None:
    faded = np.clip(45 + 10 * np.sin(np.mgrid[0:64, 0:64][1] / 5.0), 0, 100).astype(np.float32)
    faded += np.linspace(0, 5, 64, dtype=np.float32)[:, None]
    out = restore_luminance(faded, clahe=True, clahe_clip=4.0)
    assert out.dtype == np.float32 and out.shape == faded.shape
    assert np.ptp(out) > 1.5 * np.ptp(faded) and out.min() >= 0 and out.max() <= 100
    # reference: OpenCV's CLAHE on the 8-bit L, plus the sub-8-bit remainder (at most 0.2 L)
    l8 = np.clip(faded * 2.55 + 0.5, 0, 255).astype(np.uint8)
    ref = cv2.createCLAHE(clipLimit=4.0, tileGridSize=(8, 8)).apply(l8) / 2.55
    assert np.abs(out - ref).max() < 0.21
    noisy = np.clip(50 + RNG.normal(0, 4, (64, 64)), 0, 100).astype(np.float32)
    den = restore_luminance(noisy, denoise=True, denoise_strength=12)
    assert den.std() < 0.5 * noisy.std() and abs(den.mean() - noisy.mean()) < 1
    assert restore_luminance(noisy) is noisy


def test_settings_validation() -> None:
    with pytest.raises(UsageError, match="--no-legacy"):
        ColorSettings(legacy="off", clahe=True)
    with pytest.raises(UsageError, match="saturation"):
        ColorSettings(saturation=-1)
    with pytest.raises(UsageError, match="size"):
        ColorSettings(size=3)


# ---------------------------------------------------------------------------- Colorizer


def test_constant_prediction_is_joined_with_original_l() -> None:
    """With a constant-ab model, every output pixel is (original L, that ab) in Lab."""
    photo = _photo()
    out = _constant((12.0, -20.0)).colorize_array(photo[..., 1])
    lab = rgb2lab(out / 255.0)
    ref_l = rgb2lab(np.repeat(photo[..., 1:2], 3, axis=2) / 255.0)[..., 0]
    inside = (ref_l > 15) & (ref_l < 85)  # in gamut for this ab: only 8-bit rounding remains
    assert np.abs(lab[..., 0] - ref_l)[inside].max() < 0.5
    assert np.abs(lab[..., 1][inside] - 12).max() < 1.5
    assert np.abs(lab[..., 2][inside] + 20).max() < 1.5


def test_saturation_zero_keeps_l_exactly(colorizer: Colorizer) -> None:
    photo = _photo(45, 61)
    out = colorizer.with_settings(saturation=0.0).colorize_array(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    ref = rgb2lab(photo / 255.0)[..., 0]
    assert np.abs(rgb2lab(out / 255.0)[..., 0] - ref).max() < 0.3  # 8-bit rounding only
    assert np.ptp(out.astype(int), axis=2).max() <= 1  # gray


def test_colour_output_keeps_l(colorizer: Colorizer) -> None:
    photo = _photo(45, 61)
    out = colorizer.colorize_array(photo)
    ref = rgb2lab(photo / 255.0)[..., 0]
    err = np.abs(rgb2lab(out / 255.0)[..., 0] - ref)
    # gamut clipping of saturated colours may move L a little; most pixels are exact
    assert np.median(err) < 0.3 and err.max() < 12


def test_array_types_and_alpha(colorizer: Colorizer) -> None:
    photo = _photo()
    alpha = RNG.integers(0, 256, photo.shape[:2], dtype=np.uint8)
    rgba = colorizer.colorize_array(np.dstack([photo, alpha]))
    assert rgba.shape == (*photo.shape[:2], 4)
    np.testing.assert_array_equal(rgba[..., 3], alpha)
    p16 = photo.astype(np.uint16) * 257
    out16 = colorizer.colorize_array(p16)
    assert out16.dtype == np.uint16 and out16.shape == photo.shape
    outf = colorizer.colorize_array(photo / 255.0)
    assert outf.dtype == np.float32 and outf.min() >= 0 and outf.max() <= 1
    np.testing.assert_allclose(outf * 255, colorizer.colorize_array(photo), atol=1.01)
    img = colorizer.colorize(Image.fromarray(np.dstack([photo, alpha]), "RGBA"))
    assert img.mode == "RGBA" and img.size == (photo.shape[1], photo.shape[0])


def test_pil_orientation(colorizer: Colorizer, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_photo(30, 50)).save(tmp_path / "o.jpg", exif=exif.tobytes())
    out = colorizer.colorize(Image.open(tmp_path / "o.jpg"))
    assert out.size == (30, 50) and out.mode == "RGB"


def test_size_and_batch_consistency(colorizer: Colorizer) -> None:
    a, b = _photo(33, 47), _photo(66, 94)  # the same aspect ratio
    assert colorizer.with_settings(size=32).size == 32
    pa, pb = colorizer.prepare(_decoded(a)), colorizer.prepare(_decoded(b))
    # long side = the network size (64), aspect kept: 33 / 47 * 64 = 44.9 -> 45
    assert pa.l_small.shape == pb.l_small.shape == (45, 64)
    both = colorizer.predict_ab(np.stack([pa.l_small, pb.l_small]))
    alone = colorizer.predict_ab(pa.l_small[None])
    assert both.shape == (2, 2, 45, 64)
    np.testing.assert_allclose(both[0], alone[0], atol=1e-3)  # batching changes nothing


def test_network_size_keeps_aspect() -> None:
    from colorcli.inference import network_size

    assert network_size((768, 1024), 256) == (256, 192)  # (width, height)
    assert network_size((1024, 768, 3), 256) == (192, 256)
    assert network_size((100, 100), 176) == (176, 176)
    assert network_size((10, 4000), 256) == (256, 8)  # at least 8 px


def _decoded(pixels: np.ndarray):  # type: ignore[no-untyped-def]
    from colorcli.imageio import decoded_from_array

    return decoded_from_array(pixels)


def test_colorize_paths_python_api(
    colorizer: Colorizer, tiny_model: Path, tmp_path: Path, shared_data: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(shared_data / "legacy" / "old_w_scratch_b.png", src)
    Image.fromarray(_photo()).save(src / "c.jpg")
    seen: list[str] = []
    cfg = ColorizeConfig(inputs=(str(src),), out_dir=tmp_path / "out", model=str(tiny_model))
    summary = colorize_paths(cfg, on_result=lambda r: seen.append(r.status))
    assert (summary.done, summary.failed) == (1, 0) and sorted(seen) == ["done", "skipped"]
    assert summary.legacy == 1 and summary.skipped_for("colour") == [src / "c.jpg"]
    cfg = replace(cfg, recolor=True)  # the colour photo too, from its lightness
    summary = colorize_paths(cfg, colorizer)
    assert (summary.done, summary.skipped, summary.legacy) == (1, 1, 0)
    again = colorize_paths(cfg, colorizer)
    assert (again.done, again.skipped) == (0, 2)


def test_opencv_pool_is_off_while_any_batch_runs(tmp_path: Path) -> None:
    """OpenCV's thread count is process-wide: two batches running at the same time (one
    program's threads) keep it at 0 until the last one ends, which restores the caller's."""
    from colorcli.colorize.plan import plan_colorize
    from colorcli.colorize.run import colorize_jobs

    src = tmp_path / "in"
    src.mkdir()
    gray = _photo()[..., 0]
    for i in range(2):
        Image.fromarray(gray).save(src / f"g{i}.png")
    colorizer = _constant((20.0, -10.0))

    def batch(out: str) -> object:
        cfg = ColorizeConfig(inputs=(str(src),), out_dir=tmp_path / out, batch_size=1)
        return colorize_jobs(plan_colorize(cfg).jobs, colorizer, cfg)

    before = cv2.getNumThreads()
    cv2.setNumThreads(0)
    off = cv2.getNumThreads()  # what OpenCV reports with its pool off (1: sequential)
    cv2.setNumThreads(3)
    try:
        first, second = batch("a"), batch("b")
        next(first)  # type: ignore[call-overload]
        next(second)  # type: ignore[call-overload]
        assert cv2.getNumThreads() == off
        assert [r.status for r in first] == ["done"]  # type: ignore[attr-defined]
        assert cv2.getNumThreads() == off  # the second batch still runs
        assert [r.status for r in second] == ["done"]  # type: ignore[attr-defined]
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)

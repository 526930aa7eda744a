"""`colorcli colorize` end to end with Typer's CliRunner on small real images and a tiny
random model: formats, modes, layout, orientation, alpha, 16-bit, L preservation, resume,
atomic writes, bad files, usage errors, the offline Hugging Face path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab
from typer.testing import CliRunner

from colorcli import imageio
from colorcli.cli import app

runner = CliRunner()


def _photo(h: int = 36, w: int = 52) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / w * 4)
    g = 30 + 200 * y / h
    b = 220 - 180 * (x + y) / (h + w)
    return np.clip(np.dstack([r, g, b]), 0, 255).astype(np.uint8)


def _run(*args: str | Path) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def _lab_l(rgb: np.ndarray) -> np.ndarray:
    peak = 65535.0 if rgb.dtype == np.uint16 else 255.0
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    return rgb2lab(rgb / peak)[..., 0]


def test_every_format_and_mode(tiny_model: Path, tmp_path: Path, shared_data: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub" / "deeper").mkdir(parents=True)
    photo = _photo()
    gray = photo[..., 1].copy()
    alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    Image.fromarray(photo).save(src / "rgb.jpg", quality=95)
    Image.fromarray(gray).save(src / "gray.jpg")
    Image.fromarray(photo).convert("CMYK").save(src / "sub" / "cmyk.jpg")
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(src / "sub" / "rgba.png")
    Image.fromarray(photo).quantize(32).save(src / "sub" / "pal.png")
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(src / "sub" / "la.png")
    Image.fromarray(photo).save(src / "sub" / "deeper" / "rgb.tif")
    Image.fromarray(photo).save(src / "rgb.webp", quality=90)
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(src / "rgba.webp", lossless=True)
    Image.fromarray(photo).save(src / "rgb.bmp")
    Image.fromarray(gray).save(src / "gray.bmp")
    p16 = (photo.astype(np.uint16) * 257) ^ 0x55  # use the low byte too
    cv2.imwrite(str(src / "rgb16.png"), cv2.cvtColor(p16, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(src / "rgb16.tif"), cv2.cvtColor(p16, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(src / "gray16.tif"), p16[..., 1])
    shutil.copy(shared_data / "legacy" / "old_w_scratch_c.png", src / "scan.png")
    shutil.copy(shared_data / "bsds500" / "test" / "100007.jpg", src / "sub" / "photo.jpg")

    code, output = _run(
        "colorize", src, "-o", out, "-m", tiny_model, "--batch-size", "3", "--recolor"
    )
    assert code == 0, output
    inputs = imageio.find_images_with_roots([src])
    assert len(inputs) == 16
    for path, rel in inputs:
        result = out / rel
        assert result.is_file(), rel
        d_in, d_out = imageio.read_image(path), imageio.read_image(result)
        assert d_out.format == d_in.format, rel
        assert (d_out.height, d_out.width) == (d_in.height, d_in.width), rel
        assert d_out.pixels.ndim == 3, rel  # colour, whatever the input mode
        assert d_out.bit_depth == d_in.bit_depth, rel
        assert (d_out.alpha is None) == (d_in.alpha is None), rel
        if d_in.alpha is not None and d_in.format != "JPEG":
            np.testing.assert_array_equal(d_out.alpha, d_in.alpha, err_msg=str(rel))
        if d_in.format in ("PNG", "TIFF", "BMP") and "cmyk" not in rel.name:
            # lossless outputs: L of the output follows L of the input (gamut clipping aside)
            err = np.abs(_lab_l(d_out.pixels) - _lab_l(d_in.pixels))
            assert np.median(err) < 0.3, rel
    assert "16" in output and "legacy" in output


def test_l_preserved_exactly_without_colour(tiny_model: Path, tmp_path: Path) -> None:
    photo = _photo(40, 60)
    Image.fromarray(photo).save(tmp_path / "a.png")
    code, output = _run(
        "colorize", tmp_path / "a.png", "-o", tmp_path / "o", "-m", tiny_model, "--saturation", "0",
        "--recolor",
    )  # fmt: skip
    assert code == 0, output
    out = np.asarray(Image.open(tmp_path / "o" / "a.png"))
    assert np.abs(_lab_l(out) - _lab_l(photo)).max() < 0.3
    p16 = photo.astype(np.uint16) * 257 + 100
    cv2.imwrite(str(tmp_path / "b.tif"), cv2.cvtColor(p16, cv2.COLOR_RGB2BGR))
    code, output = _run(
        "colorize", tmp_path / "b.tif", "-o", tmp_path / "o", "-m", tiny_model, "--saturation", "0",
        "--recolor",
    )  # fmt: skip
    assert code == 0, output
    out16 = imageio.read_image(tmp_path / "o" / "b.tif").pixels
    assert out16.dtype == np.uint16
    assert np.abs(_lab_l(out16) - _lab_l(p16)).max() < 0.01  # 16-bit rounding only


def test_exif_orientation_and_metadata(tiny_model: Path, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "OldCam"
    photo = _photo(30, 50)
    Image.fromarray(photo).save(tmp_path / "o.jpg", exif=exif.tobytes(), dpi=(300, 300))
    code, output = _run(
        "colorize", tmp_path / "o.jpg", "-o", tmp_path / "out", "-m", tiny_model, "--recolor"
    )
    assert code == 0, output
    res = Image.open(tmp_path / "out" / "o.jpg")
    upright = np.asarray(Image.fromarray(photo).transpose(Image.Transpose.ROTATE_270))
    assert res.size == (30, 50) == (upright.shape[1], upright.shape[0])
    assert res.getexif()[0x0112] == 1 and res.getexif()[0x010F] == "OldCam"
    err = np.abs(_lab_l(np.asarray(res)) - _lab_l(upright))
    assert np.median(err) < 2.0  # the rotated L, through JPEG twice


def test_resume_overwrite_format_compare(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(_photo(), i * 5, axis=1)).save(src / f"p{i}.png")
    out = tmp_path / "out"
    args = [
        "colorize",
        src,
        "-o",
        out,
        "-m",
        tiny_model,
        "--format",
        "jpeg",
        "--compare",
        "--recolor",
    ]
    code, output = _run(*args)
    assert code == 0, output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"p{i}{s}" for i in range(3) for s in (".compare.jpg", ".jpg")]
    cmp_img = Image.open(out / "p0.compare.jpg")
    assert cmp_img.size == (2 * 52, 36)
    (out / "p1.jpg").unlink()
    stamp = (out / "p0.jpg").stat().st_mtime_ns
    code, output = _run(*args)
    assert code == 0, output
    assert (out / "p1.jpg").is_file() and (out / "p0.jpg").stat().st_mtime_ns == stamp
    assert "2 outputs already exist" in output
    code, output = _run(*args, "--overwrite")
    assert code == 0 and (out / "p0.jpg").stat().st_mtime_ns != stamp
    # the output folder inside the input folder is never read back as input
    code, output = _run(
        "colorize", tmp_path, "-o", out, "-m", tiny_model, "--format", "jpeg", "--recolor"
    )
    assert code == 0 and "left out" in output


def test_bad_files_reported_batch_continues(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_photo()).save(src / "good.jpg")
    (src / "zero.png").write_bytes(b"")
    Image.fromarray(_photo(64, 64)).save(tmp_path / "full.jpg")
    (src / "truncated.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:500])
    (src / "text.jpg").write_text("not an image")
    code, output = _run("colorize", src, "-o", tmp_path / "out", "-m", tiny_model, "--recolor")
    assert code == 1
    assert (tmp_path / "out" / "good.jpg").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.jpg"]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    for name, why in (("zero.png", "empty"), ("truncated.jpg", "decode"), ("text.jpg", "not an")):
        assert any(name in e and why in e for e in errors), (name, errors)
    assert "Traceback" not in output


def test_atomic_write_crash_leaves_no_partial_file(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(_photo()).save(src / f"p{i}.png")
    real_save = Image.Image.save

    def crashing_save(self: Image.Image, fp: object, *a: object, **k: object) -> None:
        if "p1" in str(fp):
            Path(str(fp)).write_bytes(b"\x89PNG half written")
            raise OSError(28, "No space left on device")
        real_save(self, fp, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "save", crashing_save)
    out = tmp_path / "out"
    code, output = _run("colorize", src, "-o", out, "-m", tiny_model, "--workers", "1", "--recolor")
    assert code == 1 and "p1.png" in output and "No space left" in output
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p2.png"]  # no temp, no partial
    monkeypatch.setattr(Image.Image, "save", real_save)
    # a killed run's temp file (dead pid) is cleaned up, and the rerun completes the batch
    (out / f".p1.999999999-1{imageio.TEMP_MARKER}.png").write_bytes(b"junk")
    code, output = _run("colorize", src, "-o", out, "-m", tiny_model, "--recolor")
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "p2.png"]


def test_usage_errors(tiny_model: Path, tmp_path: Path) -> None:
    Image.fromarray(_photo()).save(tmp_path / "a.jpg")
    code, output = _run("colorize", tmp_path / "a.jpg", "-o", tmp_path / "a.jpg", "-m", tiny_model)
    assert code == 2 and "input" in output
    assert Image.open(tmp_path / "a.jpg").size == (52, 36)  # untouched
    code, output = _run("colorize", tmp_path / "a.jpg", "-o", tmp_path, "-m", tiny_model)
    assert code == 2 and "inside the output folder" in output
    code, output = _run("colorize", tmp_path / "missing.jpg", "-m", tiny_model)
    assert code == 2 and "missing.jpg" in output
    code, output = _run("colorize", tmp_path / "a.jpg", "--no-legacy", "--clahe")
    assert code == 2
    code, output = _run(
        "colorize", tmp_path / "a.jpg", "-o", tmp_path / "o", "-m", tmp_path / "a.jpg"
    )
    assert code == 1 and "a.jpg" in output and "Traceback" not in output


def test_legacy_restoration(tiny_model: Path, tmp_path: Path, shared_data: Path) -> None:
    shutil.copy(shared_data / "legacy" / "old_w_scratch_b.png", tmp_path / "scan.png")
    out1, out2 = tmp_path / "plain", tmp_path / "restored"
    assert _run("colorize", tmp_path / "scan.png", "-o", out1, "-m", tiny_model)[0] == 0
    code, output = _run(
        "colorize", tmp_path / "scan.png", "-o", out2, "-m", tiny_model, "--clahe", "--denoise"
    )
    assert code == 0, output
    plain = _lab_l(np.asarray(Image.open(out1 / "scan.png").convert("RGB")))
    restored = _lab_l(np.asarray(Image.open(out2 / "scan.png").convert("RGB")))
    assert plain.shape == restored.shape and np.abs(plain - restored).mean() > 1


def test_hf_offline_model(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hf" / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / "models--someone--colorizers"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    (root / "snapshots" / commit).mkdir(parents=True)
    shutil.copy(tiny_model, root / "snapshots" / commit / "tiny.pt")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    Image.fromarray(_photo()).save(tmp_path / "a.png")
    code, output = _run(
        "colorize",
        tmp_path / "a.png",
        "-o",
        tmp_path / "o",
        "-m",
        "hf://someone/colorizers/tiny.pt",
        "--recolor",
    )
    assert code == 0, output
    assert (tmp_path / "o" / "a.png").is_file()
    code, output = _run(
        "colorize", tmp_path / "a.png", "-o", tmp_path / "o2", "-m", "hf://someone/other/tiny.pt"
    )
    assert code == 1 and "hf://someone/other/tiny.pt" in output and "Traceback" not in output
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_debug_shows_traceback_for_bad_file(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_text("no")
    args = ["colorize", str(tmp_path / "bad.png"), "-o", str(tmp_path / "o"), "-m", str(tiny_model)]
    plain = runner.invoke(app, args)
    debug = runner.invoke(app, ["--debug", *args])
    assert plain.exit_code == debug.exit_code == 1
    assert "Traceback" not in plain.output and "Traceback" in debug.output
    assert "bad.png" in debug.output


def test_max_pixels_guard(tiny_model: Path, tmp_path: Path) -> None:
    Image.fromarray(_photo()).save(tmp_path / "a.png")  # 52 x 36 = 1872 pixels
    base = ["colorize", tmp_path / "a.png", "-m", tiny_model]
    code, output = _run(*base, "-o", tmp_path / "o1", "--max-pixels", "1000")
    assert code == 1 and "--max-pixels" in output and "a.png" in output
    assert _run(*base, "-o", tmp_path / "o2", "--max-pixels", "2000", "--recolor")[0] == 0


def test_output_name_collisions_fail_clearly(tiny_model: Path, tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(_photo()).save(tmp_path / sub / "x.jpg")
    Image.fromarray(_photo()).save(tmp_path / "a" / "x.png")
    out = tmp_path / "out"
    code, output = _run(
        "colorize", tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.jpg", "-o", out, "-m", tiny_model,
        "--recolor",
    )  # fmt: skip
    assert code == 1 and "would also be written" in output
    assert sorted(p.name for p in out.iterdir()) == ["x.jpg"]
    code, output = _run(
        "colorize",
        tmp_path / "a",
        "-o",
        tmp_path / "o2",
        "-m",
        tiny_model,
        "-f",
        "png",
        "--recolor",
    )
    assert code == 1 and "x.png" in output and (tmp_path / "o2" / "x.png").is_file()


# ------------------------------------------------------------- issue 13: a real user's first hour


def _gray(h: int = 36, w: int = 52, shift: int = 0) -> np.ndarray:
    return np.roll(_photo(h, w)[..., 1], shift, axis=1)


def test_bomb_in_a_batch_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    from tests.test_imageio import _bomb_png

    src = tmp_path / "in"
    src.mkdir()
    _bomb_png(src / "bomb.png")
    for i in range(6):
        Image.fromarray(_gray(shift=3 * i)).save(src / f"p{i}.png")
    for attempt in range(3):  # concurrent readers, several runs: refused every time
        out = tmp_path / f"out{attempt}"
        code, output = _run("colorize", src, "-o", out, "-m", tiny_model, "--workers", "4")
        assert code == 1, output
        errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "bomb.png" in errors[0], output
        assert "decompression-bomb guard" in errors[0]
        assert sorted(p.name for p in out.iterdir()) == [f"p{i}.png" for i in range(6)]


def test_colour_photos_left_alone_by_default(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_photo()).save(src / "colour.jpg", quality=95)
    Image.fromarray(_gray()).save(src / "gray.png")
    out = tmp_path / "out"
    code, output = _run("colorize", src, "-o", out, "-m", tiny_model)
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["gray.png"]
    assert "1 colour photo left as it is" in output and "colour.jpg" in output
    assert "recolorized" not in output
    code, output = _run("colorize", src, "-o", out, "-m", tiny_model, "--recolor")
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["colour.jpg", "gray.png"]
    assert "recolorized from their lightness" in output and "colour.jpg" in output
    # --legacy treats every input as a monochrome scan: nothing is left alone then
    code, output = _run("colorize", src, "-o", tmp_path / "o2", "-m", tiny_model, "--legacy")
    assert code == 0 and sorted(p.name for p in (tmp_path / "o2").iterdir()) == [
        "colour.jpg",
        "gray.png",
    ]


def test_archivists_legacy_folder(tiny_model: Path, tmp_path: Path, shared_data: Path) -> None:
    src = tmp_path / "legacy"
    src.mkdir()
    for name in ("old_d.png", "old_w_scratch_a.png", "old_w_scratch_c.png"):
        shutil.copy(shared_data / "legacy" / name, src / name)
    out = tmp_path / "out"
    code, output = _run("colorize", src, "-o", out, "-m", tiny_model, "--clahe")
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["old_w_scratch_a.png", "old_w_scratch_c.png"]
    assert "old_d.png" in output and "left as it is" in output  # the Moulin Rouge keeps its red
    assert "did not touch" not in output  # --clahe reached both monochrome prints
    code, output = _run(
        "colorize", src / "old_d.png", "-o", tmp_path / "o2", "-m", tiny_model, "--clahe",
        "--recolor",
    )  # fmt: skip
    assert code == 0, output
    assert "--clahe/--denoise did not touch old_d.png" in " ".join(output.split())


def test_rerun_with_other_settings(tiny_model: Path, tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", (45455).to_bytes(4, "big"))
    Image.fromarray(_gray()).save(tmp_path / "a.png", pnginfo=info)
    Image.fromarray(_gray(shift=7)).save(tmp_path / "b.bmp")
    out = tmp_path / "out"
    base = ["colorize", tmp_path / "a.png", tmp_path / "b.bmp", "-o", out, "-m", tiny_model]
    code, output = _run(*base)
    assert code == 0, output
    record = imageio.read_record(out / "a.png")
    assert record is not None and '"saturation":1.0' in record and str(tiny_model) in record
    assert imageio.read_record(out / "b.bmp") == record  # BMP: the hidden sidecar
    with Image.open(out / "a.png") as im:
        assert im.info["gamma"] == pytest.approx(0.45455)  # the PNG colour chunks are kept
    stamp = (out / "a.png").stat().st_mtime_ns
    code, output = _run(*base)
    assert code == 0 and "2 outputs already exist with the same settings" in output
    code, output = _run(*base, "--saturation", "1.5")
    flat = " ".join(output.split())
    assert code == 0 and "2 outputs in" in flat and "other settings" in flat
    assert "saturation 1.0 -> 1.5" in flat and "--overwrite" in flat
    assert (out / "a.png").stat().st_mtime_ns == stamp  # kept, not silently replaced
    code, output = _run(*base, "--saturation", "1.5", "--overwrite")
    assert code == 0 and (out / "a.png").stat().st_mtime_ns != stamp
    assert '"saturation":1.5' in (imageio.read_record(out / "a.png") or "")
    code, output = _run(*base, "--saturation", "1.5")
    assert code == 0 and "already exist with the same settings" in output


def test_folder_scan_formats_ignored_and_nothing_to_do(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 256, (36, 52), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(_gray()).save(src / "scan.jfif", format="JPEG")
    Image.fromarray(_gray()).save(src / "scan2.jp2")
    (src / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    code, output = _run("colorize", src, "-o", out, "-m", tiny_model)
    assert code == 0, output
    names = sorted(p.name for p in out.iterdir())
    assert names == [".scan2.jp2.colorcli.json", "anim.png", "scan.jfif", "scan2.jp2"]
    flat = " ".join(output.split())
    assert "anim.gif: only the first of 3 frames was used" in flat
    assert "1 other file in the input folders ignored" in flat
    # nothing to do: one clear line, exit 1
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    code, output = _run("colorize", empty, "-o", tmp_path / "o2", "-m", tiny_model)
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1 and "no image file" in lines[0], output
    assert "1 other files ignored" in lines[0] and not (tmp_path / "o2").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_text("no")
    code, output = _run("colorize", bad, "-o", tmp_path / "o3", "-m", tiny_model)
    assert code == 1 and "nothing colorized: none of the 1 input file(s) could be read" in output

"""imageio: discovery, faithful decoding (modes, 16-bit, orientation, metadata), atomic writes."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

from colorcli import imageio
from colorcli.errors import BadImage, UsageError
from colorcli.imageio import (
    clean_temp_files,
    decoded_from_array,
    decoded_from_pil,
    find_images,
    find_images_with_roots,
    orient_array,
    read_image,
    write_image,
)
from colorcli.imageio.decode import _decode_jpeg

RNG = np.random.default_rng(1)


def _rgb(h: int = 12, w: int = 17) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth(h: int = 24, w: int = 32) -> np.ndarray:
    """A smooth colour picture (lossy codecs keep it within a few levels)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / w * 3)
    g = 40 + 180 * y / h
    b = 200 - 150 * (x + y) / (h + w)
    return np.clip(np.dstack([r, g, b]), 0, 255).astype(np.uint8)


def _exif(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    ex[0x010F] = "TestCam"
    return ex.tobytes()


# ---------------------------------------------------------------------------- discovery


def test_find_images_roots(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for p in ("a/x.jpg", "a/b/y.PNG", "a/.hidden/z.jpg", "a/notes.txt", "c.tif"):
        (tmp_path / p).write_bytes(b"x")
    got = dict(find_images_with_roots([tmp_path / "a", tmp_path / "c.tif"]))
    assert got == {
        tmp_path / "a" / "b" / "y.PNG": Path("b/y.PNG"),
        tmp_path / "a" / "x.jpg": Path("x.jpg"),
        tmp_path / "c.tif": Path("c.tif"),
    }
    globbed = dict(find_images_with_roots([str(tmp_path / "a" / "**" / "*.PNG")]))
    assert globbed == {tmp_path / "a" / "b" / "y.PNG": Path("b/y.PNG")}
    assert find_images([tmp_path / "c.tif", tmp_path / "c.tif"]) == [tmp_path / "c.tif"]
    with pytest.raises(UsageError, match="no such file"):
        find_images([tmp_path / "missing.jpg"])
    with pytest.raises(UsageError, match="no image files match"):
        find_images([str(tmp_path / "*.webp")])


# ---------------------------------------------------------------------------- reading


def _cases(tmp_path: Path) -> list[tuple[str, Path, np.ndarray, np.ndarray | None, bool]]:
    """(name, file, expected pixels, expected alpha, lossless) for every format and mode."""
    rgb = _smooth()
    gray = rgb[..., 1].copy()
    alpha = RNG.integers(0, 256, gray.shape, dtype=np.uint8)
    cases: list[tuple[str, Path, np.ndarray, np.ndarray | None, bool]] = []

    def save(
        name: str, img: Image.Image, px: np.ndarray, a: np.ndarray | None, **kw: object
    ) -> None:
        path = tmp_path / name
        img.save(path, **kw)  # type: ignore[arg-type]
        lossless = path.suffix not in (".jpg", ".webp") or bool(kw.get("lossless"))
        cases.append((name, path, px, a, lossless))

    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    for ext in ("png", "tif", "bmp", "jpg", "webp"):
        save(f"rgb.{ext}", Image.fromarray(rgb), rgb, None)
        # WebP has no grayscale mode: it stores (and decodes) RGB
        gray_px = np.repeat(gray[..., None], 3, axis=2) if ext == "webp" else gray
        save(f"gray.{ext}", Image.fromarray(gray), gray_px, None)
    for ext in ("png", "tif", "webp"):
        save(
            f"rgba.{ext}",
            rgba,
            rgb,
            alpha,
            **({"lossless": True, "exact": True} if ext == "webp" else {}),
        )
    save("la.png", Image.fromarray(np.dstack([gray, alpha]), "LA"), gray, alpha)
    pal = Image.fromarray(rgb).quantize(16)
    save("pal.png", pal, np.asarray(pal.convert("RGB")), None)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 0
    idx = np.asarray(pal)
    save(
        "pal_t.png",
        pal_t,
        np.asarray(pal.convert("RGB")),
        np.where(idx == 0, 0, 255).astype(np.uint8),
        transparency=0,
    )
    cmyk = Image.fromarray(rgb).convert("CMYK")
    save("cmyk.jpg", cmyk, np.asarray(cmyk.convert("RGB")), None)
    save("cmyk.tif", cmyk, np.asarray(cmyk.convert("RGB")), None)
    return cases


def test_read_every_format_and_mode(tmp_path: Path) -> None:
    for name, path, px, alpha, lossless in _cases(tmp_path):
        d = read_image(path)
        assert d.pixels.dtype == np.uint8 and d.bit_depth == 8, name
        assert d.pixels.shape == px.shape, name
        if lossless:
            np.testing.assert_array_equal(d.pixels, px, err_msg=name)
        else:
            assert np.abs(d.pixels.astype(int) - px).mean() < 4, name
        if alpha is None:
            assert d.alpha is None, name
        else:
            assert d.alpha is not None, name
            np.testing.assert_array_equal(d.alpha, alpha, err_msg=name)
        assert d.format in ("PNG", "TIFF", "BMP", "JPEG", "WEBP"), name


def test_read_16bit_png_and_tiff(tmp_path: Path) -> None:
    rgb16 = RNG.integers(0, 65536, (9, 13, 3), dtype=np.uint16)
    gray16 = rgb16[..., 1].copy()
    for ext in ("png", "tif"):
        cv2.imwrite(str(tmp_path / f"c.{ext}"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp_path / f"g.{ext}"), gray16)
        d = read_image(tmp_path / f"c.{ext}")
        assert d.bit_depth == 16
        np.testing.assert_array_equal(d.pixels, rgb16)
        g = read_image(tmp_path / f"g.{ext}")
        assert g.is_gray and g.bit_depth == 16
        np.testing.assert_array_equal(g.pixels, gray16)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    rgb = _rgb(5, 8)
    path = tmp_path / "o.png"
    Image.fromarray(rgb).save(path, exif=_exif(orientation))
    ref = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    np.testing.assert_array_equal(orient_array(rgb, orientation), ref)
    d = read_image(path)
    np.testing.assert_array_equal(d.pixels, ref)
    assert d.exif is not None
    ex = Image.Exif()
    ex.load(d.exif)
    assert ex[0x0112] == 1 and ex[0x010F] == "TestCam"


REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_jpeg_pixels_equal_pillows(tmp_path: Path, mode: str, orientation: int) -> None:
    """Complete gray and colour JPEGs are decoded by OpenCV (no copies through Pillow): the
    same pixels as Pillow's decode with its EXIF transpose, on real photos at the chroma
    subsamplings cameras and scanners write, progressive too."""
    for name in ("astronaut_gray.jpg", "coffee_sepia.jpg", "chelsea_gray.jpg"):
        with Image.open(REPO / "examples" / name) as src:
            img = src.convert(mode)
        for i, opts in enumerate([{}, {"subsampling": 0}, {"subsampling": 1, "progressive": True}]):
            path = tmp_path / f"{i}-{name}"
            img.save(path, quality=88, exif=_exif(orientation), **opts)
            with Image.open(path) as check:
                assert _decode_jpeg(path, check) is not None  # the OpenCV path is taken
                ref = np.asarray(ImageOps.exif_transpose(check).convert(mode))
            np.testing.assert_array_equal(read_image(path).pixels, ref)


def test_jpeg_with_trailing_data_or_truncated(tmp_path: Path) -> None:
    """Only complete files take the OpenCV path: one with bytes after its end marker is read
    as before (Pillow), a truncated one still fails naming the file."""
    good = tmp_path / "good.jpg"
    Image.fromarray(_smooth(48, 64)).save(good, quality=90)
    tail = tmp_path / "tail.jpg"
    tail.write_bytes(good.read_bytes() + b"appended by a scanner")
    with Image.open(tail) as raw:
        assert _decode_jpeg(tail, raw) is None
    np.testing.assert_array_equal(read_image(tail).pixels, read_image(good).pixels)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(BadImage, match="cannot decode") as info:
        read_image(cut)
    assert str(cut) in str(info.value)


def test_orientation_16bit(tmp_path: Path) -> None:
    rgb16 = RNG.integers(0, 65536, (6, 10, 3), dtype=np.uint16)
    write_image(tmp_path / "o.png", rgb16, exif=_exif(6))
    d = read_image(tmp_path / "o.png")
    assert d.bit_depth == 16 and d.pixels.shape == (10, 6, 3)
    np.testing.assert_array_equal(d.pixels, np.rot90(rgb16, k=-1))


@pytest.mark.parametrize("kind", ["zero", "truncated", "text", "folder"])
def test_bad_files(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.jpg"
    if kind == "zero":
        path.write_bytes(b"")
        expect = "empty file"
    elif kind == "truncated":
        Image.fromarray(_rgb(64, 64)).save(tmp_path / "ok.jpg", quality=90)
        path.write_bytes((tmp_path / "ok.jpg").read_bytes()[:600])
        expect = "cannot decode"
    elif kind == "text":
        path.write_text("this is not a picture\n")
        expect = "not an image"
    else:
        path.mkdir()
        expect = "folder"
    with pytest.raises(BadImage, match=expect) as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_decompression_bomb_guard(tmp_path: Path) -> None:
    Image.fromarray(_rgb(40, 50)).save(tmp_path / "big.png")
    with pytest.raises(BadImage, match="--max-pixels"):
        read_image(tmp_path / "big.png", max_pixels=1999)
    assert read_image(tmp_path / "big.png", max_pixels=2000).pixels.shape == (40, 50, 3)
    default = Image.MAX_IMAGE_PIXELS
    assert imageio.default_max_pixels() == 2 * default  # the guard is on by default
    with pytest.raises(BadImage, match="--max-pixels"):
        imageio.open_image(tmp_path / "big.png", max_pixels=100)
    assert default == Image.MAX_IMAGE_PIXELS


def test_in_memory_wrappers() -> None:
    rgba = RNG.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    d = decoded_from_array(rgba)
    assert d.pixels.shape == (4, 5, 3) and d.alpha is not None
    f = decoded_from_array(np.full((3, 3), 0.5, dtype=np.float64))
    assert f.bit_depth == 16 and int(f.pixels[0, 0]) == 32768
    with pytest.raises(UsageError):
        decoded_from_array(np.zeros((3, 3), dtype=np.int64))
    img = Image.fromarray(rgba[..., :3])
    img.info["exif"] = _exif(8)
    img.getexif()[0x0112] = 8
    assert decoded_from_pil(img).pixels.shape == (5, 4, 3)


# ---------------------------------------------------------------------------- writing


def test_write_roundtrip_metadata(tmp_path: Path) -> None:
    rgb = _rgb()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for ext in ("jpg", "png", "tif", "webp"):
        out = tmp_path / f"o.{ext}"
        notes = write_image(
            out, rgb, exif=_exif(1), icc_profile=srgb, save_options={"dpi": (300, 300)}
        )
        assert notes == []
        back = Image.open(out)
        assert back.info.get("icc_profile") == srgb, ext
        assert back.getexif().get(0x010F) == "TestCam", ext
    # a CMYK profile must not be attached to RGB pixels; JPEG has no alpha
    cmyk_like = bytearray(srgb)
    cmyk_like[16:20] = b"CMYK"
    notes = write_image(tmp_path / "a.jpg", rgb, alpha=rgb[..., 0], icc_profile=bytes(cmyk_like))
    assert "icc_profile" not in Image.open(tmp_path / "a.jpg").info
    assert any("alpha" in n for n in notes)


def test_write_16bit(tmp_path: Path) -> None:
    rgb16 = RNG.integers(0, 65536, (7, 9, 3), dtype=np.uint16)
    alpha16 = RNG.integers(0, 65536, (7, 9), dtype=np.uint16)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    write_image(tmp_path / "o.png", rgb16, alpha=alpha16, exif=_exif(1), icc_profile=srgb)
    back = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[..., 2::-1], rgb16)
    np.testing.assert_array_equal(back[..., 3], alpha16)
    info = Image.open(tmp_path / "o.png")
    assert info.info.get("icc_profile") == srgb and info.getexif().get(0x010F) == "TestCam"
    write_image(tmp_path / "o.tif", rgb16)
    np.testing.assert_array_equal(read_image(tmp_path / "o.tif").pixels, rgb16)
    notes = write_image(tmp_path / "o.jpg", rgb16)
    assert any("8 bits" in n for n in notes)
    assert read_image(tmp_path / "o.jpg").bit_depth == 8


def test_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "out.png"

    def crash(tmp: Path) -> None:
        tmp.write_bytes(b"half an image")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        imageio.atomic_write(final, crash)
    assert list(tmp_path.iterdir()) == []
    final.write_bytes(b"old")

    def boom(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        imageio.atomic_write(final, boom)
    assert final.read_bytes() == b"old" and list(tmp_path.iterdir()) == [final]


def test_clean_temp_files(tmp_path: Path) -> None:
    # a pid that is certainly dead: a child that has exited and been reaped
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    (tmp_path / "sub").mkdir()
    stale = tmp_path / "sub" / f".x.{dead_pid}-1{imageio.TEMP_MARKER}.jpg"
    mine = tmp_path / f".y.{os.getpid()}-1{imageio.TEMP_MARKER}.jpg"
    other = tmp_path / ".z.jpg"
    for p in (stale, mine, other):
        p.write_bytes(b"x")
    assert clean_temp_files(tmp_path) == 1
    assert not stale.exists() and mine.exists() and other.exists()


# ------------------------------------------------------------------ decompression-bomb guard


def _bomb_png(path: Path, side: int = 20000) -> Path:
    """A 2 KB PNG whose header claims ``side x side`` gray pixels (400 MP for 20000): the pixel
    data is a few rows only, so a reader that skips the guard fails later with a decode error
    instead of the guard's message (and never allocates the full image)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (side + 1) * 2)
    data = b"\x89PNG\r\n\x1a\n" + b"".join(
        imageio._png_chunk(k, v) for k, v in ((b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b""))
    )
    path.write_bytes(data)
    return path


def _all_readers() -> list[Callable[[Path], object]]:
    from colorcli.training.dataset import load_crop

    return [
        read_image,
        imageio.open_image,
        imageio.read_rgb,
        lambda p: imageio.read_rgb(p, max_side=64),
        lambda p: load_crop(p, 32, None),
    ]


def test_bomb_guard_does_not_depend_on_pillow_global(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = _bomb_png(tmp_path / "bomb.png")
    # another thread (or library) has switched Pillow's own guard off: ours must hold anyway
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    for reader in _all_readers():
        with pytest.raises(BadImage, match="decompression-bomb guard of 179 megapixels") as info:
            reader(bomb)
        assert str(bomb) in str(info.value)
    assert Image.MAX_IMAGE_PIXELS is None  # and it left the global as it found it
    assert imageio.default_max_pixels() == imageio.DEFAULT_MAX_PIXELS == 178956970


def test_bomb_guard_race_free_with_concurrent_readers(tmp_path: Path) -> None:
    bomb = _bomb_png(tmp_path / "bomb.png")
    small = []
    for i in range(4):
        Image.fromarray(_rgb(24, 32)).save(tmp_path / f"ok{i}.png")
        small.append(tmp_path / f"ok{i}.png")
    original = Image.MAX_IMAGE_PIXELS
    seen: set[object] = set()
    stop = threading.Event()

    def watch() -> None:  # the global must never be switched off, not even for an instant
        while not stop.is_set():
            seen.add(Image.MAX_IMAGE_PIXELS)

    def work(k: int) -> list[str]:
        out = []
        readers = _all_readers()
        for i in range(40):
            reader = readers[(k + i) % len(readers)]
            reader(small[(k + i) % len(small)])
            try:
                reader(bomb)
                out.append("decoded")
            except BadImage as exc:
                out.append("refused" if "decompression-bomb" in str(exc) else str(exc))
        return out

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            results = [r for rs in pool.map(work, range(8)) for r in rs]
    finally:
        stop.set()
        watcher.join()
    assert results == ["refused"] * len(results)
    assert seen == {original}
    assert Image.MAX_IMAGE_PIXELS is original


def test_bomb_guard_explicit_limit_and_formats(tmp_path: Path) -> None:
    for ext in ("png", "jpg", "tif", "webp", "bmp", "gif"):
        path = tmp_path / f"a.{ext}"
        Image.fromarray(_rgb(40, 50)).save(path)
        with pytest.raises(BadImage, match="--max-pixels"):
            read_image(path, max_pixels=1999)
        assert read_image(path, max_pixels=2000).pixels.shape[:2] == (40, 50)
    with pytest.raises(BadImage, match="not an image"):
        (tmp_path / "x.png").write_bytes(b"\x89PNG not really")
        read_image(tmp_path / "x.png")


# ------------------------------------------------------- formats, frames, colour chunks, record


def test_extensions_scanned_and_frames(tmp_path: Path) -> None:
    frames = [Image.fromarray(_rgb(20, 30)) for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(_rgb(20, 30)).save(tmp_path / "b.jfif", format="JPEG")
    Image.fromarray(_rgb(20, 30)).save(tmp_path / "c.jp2")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    ignored: list[Path] = []
    found = [p.name for p, _ in find_images_with_roots([tmp_path], ignored)]
    assert found == ["anim.gif", "b.jfif", "c.jp2"] and ignored == [tmp_path / "notes.txt"]
    gif = read_image(tmp_path / "anim.gif")
    assert gif.pixels.shape == (20, 30, 3) and gif.notes == [
        "only the first of 3 frames was used (the other 2 were dropped)"
    ]
    assert (
        read_image(tmp_path / "b.jfif").format == "JPEG"
        and not read_image(tmp_path / "b.jfif").notes
    )
    assert read_image(tmp_path / "c.jp2").pixels.shape == (20, 30, 3)
    assert imageio.format_for_extension(".JFIF") == "JPEG"
    assert imageio.format_for_extension(".jp2") == "JPEG2000"


@pytest.mark.parametrize("depth", [8, 16])
def test_png_colour_chunks_kept(tmp_path: Path, depth: int) -> None:
    src = tmp_path / "src.png"
    info = PngImagePlugin.PngInfo()
    chrm = struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
    info.add(b"cHRM", chrm)
    info.add(b"gAMA", struct.pack(">I", 45455))
    info.add(b"sRGB", b"\x00")
    Image.fromarray(_rgb(12, 16)).save(src, pnginfo=info)
    dec = read_image(src)
    pixels = dec.pixels if depth == 8 else dec.pixels.astype(np.uint16) * 257
    write_image(tmp_path / "out.png", pixels, save_options=dec.save_options)
    with Image.open(tmp_path / "out.png") as out:
        assert out.info["gamma"] == pytest.approx(0.45455)
        assert out.info["srgb"] == 0
        assert out.info["chromaticity"] == pytest.approx(
            (0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)
        )
    write_image(tmp_path / "out.jpg", dec.pixels, save_options=dec.save_options)  # dropped quietly


@pytest.mark.parametrize(
    ("name", "depth"),
    [
        ("a.png", 8),
        ("a.png", 16),
        ("a.jpg", 8),
        ("a.webp", 8),
        ("a.tif", 8),
        ("a.tif", 16),
        ("a.bmp", 8),
        ("a.jp2", 8),
    ],
)
def test_record_roundtrip(tmp_path: Path, name: str, depth: int) -> None:
    rgb = _rgb(10, 12) if depth == 8 else _rgb(10, 12).astype(np.uint16) * 257
    path = tmp_path / name
    assert imageio.read_record(path) is None
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    record = '{"model": "default", "saturation": 1.5}'
    write_image(path, rgb, record=record, exif=exif.tobytes())
    assert imageio.read_record(path) == record
    sidecar = imageio.record_sidecar(path)
    assert sidecar.exists() == (name in ("a.bmp", "a.jp2", "a.tif"))
    if name in ("a.jpg", "a.webp"):
        with Image.open(path) as im:
            assert im.getexif()[0x010F] == "Maker"  # the source's EXIF is kept beside the record
    write_image(path, rgb)  # rewritten without a record (e.g. by an older version)
    if not sidecar.exists():
        assert imageio.read_record(path) is None
    assert [p.name for p, _ in find_images_with_roots([tmp_path])] == [name]  # sidecar is hidden


def test_guarded_open_of_odd_small_files(tmp_path: Path) -> None:
    # tiny or empty files make some format probes raise struct.error: still one BadImage line
    for name, data in (("e.jpg", b""), ("one.png", b"\x00"), ("three.jpg", b"\xff\xd8\xff")):
        (tmp_path / name).write_bytes(data)
        for reader in _all_readers():
            with pytest.raises(BadImage) as info:
                reader(tmp_path / name)
            assert name in str(info.value) and "\n" not in str(info.value)

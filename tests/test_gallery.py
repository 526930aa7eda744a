"""The review gallery's page content: thumbnails, the embedded JSON blob, escaping, reuse, and
``colorize --gallery`` end to end on a tiny model (the browser side: test_gallery_browser.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from colorcli.cli import app
from colorcli.colorize import FileResult, Summary, gallery

runner = CliRunner()
BLOB = re.compile(r'<script type="application/json" id="gallery-data">(.*?)</script>', re.S)


def blob(page: str) -> dict:
    found = BLOB.findall(page)
    assert len(found) == 1
    data: dict = json.loads(found[0])
    return data


def _save(path: Path, h: int, w: int, gray: bool, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    arr = (rng.random((h, w) if gray else (h, w, 3)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture()
def batch(tmp_path: Path) -> tuple[Summary, Path]:
    """A finished batch by hand: two done (one in a sub-folder, a name with a space and '#'),
    one made by an earlier run, one failed (a reason with markup in it), one colour photo."""
    src, out = tmp_path / "in", tmp_path / "out"
    s = Summary(seconds=12.5)
    pairs = [("a.png", ""), ("sub/b #2.png", ""), ("c.jpg", "exists")]
    for i, (rel, skip) in enumerate(pairs):
        _save(src / rel, 600 + 10 * i, 900, gray=True, seed=i)
        _save(out / rel, 600 + 10 * i, 900, gray=False, seed=i)
        status = "skipped" if skip else "done"
        s.add(FileResult(src / rel, out / rel, status, skip=skip, legacy="grayscale"))  # type: ignore[arg-type]
    s.add(FileResult(src / "bad.png", out / "bad.png", "failed", "bad.png: </script><b>x</b>"))
    s.add(FileResult(src / "colour.jpg", out / "colour.jpg", "skipped", skip="colour"))
    return s, out


def test_page_holds_the_batch_with_relative_thumbnails(batch: tuple[Summary, Path]) -> None:
    summary, out = batch
    page_path = gallery.write_gallery(summary, out, model="tiny.pt")
    assert page_path == out / "index.html"
    page = page_path.read_text("utf-8")
    data = blob(page)
    assert data["format"] == "colorcli-gallery" and data["version"] == 1
    assert data["model"] == "tiny.pt" and data["outDir"] == str(out.absolute())
    assert data["summary"] == {
        "done": 2, "skipped": 2, "failed": 1, "legacy": 2, "seconds": 12.5, "shown": 3,
    }  # fmt: skip
    names = [im["name"] for im in data["images"]]
    assert names == ["a.png", "c.jpg", "sub/b #2.png"]  # by output path
    assert [im["status"] for im in data["images"]] == ["done", "exists", "done"]
    for im in data["images"]:
        assert Path(im["src"]).is_absolute() and Path(im["src"]).is_file()
        assert im["legacy"] == "grayscale"
        for key in ("before", "after", "out"):
            assert not im[key].startswith(("/", "file:", "http")), im[key]
            assert (out / unquote(im[key])).is_file()
        assert im["before"].startswith(".gallery/") and im["after"].endswith(".after.jpg")
        with Image.open(out / unquote(im["after"])) as th:
            assert th.format == "JPEG" and max(th.size) == gallery.THUMB_SIDE
            assert th.size == (im["w"], im["h"])
        with Image.open(out / unquote(im["before"])) as th:
            assert th.size == (im["w"], im["h"])
    assert data["images"][2]["out"] == "sub/b%20%232.png"  # a URL, not a fragment
    assert data["failed"] == [
        {
            "src": str((out.parent / "in" / "bad.png").absolute()),
            "reason": "bad.png: </script><b>x</b>",
        }
    ]
    assert data["colour"] == [str((out.parent / "in" / "colour.jpg").absolute())]
    # self-contained: nothing from outside; the data cannot close its <script> element
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "@import" not in page
    assert page.count("</script>") == 2 and "<b>x</b>" not in page
    assert "<img" not in page  # the cards are drawn by the page's script, in chunks


def test_thumbnails_are_reused_until_their_file_changes(batch: tuple[Summary, Path]) -> None:
    summary, out = batch
    gallery.write_gallery(summary, out)
    _, after = gallery.thumb_paths(out / "a.png", out)
    stamp = after.stat().st_mtime_ns
    past = stamp - 10 * 10**9
    os.utime(out / "a.png", ns=(past, past))  # the output is older than its thumbnail
    gallery.write_gallery(summary, out)
    assert after.stat().st_mtime_ns == stamp  # fresh: kept
    _save(out / "a.png", 600, 400, gray=False, seed=7)  # the output is redone
    os.utime(out / "a.png", ns=(stamp + 10**9, stamp + 10**9))
    data = blob(gallery.write_gallery(summary, out).read_text("utf-8"))
    assert after.stat().st_mtime_ns != stamp
    first = data["images"][0]
    assert (first["w"], first["h"]) == (320, 480)  # the new output's shape
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*colorcli-tmp*"))


def test_unreadable_files_give_items_without_that_preview(batch: tuple[Summary, Path]) -> None:
    summary, out = batch
    (out.parent / "in" / "a.png").unlink()  # the input of an output is gone
    data = blob(gallery.write_gallery(summary, out).read_text("utf-8"))
    first = data["images"][0]
    assert first["name"] == "a.png" and first["before"] == "" and first["after"] != ""


def test_thousands_of_images_make_a_small_page(tmp_path: Path) -> None:
    items = [
        gallery.GalleryItem(
            tmp_path / f"in/{i:05d}.jpg", tmp_path / f"out/{i:05d}.jpg", "done", None,
            tmp_path / f"out/.gallery/{i:05d}.jpg.before.jpg",
            tmp_path / f"out/.gallery/{i:05d}.jpg.after.jpg", 480, 320,
        )
        for i in range(5000)
    ]  # fmt: skip
    s = Summary(done=5000, seconds=100.0)
    page = gallery.build_page(gallery.page_data(s, items, tmp_path / "out", created="x"))
    assert len(blob(page)["images"]) == 5000
    assert len(page) < 2_500_000  # about 400 bytes an image: the browser parses it at once


def test_template_is_package_data() -> None:
    text = gallery.template()
    assert text.startswith("<!DOCTYPE html>") and text.count("@@DATA@@") == 1


def test_colorize_gallery_option(tiny_model: Path, tmp_path: Path) -> None:
    for i in range(3):
        _save(tmp_path / "in" / f"p{i}.png", 40 + 4 * i, 56, gray=True, seed=i)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg")
    args = ["colorize", str(tmp_path / "in"), "--model", str(tiny_model), "--device", "cpu"]
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "out"), "--gallery"])
    assert res.exit_code == 1, res.output  # one file failed
    assert f"gallery: {tmp_path / 'out' / 'index.html'}" in res.output.replace("\n", "")
    data = blob((tmp_path / "out" / "index.html").read_text("utf-8"))
    assert [im["name"] for im in data["images"]] == ["p0.png", "p1.png", "p2.png"]
    assert data["summary"]["done"] == 3 and data["summary"]["failed"] == 1
    assert data["failed"][0]["src"].endswith("broken.jpg") and data["failed"][0]["reason"]
    assert data["model"] == str(tiny_model)
    # a rerun skips the outputs and still shows them
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "out"), "--gallery"])
    data = blob((tmp_path / "out" / "index.html").read_text("utf-8"))
    assert data["summary"]["done"] == 0 and len(data["images"]) == 3
    assert {im["status"] for im in data["images"]} == {"exists"}
    res = runner.invoke(app, [*args, "-o", str(tmp_path / "plain")])
    assert not (tmp_path / "plain" / "index.html").exists()
    assert not (tmp_path / "plain" / ".gallery").exists()

"""`colorcli rebalance` through Typer's CliRunner on tiny real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from colorcli.cli import app
from colorcli.color.bins import reference_bins, save_bins, srgb_bins
from colorcli.data import list_folder, load_rebalance

runner = CliRunner()


def make_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    y, x = np.mgrid[0:16, 0:20]
    grad = np.stack([x * 12, y * 15, 255 - x * 12], axis=-1).astype(np.uint8)
    Image.fromarray(grad).save(root / "gradient.png")
    Image.new("RGB", (8, 8), (230, 200, 40)).save(root / "yellow.jpg", quality=95)
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8), "L").save(root / "gray.png")
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (root / "zero.jpg").write_bytes(b"")
    (root / "readme.txt").write_text("hello")
    return root


def test_rebalance_end_to_end(tmp_path: Path) -> None:
    photos = make_folder(tmp_path / "photos")
    out, plot = tmp_path / "w.npz", tmp_path / "w.png"
    res = runner.invoke(app, ["rebalance", str(photos), "-o", str(out), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    reb = load_rebalance(out)
    assert np.array_equal(reb.bins, reference_bins())
    assert np.isclose(reb.prior.sum(), 1.0) and np.isclose(reb.prior_smoothed.sum(), 1.0)
    assert np.isclose((reb.prior_smoothed * reb.weights).sum(), 1.0)
    s = reb.settings
    assert s["lambda"] == 0.5 and s["sigma"] == 5.0 and s["assignment"] == "hard"
    assert s["n_images"] == 3 and s["n_gray"] == 1 and s["n_bad"] == 3
    assert s["n_pixels"] == 16 * 20 + 8 * 8 and s["max_side"] == 256
    assert s["source"] == str(photos.resolve()) and s["colorcli_version"]
    for name in ("corrupt.png", "zero.jpg", "readme.txt"):
        lines = [ln for ln in res.output.splitlines() if name in ln]
        assert len(lines) == 1, res.output
    assert "3 file(s) skipped" in res.output
    assert "2 used, 1 grayscale skipped, 3 bad" in res.output
    assert "effective Q = 313" in res.output
    assert Image.open(plot).size[0] > 600


def test_lambda_one_soft_nonzero_and_custom_bins(tmp_path: Path) -> None:
    photos = make_folder(tmp_path / "photos")
    bins_file = save_bins(tmp_path / "srgb.npy", srgb_bins(10.0, steps=17))
    out = tmp_path / "w1"
    res = runner.invoke(
        app,
        ["rebalance", str(photos), "-o", str(out), "--lambda", "1", "--assign", "soft",
         "--q-mode", "nonzero", "--bins", str(bins_file), "--max-side", "16", "--workers", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    reb = load_rebalance(tmp_path / "w1.npz")
    assert len(reb.bins) == len(srgb_bins(10.0, steps=17))
    assert np.allclose(reb.weights, 1.0)
    assert reb.settings["assignment"] == "soft" and reb.settings["q_mode"] == "nonzero"
    assert reb.settings["q_effective"] == int((reb.prior_smoothed > 0).sum())
    # images read at 16 px: the 20x16 gradient becomes 16x13 (yellow stays 8x8)
    assert reb.settings["n_pixels"] == 16 * 13 + 8 * 8


def test_empty_and_gray_only_folders_exit_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["rebalance", str(empty), "-o", str(tmp_path / "e.npz")])
    assert res.exit_code == 1 and "no image files" in res.output
    assert len(res.output.strip().splitlines()) == 1
    gray = tmp_path / "gray"
    gray.mkdir()
    Image.new("L", (8, 8), 100).save(gray / "g.png")
    (gray / "bad.jpg").write_bytes(b"xx")
    res = runner.invoke(app, ["rebalance", str(gray), "-o", str(tmp_path / "g.npz")])
    assert res.exit_code == 1 and "no colour images" in res.output
    assert "1 grayscale" in res.output
    assert not (tmp_path / "e.npz").exists() and not (tmp_path / "g.npz").exists()


def test_refuses_overwrite_and_bad_bins(tmp_path: Path) -> None:
    photos = make_folder(tmp_path / "photos")
    out = tmp_path / "w.npz"
    out.write_bytes(b"keep")
    res = runner.invoke(app, ["rebalance", str(photos), "-o", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output and out.read_bytes() == b"keep"
    bad = tmp_path / "bins.npy"
    bad.write_text("not numpy")
    res = runner.invoke(app, ["rebalance", str(photos), "-o", str(tmp_path / "x.npz"),
                              "--bins", str(bad)])  # fmt: skip
    assert res.exit_code == 1 and "bins.npy" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(app, ["rebalance", str(tmp_path / "nope"), "-o", str(tmp_path / "y")])
    assert res.exit_code == 2 and "no such folder" in res.output


def test_help_states_assignment_and_resolution() -> None:
    res = runner.invoke(app, ["rebalance", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "hard" in text and "soft" in text and "256" in text and "--workers" in text
    assert list_folder  # the command reads folders through colorcli.data

"""`colorcli build-bins` through Typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from colorcli.cli import app
from colorcli.color.bins import load_bins, reference_bins
from colorcli.color.lab import rgb_to_lab
from colorcli.imageio import read_rgb

runner = CliRunner()


def test_reference_writes_313_with_summary_and_plot(tmp_path: Path) -> None:
    out, plot = tmp_path / "bins.npy", tmp_path / "gamut.png"
    res = runner.invoke(app, ["build-bins", "-o", str(out), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert np.array_equal(load_bins(out), reference_bins())
    assert "Q = 313" in res.output and "reference" in res.output
    assert "a range: -90 .. 100" in res.output and "b range: -110 .. 100" in res.output
    img = np.asarray(Image.open(plot).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] > 300
    # the plot holds saturated colours (the bins) and is not just a blank canvas
    assert (img.max(axis=2).astype(int) - img.min(axis=2) > 150).sum() > 10_000


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "bins.npy"
    out.write_bytes(b"precious")
    res = runner.invoke(app, ["build-bins", "-o", str(out)])
    assert res.exit_code == 2
    assert "already exists" in res.output and len(res.output.strip().splitlines()) == 1
    assert out.read_bytes() == b"precious"
    res = runner.invoke(app, ["build-bins", "-o", str(out), "--overwrite"])
    assert res.exit_code == 0 and len(load_bins(out)) == 313


def test_srgb_source(tmp_path: Path) -> None:
    out = tmp_path / "srgb"  # suffix added
    res = runner.invoke(app, ["build-bins", "-o", str(out), "--source", "srgb"])
    assert res.exit_code == 0, res.output
    bins = load_bins(tmp_path / "srgb.npy")
    assert len(bins) == 261 and "Q = 261" in res.output and "faces of the RGB cube" in res.output
    assert {tuple(b) for b in bins} <= {tuple(b) for b in reference_bins()}


def test_folder_source_with_min_pixels(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    # 30 red pixels, 6 blue pixels -> two cells, or one with --min-pixels 10
    img = np.zeros((6, 6, 3), dtype=np.uint8)
    img[:] = (200, 30, 30)
    img[0, :] = (30, 30, 200)
    Image.fromarray(img).save(photos / "two.png")
    Image.fromarray(np.full((5, 5), 90, dtype=np.uint8), "L").save(photos / "gray.png")
    (photos / "broken.jpg").write_bytes(b"nope")
    rgb = read_rgb(photos / "two.png")
    import torch

    lab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1))
    red_ab, blue_ab = lab[1:, 1, 1].double().numpy(), lab[1:, 0, 0].double().numpy()
    cell = np.floor(np.stack([blue_ab, red_ab]) / 10 + 0.5) * 10

    out = tmp_path / "b.npy"
    res = runner.invoke(app, ["build-bins", "-o", str(out), "--source", str(photos)])
    assert res.exit_code == 0, res.output
    assert np.array_equal(load_bins(out), cell[np.lexsort((cell[:, 1], cell[:, 0]))])
    assert "broken.jpg" in res.output and "1 grayscale skipped" in res.output

    res = runner.invoke(
        app, ["build-bins", "-o", str(out), "--source", str(photos), "--min-pixels", "10",
              "--overwrite"]
    )  # fmt: skip
    assert res.exit_code == 1 and "only 1 grid cell" in res.output


def test_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        (["--source", str(tmp_path / "missing")], 2, "not 'reference', 'srgb'"),
        (["--grid", "5"], 2, "reference bins have grid 10"),
        (["--source", str(tmp_path)], 1, "no image files"),
    ]
    for i, (args, code, text) in enumerate(cases):
        res = runner.invoke(app, ["build-bins", "-o", str(tmp_path / f"o{i}.npy"), *args])
        assert res.exit_code == code, res.output
        assert text in res.output and len(res.output.strip().splitlines()) == 1
        assert not (tmp_path / f"o{i}.npy").exists()

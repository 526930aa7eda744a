"""`colorize --shard I/N`: a deterministic split of the planned files, each done exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from colorcli.cli import app
from colorcli.colorize import ColorizeConfig, parse_shard, plan_colorize
from colorcli.errors import UsageError

runner = CliRunner()


def _photos(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"p{i:02d}.png"
        Image.fromarray((rng.random((24, 32)) * 255).astype(np.uint8)).save(p)
        paths.append(p)
    return paths


def test_shards_partition_the_plan(tmp_path: Path) -> None:
    _photos(tmp_path / "in", 11)
    full = [j.source for j in plan_colorize(ColorizeConfig((str(tmp_path / "in"),))).jobs]
    parts = [
        [
            j.source
            for j in plan_colorize(ColorizeConfig((str(tmp_path / "in"),), shard=(i, 3))).jobs
        ]
        for i in range(3)
    ]
    together = [src for part in parts for src in part]
    assert sorted(together) == sorted(full) and len(together) == len(full)
    assert [len(p) for p in parts] == [4, 4, 3]
    assert parts[1] == full[1::3]  # interleaved over the sorted list, the same every run
    assert parse_shard("2/8") == (2, 8) and parse_shard(None) is None
    for bad in ("3", "a/b", "1/", "-1/2"):
        with pytest.raises(UsageError, match="--shard takes I/N"):
            parse_shard(bad)
    for shard in ((2, 2), (0, 0)):
        with pytest.raises(UsageError, match="0 <= I < N"):
            ColorizeConfig(("x",), shard=shard)


def test_sharded_runs_match_one_run(tiny_model: Path, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "in", 5)
    common = ["colorize", str(tmp_path / "in"), "--model", str(tiny_model), "--device", "cpu"]
    res = runner.invoke(app, [*common, "-o", str(tmp_path / "one")])
    assert res.exit_code == 0, res.output
    for i in range(2):
        res = runner.invoke(app, [*common, "-o", str(tmp_path / "two"), "--shard", f"{i}/2"])
        assert res.exit_code == 0, res.output
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.png"))
    assert one == two and len(one) == len(photos)
    for rel in one:
        a = np.asarray(Image.open(tmp_path / "one" / rel))
        b = np.asarray(Image.open(tmp_path / "two" / rel))
        np.testing.assert_array_equal(a, b)
    # a rerun of a shard finds its files done and does nothing
    res = runner.invoke(app, [*common, "-o", str(tmp_path / "two"), "--shard", "1/2"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*common, "-o", str(tmp_path / "x"), "--shard", "2/2"])
    assert res.exit_code == 2 and "0 <= I < N" in res.output

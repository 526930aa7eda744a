"""`colorize` under torchrun: the ranks split the planned files, each file is done once, the
outputs equal a one-process run's, rank 0 alone prints the merged summary, and a rerun resumes.
The rank arithmetic (shards, devices, merging) is tested without processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorcli.colorize import ColorizeConfig, FileResult, Summary, plan_colorize
from colorcli.colorize.dist import (
    Ranks,
    for_rank,
    merge_summaries,
    rank_device,
    rank_shard,
    torchrun_ranks,
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _photos(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / ("a" if i % 3 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((30 + 2 * i, 40)) * 255).astype(np.uint8)).save(
            sub / f"p{i:02d}.png"
        )


def test_torchrun_ranks_from_the_environment() -> None:
    assert torchrun_ranks({}) is None
    assert torchrun_ranks({"WORLD_SIZE": "1", "RANK": "0"}) is None
    assert torchrun_ranks({"WORLD_SIZE": "4", "RANK": "5", "LOCAL_RANK": "1"}) == Ranks(5, 4, 1)


def test_rank_shards_compose_with_shard_and_partition_the_plan(tmp_path: Path) -> None:
    _photos(tmp_path / "in", 13)
    base = ColorizeConfig((str(tmp_path / "in"),), out_dir=tmp_path / "out")
    full = [j.source for j in plan_colorize(base).jobs]
    assert rank_shard(None, Ranks(1, 3, 1)) == (1, 3)
    assert rank_shard((1, 2), Ranks(2, 3, 0)) == (5, 6)  # every 2nd from 1, then every 3rd
    # two array jobs (--shard 0/2, 1/2), each a torchrun of 3 ranks: every file once
    seen = []
    for i in range(2):
        part = [j.source for j in plan_colorize(ColorizeConfig(base.inputs, shard=(i, 2))).jobs]
        by_rank = [
            [
                j.source
                for j in plan_colorize(for_rank(ColorizeConfig(base.inputs, shard=(i, 2)), r)).jobs
            ]
            for r in (Ranks(k, 3, k) for k in range(3))
        ]
        assert sorted(s for rank in by_rank for s in rank) == sorted(part)
        assert by_rank[1] == part[1::3]
        seen += [s for rank in by_rank for s in rank]
    assert sorted(seen) == sorted(full) and len(seen) == len(full)


def test_one_gpu_per_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    r = Ranks(3, 4, 1)
    assert rank_device("cuda", r) == "cuda:1"
    assert rank_device("cuda:0", r) == "cuda:0" and rank_device("cpu", r) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert rank_device("auto", r) == "cuda:1" and rank_device(None, r) == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert rank_device("auto", r) == "auto"


def test_merge_summaries() -> None:
    a, b = Summary(seconds=3.0, ignored=2), Summary(seconds=5.0, ignored=2)
    a.add(FileResult(Path("z.png"), Path("o/z.png"), "done", legacy="grayscale"))
    a.add(FileResult(Path("x.png"), Path("o/x.png"), "failed", "x.png: bad"))
    b.add(FileResult(Path("y.png"), Path("o/y.png"), "skipped", skip="exists"))
    b.add(FileResult(Path("a.png"), Path("o/a.png"), "done"))
    m = merge_summaries([a, b])
    assert (m.done, m.skipped, m.failed, m.legacy) == (2, 1, 1, 1)
    assert m.seconds == 5.0 and m.ignored == 2
    assert [r.source.name for r in m.results] == ["a.png", "x.png", "y.png", "z.png"]


def _table_row(stdout: str) -> list[str]:
    rows = [line for line in stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 1, stdout  # one summary table, printed once
    return [c.strip() for c in rows[0].strip("│").split("│")]


def test_two_processes_under_torchrun(tiny_model: Path, tmp_path: Path) -> None:
    _photos(tmp_path / "in", 9)
    (tmp_path / "in" / "b" / "broken.png").write_bytes(b"not a png")
    common = ["colorize", str(tmp_path / "in"), "--model", str(tiny_model), "--device", "cpu"]
    one = subprocess.run(
        [sys.executable, "-m", "colorcli", *common, "-o", str(tmp_path / "one")],
        capture_output=True, text=True, env=_env(), timeout=300,
    )  # fmt: skip
    assert one.returncode == 1, one.stderr[-3000:]  # the broken file
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(_free_port()), "-m", "colorcli", *common,
        "-o", str(tmp_path / "two"),
    ]  # fmt: skip
    two = subprocess.run(
        [*torchrun, "--gallery"], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert two.returncode == 1, two.stdout[-2000:] + two.stderr[-3000:]  # rank 0: 1 failed
    # merged: 9 done across both ranks (done once each: 18 if both had done all), 1 failed
    assert _table_row(two.stdout)[:4] == ["9", "0", "1", "9"], two.stdout
    assert two.stderr.count("Reading ") == 1 and "(part 0 of 2)" in two.stderr  # rank 0 only
    assert two.stderr.count("broken.png: not an image") == 1  # by the rank that had it
    assert two.stderr.count("gallery: ") == 1
    outs = {
        d: sorted(p.relative_to(tmp_path / d) for p in (tmp_path / d).rglob("p*.png"))
        for d in ("one", "two")
    }
    assert outs["one"] == outs["two"] and len(outs["one"]) == 9
    for rel in outs["one"]:
        a = np.asarray(Image.open(tmp_path / "one" / rel))
        b = np.asarray(Image.open(tmp_path / "two" / rel))
        np.testing.assert_array_equal(a, b)
    page = (tmp_path / "two" / "index.html").read_text("utf-8")
    assert page.count('"name":"') == 9  # the page shows every rank's files
    assert len(list((tmp_path / "two" / ".gallery").rglob("*.after.jpg"))) == 9
    assert not list((tmp_path / "two").rglob(".*tmp*"))

    # a rerun resumes: only the output removed since is made again
    (tmp_path / "two" / outs["two"][4]).unlink()
    again = subprocess.run(torchrun, capture_output=True, text=True, env=_env(), timeout=300)
    assert again.returncode == 1, again.stderr[-3000:]
    assert _table_row(again.stdout)[:3] == ["1", "8", "1"], again.stdout

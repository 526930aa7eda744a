"""Training in real processes: 2-process gloo DDP under torchrun, and SIGKILL then resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcli import checkpoint
from colorcli.training.loop import load_resume_state, read_metrics

TINY_ARGS = [
    "--width",
    "0.0625",
    "--crop",
    "32",
    "--batch-size",
    "2",
    "--workers",
    "0",
    "--val-images",
    "2",
    "--log-every",
    "1",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120"})
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray((rng.random((36 + 2 * i, 40, 3)) * 255).astype(np.uint8)).save(
            folder / f"p{i}.png"
        )
    return folder


ARCHS = {
    "eccv16": ["--arch", "eccv16"],
    "effnet-unet": ["--arch", "effnet-unet", "--no-pretrained"],
}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_two_process_gloo_ddp(photos: Path, tmp_path: Path, arch: str) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(29500 + os.getpid() % 1000),
        "-m", "colorcli", "train", str(photos), "--out", str(out),
        "--steps", "3", "--val-every", "3", "--save-every", "3", *TINY_ARGS, *ARCHS[arch],
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=240)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "cpu x2" in res.stderr  # rank 0 reported a 2-process run
    assert res.stdout.count("trained to step 3") == 1  # only rank 0 renders
    state = load_resume_state(out)
    assert state["world_size"] == 2 and state["step"] == 3
    recs = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in recs if r["kind"] == "train"] == [1, 2, 3]
    loaded = checkpoint.load_model(out / "model.pt", "cpu")
    assert loaded.arch == arch
    assert loaded.predict_ab(torch.full((1, 1, 32, 32), 40.0)).shape == (1, 2, 32, 32)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_sigkill_then_resume(photos: Path, tmp_path: Path, arch: str) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "colorcli", "train", str(photos), "--out", str(out),
        "--steps", "100000", "--save-every", "2", "--val-every", "1000", *TINY_ARGS,
        *ARCHS[arch],
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (out / "resume.pt").exists() and len(read_metrics(out / "metrics.jsonl")) >= 5:
                break
            if proc.poll() is not None:
                pytest.fail(f"training stopped early: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint within 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = load_resume_state(out)["step"]
    assert saved >= 2 and saved % 2 == 0
    assert checkpoint.load_model(out / "model.pt", "cpu").meta["step"] >= saved
    target = saved + 2
    res = subprocess.run(
        [sys.executable, "-m", "colorcli", "train", "--resume", str(out), "--steps", str(target)],
        capture_output=True, text=True, env=_env(), timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert load_resume_state(out)["step"] == target
    recs = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in recs] == list(range(1, target + 1))  # no duplicates after resume
    assert not list(out.glob(".*.tmp"))

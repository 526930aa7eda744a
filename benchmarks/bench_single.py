"""Latency of colorizing ONE 1024x768 photo on CPU with the shipped default model (issue 6's
target: under 0.5 s end to end).

    python benchmarks/bench_single.py [--repeats 10] [--model default] [--threads N]

Measures, on one 1024x768 JPEG (a real photo from ../shared/data upscaled, or a synthetic one when
the photo sets are absent):

* warm, in one process with the model loaded once (a Python user of ``colorcli.Colorizer`` or a
  long-running service): read the JPEG, colorize at full resolution, write the JPEG atomically --
  the same ``colorize_paths`` call the CLI makes, median and best of ``--repeats`` runs, plus the
  share spent in the network forward;
* cold: ``colorcli colorize photo.jpg`` as a fresh process (interpreter start, imports, model
  load, the same work), median of a few runs: what a user typing the command waits.

Numbers are noisy on a shared machine; report the median next to the load at the time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "data" / "bsds500" / "test"


def make_photo(path: Path) -> None:
    from PIL import Image

    sources = sorted(PHOTOS.glob("*.jpg"))[:1] if PHOTOS.is_dir() else []
    if sources:
        img = Image.open(sources[0]).convert("RGB").resize((1024, 768), Image.Resampling.BICUBIC)
    else:
        rng = np.random.default_rng(0)
        small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(small).resize((1024, 768), Image.Resampling.BICUBIC)
    img.save(path, quality=92)


def warm(model: str | None, photo: Path, out: Path, repeats: int) -> tuple[list[float], float]:
    """Wall seconds per photo in a warm process, and the median bare forward time."""
    import torch

    from colorcli.colorize import ColorizeConfig, Colorizer, colorize_paths

    colorizer = Colorizer.load(model, "cpu")
    config = ColorizeConfig(inputs=(str(photo),), out_dir=out, overwrite=True, workers=1)
    colorize_paths(config, colorizer)  # first call: allocator and oneDNN warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        summary = colorize_paths(config, colorizer)
        times.append(time.perf_counter() - start)
        assert summary.failed == 0, "colorize failed"
    lum = torch.full((1, 1, colorizer.size, colorizer.size), 50.0)
    fwd = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            colorizer._predict(lum, None)
        fwd.append(time.perf_counter() - start)
    return times, statistics.median(fwd)


def cold(model: str | None, photo: Path, out: Path, runs: int) -> list[float]:
    exe = shutil.which("colorcli") or ""
    cmd = [exe] if exe else [sys.executable, "-m", "colorcli"]
    cmd += ["colorize", str(photo), "-o", str(out), "--overwrite", "--device", "cpu"]
    if model:
        cmd += ["--model", model]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--model", default=None, help="model spec (default: the shipped default)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo-1024x768.jpg"
        make_photo(photo)
        times, forward = warm(args.model, photo, Path(tmp) / "out", args.repeats)
        cold_times = cold(args.model, photo, Path(tmp) / "out-cold", args.cold_runs)
    load = os.getloadavg()[0]
    print(
        f"model: {args.model or 'default'}   torch threads: {torch.get_num_threads()}   "
        f"load average (1 min): {load:.2f}"
    )
    print("| measure | median s | best s |")
    print("|---|---|---|")
    print(
        f"| warm: read + colorize + write, 1024x768 JPEG | {statistics.median(times):.3f} "
        f"| {min(times):.3f} |"
    )
    print(f"| of which the bare network forward | {forward:.3f} | |")
    print(
        f"| cold: `colorcli colorize photo.jpg` (new process) | "
        f"{statistics.median(cold_times):.3f} | {min(cold_times):.3f} |"
    )
    print(f"target: warm median < 0.5 s: {'met' if statistics.median(times) < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()

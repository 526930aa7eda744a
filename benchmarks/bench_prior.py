"""Speed of `colorcli rebalance`: images per second and decode vs compute time.

Runs the rebalance core (``colorcli.data.estimate_prior``) over the first N photos of a folder,
read with their longer side shrunk to --max-side, for hard and soft assignment with 1 and more
decode threads; then times each stage separately on the same images (decode, Lab, binning).

    python benchmarks/bench_prior.py --folder ../shared/data/imagenet-sample --n 200

The machine may be shared: compare rows of the same run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from colorcli.color.bins import reference_bins
from colorcli.color.encode import nearest_bin, soft_encode
from colorcli.data import estimate_prior, rgb_to_ab, torch_threads
from colorcli.imageio import find_images, read_rgb

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    ap.add_argument("--n", type=int, default=200, help="number of images")
    ap.add_argument("--max-side", type=int, default=256)
    ap.add_argument("--workers", type=str, default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=1, help="best of this many runs per row")
    args = ap.parse_args()

    files = find_images([args.folder])[: args.n]
    if not files:
        raise SystemExit(f"{args.folder}: no images")
    bins = reference_bins()
    workers = [int(w) for w in args.workers.split(",")]
    estimate_prior(files[:4], bins, max_side=args.max_side, assignment="soft")  # warm-up

    print(
        f"rebalance core on {len(files)} images of {args.folder} (max side {args.max_side}), "
        f"1 torch thread per worker, Q = {len(bins)}, {os.cpu_count()} CPUs"
    )
    header = (
        f"{'assign':>6} {'workers':>7} {'images/s':>9} {'Mpix/s':>7} {'wall s':>7} "
        f"{'decode s':>9} {'compute s':>9} {'decode share':>12}"
    )
    print(header)
    print("-" * len(header))
    for assignment in ("hard", "soft"):
        for w in workers:
            best = None
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                est = estimate_prior(
                    files, bins, max_side=args.max_side, assignment=assignment, workers=w
                )
                wall = time.perf_counter() - t0
                if best is None or wall < best[0]:
                    best = (wall, est)
            assert best is not None
            wall, est = best
            n_ok = est.n_images
            share = est.decode_s / (est.decode_s + est.compute_s)
            print(
                f"{assignment:>6} {w:>7} {n_ok / wall:>9.1f} {est.n_pixels / wall / 1e6:>7.2f} "
                f"{wall:>7.2f} {est.decode_s:>9.2f} {est.compute_s:>9.2f} {share:>11.0%}"
            )
    print(
        "decode s and compute s are summed over the worker threads (each image is decoded, "
        "converted and counted in one worker); decode share = decode / (decode + compute)."
    )

    # per-stage times on the same images, one thread, as inside estimate_prior
    with torch_threads(1):
        stages = time_stages(files, bins, args.max_side)
    n_img, n_pix = stages.pop("images"), stages.pop("pixels")
    print()
    print(f"stages, one thread, {n_img:.0f} images, {n_pix / n_img / 1e3:.0f} kpix/image")
    print(f"{'stage':>26} {'ms/image':>9} {'Mpix/s':>7}")
    for name, t in stages.items():
        print(f"{name:>26} {t / n_img * 1e3:>9.2f} {n_pix / t / 1e6:>7.1f}")


def time_stages(files: list[Path], bins: np.ndarray, max_side: int) -> dict[str, float]:
    t0 = time.perf_counter()
    images = [read_rgb(f, max_side) for f in files]
    t_decode = time.perf_counter() - t0
    t0 = time.perf_counter()
    abs_ = [rgb_to_ab(im) for im in images]
    t_lab = time.perf_counter() - t0
    t0 = time.perf_counter()
    for ab in abs_:
        torch.bincount(nearest_bin(ab, bins).reshape(-1), minlength=len(bins))
    t_hard = time.perf_counter() - t0
    t0 = time.perf_counter()
    for ab in abs_:
        idx, wt = soft_encode(ab, bins)
        torch.bincount(idx.reshape(-1), weights=wt.reshape(-1).double(), minlength=len(bins))
    t_soft = time.perf_counter() - t0
    n_pix = float(sum(np.prod(im.shape[:2]) for im in images))
    return {
        "decode + resize (PIL)": t_decode,
        "sRGB -> Lab (torch)": t_lab,
        "hard: nearest bin + count": t_hard,
        "soft: 5-NN encode + count": t_soft,
        "images": float(len(images)),
        "pixels": n_pix,
    }


if __name__ == "__main__":
    main()

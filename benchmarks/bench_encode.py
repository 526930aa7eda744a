"""Speed of ``colorcli.color.encode.soft_encode`` against scikit-learn's ball tree.

The baseline is the authors' original approach: ``NearestNeighbors(algorithm="ball_tree")``
fitted on the bins, ``kneighbors`` on every pixel, then Gaussian weights normalised over K (the
same sparse ``(index, weight)`` output). Both run on the same pixels in the same process; the
table gives pixels per second (best of ``--repeat`` runs), the speed-up, and whether the
neighbour sets agree exactly, with the largest absolute weight difference.

Pixels come from real photos (``../shared/data/imagenet-sample`` next to the repository, or
``--images DIR``), centre-cropped and resized; without photos, uniform random ab over the
reference gamut's bounding box is used (the table says which).

    python benchmarks/bench_encode.py [--k 5] [--repeat 7] [--device cuda]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from colorcli.color.bins import reference_bins
from colorcli.color.encode import soft_encode
from colorcli.color.lab import rgb_to_lab

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "imagenet-sample"


def load_ab(folder: Path, count: int, side: int, seed: int) -> tuple[torch.Tensor, str]:
    """``count`` photos as ab ``(count, 2, side, side)`` float32, or random ab if none."""
    paths: list[Path] = []
    if folder.is_dir():
        paths = sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
        )
    if paths:
        from PIL import Image

        rgbs = []
        for i in range(count):
            with Image.open(paths[i % len(paths)]) as img:
                img = img.convert("RGB")
                s = min(img.size)
                left, top = (img.width - s) // 2, (img.height - s) // 2
                img = img.crop((left, top, left + s, top + s)).resize((side, side))
                rgbs.append(np.asarray(img, dtype=np.float32) / 255.0)
        rgb = torch.from_numpy(np.stack(rgbs)).permute(0, 3, 1, 2)
        return rgb_to_lab(rgb)[:, 1:].contiguous(), f"photos from {folder}"
    gen = torch.Generator().manual_seed(seed)
    ab = torch.rand(count, 2, side, side, generator=gen) * 220.0 - 115.0
    return ab, "uniform random ab in [-115, 115]^2"


def sklearn_encode(
    nn: object, ab: torch.Tensor, k: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: ball-tree kneighbors plus Gaussian weights, (N, K) each."""
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy().astype(np.float64)
    dist, idx = nn.kneighbors(x)  # type: ignore[attr-defined]
    w = np.exp(-(dist**2) / (2 * sigma**2))
    w /= w.sum(axis=1, keepdims=True)
    return idx, w


def best_time(fn: Callable[[], object], repeat: int, cuda: bool) -> float:
    """Best of ``repeat`` runs after a warm-up. CPU: process CPU time (both sides run one
    thread, so this is fair and robust to other load on a shared machine); CUDA: wall time."""
    clock = time.perf_counter if cuda else time.process_time
    fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(clock() - t0)
    return min(times)


def compare(
    ours: tuple[torch.Tensor, torch.Tensor], ref: tuple[np.ndarray, np.ndarray]
) -> tuple[bool, float]:
    """Same neighbour sets per pixel? Max |weight difference| after matching bins."""
    k = ours[0].shape[1]
    oi = ours[0].permute(0, 2, 3, 1).reshape(-1, k).cpu().numpy()
    ow = ours[1].permute(0, 2, 3, 1).reshape(-1, k).cpu().double().numpy()
    ri, rw = ref
    o_order, r_order = np.argsort(oi, axis=1), np.argsort(ri, axis=1)
    oi_s, ri_s = np.take_along_axis(oi, o_order, 1), np.take_along_axis(ri, r_order, 1)
    same = bool(np.array_equal(oi_s, ri_s))
    diff = np.abs(np.take_along_axis(ow, o_order, 1) - np.take_along_axis(rw, r_order, 1))
    return same, float(diff.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--k", type=int, default=5, help="neighbours per pixel (default 5)")
    parser.add_argument("--sigma", type=float, default=5.0, help="Gaussian sigma in ab units")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs; the best is kept")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of photos")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--no-compile", action="store_true", help="skip the torch.compile column (slow compile)"
    )
    parser.add_argument(
        "--device", default="cpu", help="device for soft_encode: cpu or cuda (if available)"
    )
    args = parser.parse_args()
    from sklearn.neighbors import NearestNeighbors

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available; using cpu")
        device = torch.device("cpu")
    cuda = device.type == "cuda"
    modes: list[tuple[str, bool]] = [("eager", False)]
    if not args.no_compile and not cuda:
        modes.append(("compiled", True))

    bins = reference_bins()
    nn = NearestNeighbors(n_neighbors=args.k, algorithm="ball_tree").fit(bins)
    workloads = [("1 x 256x256", 1, 256), ("32 x 64x64", 32, 64)]
    rows = []
    source = ""
    compile_s = 0.0
    for name, count, side in workloads:
        ab, source = load_ab(args.images, count, side, seed=0)
        ab_dev = ab.to(device)
        n = ab.shape[0] * ab.shape[2] * ab.shape[3]
        t_sk = best_time(lambda a=ab: sklearn_encode(nn, a, args.k, args.sigma), args.repeat, False)
        ref = sklearn_encode(nn, ab, args.k, args.sigma)
        for mode, comp in modes:
            if comp and not compile_s:
                t0 = time.perf_counter()
                soft_encode(ab_dev, bins, args.k, args.sigma, compile=True)
                compile_s = time.perf_counter() - t0

            def ours(a: torch.Tensor = ab_dev, c: bool = comp) -> object:
                return soft_encode(a, bins, args.k, args.sigma, compile=c)

            t_ours = best_time(ours, args.repeat, cuda)
            same, wdiff = compare(soft_encode(ab_dev, bins, args.k, args.sigma, compile=comp), ref)
            rows.append((name, mode, n, n / t_ours, n / t_sk, t_sk / t_ours, same, wdiff))

    print(f"soft_encode vs sklearn NearestNeighbors(ball_tree), K={args.k}, sigma={args.sigma}")
    print(f"Q={len(bins)} reference bins; pixels: {source}")
    clock = "wall time" if cuda else "CPU time of the process"
    print(f"ours on {device}, sklearn on cpu; torch threads {args.threads}; best of {args.repeat}")
    print(f"({clock}); px/s = pixels per second")
    if compile_s:
        print(f"one-off torch.compile time: {compile_s:.1f} s")
    cols = ("workload", "mode", "pixels", "ours px/s", "sklearn px/s", "speedup", "same", "max|dw|")
    header = (
        f"{cols[0]:<12} {cols[1]:<8} {cols[2]:>7} {cols[3]:>10} {cols[4]:>12} "
        f"{cols[5]:>7} {cols[6]:>4} {cols[7]:>8}"
    )
    print(header)
    print("-" * len(header))
    for name, mode, n, ours_ps, sk_ps, speed, same, wdiff in rows:
        print(
            f"{name:<12} {mode:<8} {n:>7} {ours_ps:>10.3e} {sk_ps:>12.3e} "
            f"{speed:>6.1f}x {'yes' if same else 'NO':>4} {wdiff:>8.1e}"
        )


if __name__ == "__main__":
    main()

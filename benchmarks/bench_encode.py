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

The table also gives the exact brute force (all Q distances in float64) and the first-call
cost (the engine's table, built once per process).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from colorcli.color._knn import brute_knn
from colorcli.color.bins import reference_bins
from colorcli.color.encode import gaussian_weights, soft_encode
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


def brute_encode(ab: torch.Tensor, bins: np.ndarray, k: int, sigma: float) -> object:
    """The exact brute force: all Q distances per pixel in float64, ``topk`` (ties by a stable
    sort), Gaussian weights."""
    a = ab[:, 0].reshape(-1).double()
    b = ab[:, 1].reshape(-1).double()
    d2, idx = brute_knn(a, b, torch.as_tensor(bins, device=ab.device), k)
    return idx, gaussian_weights(d2, sigma, ab.dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--k", type=int, default=5, help="neighbours per pixel (default 5)")
    parser.add_argument("--sigma", type=float, default=5.0, help="Gaussian sigma in ab units")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs; the best is kept")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder of photos")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
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

    bins = reference_bins()
    t0 = time.perf_counter()
    soft_encode(torch.zeros(1, 2, 1, 1, device=device), bins, args.k, args.sigma)
    first_call = time.perf_counter() - t0  # table build (once per process and bins, K)
    nn = NearestNeighbors(n_neighbors=args.k, algorithm="ball_tree").fit(bins)
    workloads = [("1 x 256x256", 1, 256), ("32 x 64x64", 32, 64)]
    rows = []
    source = ""
    for name, count, side in workloads:
        ab, source = load_ab(args.images, count, side, seed=0)
        ab_dev = ab.to(device)
        n = ab.shape[0] * ab.shape[2] * ab.shape[3]
        t_sk = best_time(lambda a=ab: sklearn_encode(nn, a, args.k, args.sigma), args.repeat, False)
        t_bf = best_time(
            lambda a=ab_dev: brute_encode(a, bins, args.k, args.sigma), args.repeat, cuda
        )

        def ours(a: torch.Tensor = ab_dev) -> object:
            return soft_encode(a, bins, args.k, args.sigma)

        t_ours = best_time(ours, args.repeat, cuda)
        ref = sklearn_encode(nn, ab, args.k, args.sigma)
        same, wdiff = compare(soft_encode(ab_dev, bins, args.k, args.sigma), ref)
        bf_i, bf_w = brute_encode(ab_dev, bins, args.k, args.sigma)  # type: ignore[misc]
        got_i, got_w = soft_encode(ab_dev, bins, args.k, args.sigma)
        k = args.k
        exact = bool(torch.equal(got_i.permute(1, 0, 2, 3).reshape(k, -1).cpu(), bf_i.cpu()))
        bf_dw = float(
            (got_w.permute(1, 0, 2, 3).reshape(k, -1).double() - bf_w.double()).abs().max()
        )
        rows.append((name, n, n / t_sk, n / t_bf, n / t_ours, same, wdiff, exact, bf_dw))

    print(f"soft_encode vs sklearn NearestNeighbors(ball_tree) and the brute force, K={args.k}")
    print(f"sigma={args.sigma}, Q={len(bins)} reference bins; pixels: {source}")
    clock = "wall time" if cuda else "CPU time of the process"
    print(f"ours and brute force on {device}, ball tree on cpu; torch threads {args.threads}")
    print(f"best of {args.repeat} ({clock}); px/s = pixels per second")
    print(f"first call (table build, once per process): {first_call * 1e3:.0f} ms")
    cols = ("workload", "ball tree", "brute", "ours", "vs tree", "vs brute", "tree=", "brute=")
    header = (
        f"{cols[0]:<12} {cols[1]:>10} {cols[2]:>10} {cols[3]:>10} {cols[4]:>8} {cols[5]:>8} "
        f"{cols[6]:>14} {cols[7]:>14}"
    )
    print(header)
    print("-" * len(header))
    for name, _n, sk, bf, us, same, wdiff, exact, bf_dw in rows:
        tree_eq = f"{'yes' if same else 'NO'} {wdiff:.0e}"
        brute_eq = f"{'yes' if exact else 'NO'} {bf_dw:.0e}"
        print(
            f"{name:<12} {sk:>10.3e} {bf:>10.3e} {us:>10.3e} {us / sk:>7.1f}x {us / bf:>7.1f}x "
            f"{tree_eq:>14} {brute_eq:>14}"
        )
    print("tree= / brute=: same neighbours (sets vs the tree; indices in order vs the brute")
    print("force) and the largest |weight difference|")


if __name__ == "__main__":
    main()

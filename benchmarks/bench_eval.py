"""Speed of the evaluation metrics at 256 px, against a CPU eccv16 forward pass.

Measures, per image of a real photo folder (default ../shared/data/bsds500/test), the cost of
every metric `colorcli eval` computes for one model's prediction (excluding the model): the
rebalancing pixel weights (nearest bin), plain and rebalanced AuC, Lab -> RGB of the prediction,
PSNR, SSIM and colourfulness. Then times one forward pass of eccv16 (width 1.0) on the CPU at
256 x 256. Target: metrics under 10% of that forward.

    python benchmarks/bench_eval.py [--folder DIR] [--images 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from colorcli import metrics as M
from colorcli.color.bins import reference_bins
from colorcli.color.encode import nearest_bin
from colorcli.color.prior import smooth_prior
from colorcli.evaluate import image_metrics, load_sample
from colorcli.evaluate.samples import join_rgb as _join_rgb
from colorcli.imageio import find_images

SIZE = 256


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=here.parent / "shared/data/bsds500/test")
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--forward-repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    files = find_images([args.folder])[: args.images]
    samples = [load_sample(i, f, SIZE) for i, f in enumerate(files)]
    bins = reference_bins()
    counts = np.zeros(len(bins))
    for s in samples:
        counts += np.bincount(nearest_bin(s.ab, bins).flatten().numpy(), minlength=len(bins))
    bin_w = M.bin_weights_lambda0(smooth_prior(counts, bins))
    # a plausible prediction: another image's ab
    preds = [samples[(i + 1) % len(samples)].ab for i in range(len(samples))]

    def per_image(step: Callable[[int], object]) -> Callable[[], None]:
        def run() -> None:
            for i in range(len(samples)):
                step(i)

        return run

    n = len(samples)
    rows: list[tuple[str, float]] = []
    weights = [M.pixel_weights_from_index(nearest_bin(s.ab, bins), bin_w) for s in samples]
    rows.append(
        (
            "pixel weights (nearest bin)",
            timed(
                per_image(
                    lambda i: M.pixel_weights_from_index(nearest_bin(samples[i].ab, bins), bin_w)
                ),
                3,
            )
            / n,
        )
    )
    rows.append(("AuC plain", timed(per_image(lambda i: M.auc(preds[i], samples[i].ab)), 3) / n))
    rows.append(
        (
            "AuC rebalanced",
            timed(per_image(lambda i: M.auc(preds[i], samples[i].ab, weights[i])), 3) / n,
        )
    )
    rgbs = [_join_rgb(s.L, p) for s, p in zip(samples, preds, strict=True)]
    rows.append(
        (
            "Lab -> RGB of prediction",
            timed(per_image(lambda i: _join_rgb(samples[i].L, preds[i])), 3) / n,
        )
    )
    rows.append(("PSNR", timed(per_image(lambda i: M.psnr(rgbs[i], samples[i].rgb)), 3) / n))
    rows.append(("SSIM", timed(per_image(lambda i: M.ssim(rgbs[i], samples[i].rgb)), 3) / n))
    rows.append(("colourfulness", timed(per_image(lambda i: M.colorfulness(rgbs[i])), 3) / n))
    all_metrics = (
        timed(
            per_image(
                lambda i: (
                    M.pixel_weights_from_index(nearest_bin(samples[i].ab, bins), bin_w),
                    image_metrics(
                        ("auc", "psnr", "ssim", "colorfulness"),
                        samples[i].L,
                        preds[i],
                        samples[i].ab,
                        samples[i].rgb,
                        weights[i],
                        False,
                    ),
                )
            ),
            3,
        )
        / n
    )

    try:
        from colorcli.models import create_model

        net = create_model("eccv16", q=313, width=1.0).eval()
        x = samples[0].L
        with torch.inference_mode():
            forward = timed(lambda: net(x), args.forward_repeat)
    except ImportError as exc:  # pragma: no cover - models not built
        forward = float("nan")
        print(f"eccv16 not available: {exc}")

    print(f"{n} images from {args.folder} at {SIZE}x{SIZE}, torch threads {args.threads}")
    print(f"{'step':<32}{'ms/image':>10}")
    for name, sec in rows:
        print(f"{name:<32}{sec * 1e3:>10.2f}")
    print(
        f"{'all metrics (as in eval)':<32}{all_metrics * 1e3:>10.2f}   "
        f"-> {1 / all_metrics:.1f} images/s"
    )
    print(f"{'eccv16 width 1.0 forward (CPU)':<32}{forward * 1e3:>10.2f}")
    ratio = all_metrics / forward
    print(
        f"metrics / forward = {ratio * 100:.1f}% (target < 10%): "
        f"{'OK' if ratio < 0.1 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()

"""Training speed of `colorcli train`: images/s and the share of step time outside forward/backward.

Runs the real training loop (``colorcli.training.train``: DataLoader workers, Lab conversion and
target encoding on the device, rebalanced cross-entropy, Adam) for eccv16 at several widths and
reads the per-step timings it reports (``StepDone``):

- data: waiting for the next batch from the DataLoader (decode, resize, crop, flip in workers),
- prepare: uint8 -> Lab on the device, grayscale mask, area-downsampling and soft encoding,
- compute: forward, loss, backward and the optimizer step.

The data path (data + prepare) should stay under 10 % of the step time. The first --warmup
steps are not counted.

    python benchmarks/bench_train.py --folder ../shared/data/imagenet-sample --steps 8

The machine may be shared: compare rows of the same run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from colorcli.training import StepDone, TrainEvent, make_config, train

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-sample"


def run_one(args: argparse.Namespace, width: float) -> dict[str, float]:
    steps: list[StepDone] = []

    def on_event(e: TrainEvent) -> None:
        if isinstance(e, StepDone):
            steps.append(e)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config(
            str(args.folder),
            str(Path(tmp) / "run"),
            "classification",
            width=width,
            crop=args.crop,
            batch_size=args.batch_size,
            steps=args.warmup + args.steps,
            workers=args.workers,
            device=args.device,
            prior_images=args.prior_images,
            val_images=args.batch_size,
            val_every=10**9,
            save_every=10**9,
            log_every=10**9,
        )
        train(cfg, on_event=on_event)
    timed = steps[args.warmup :]
    data = sum(s.data_s for s in timed)
    prep = sum(s.prepare_s for s in timed)
    comp = sum(s.compute_s for s in timed)
    total = data + prep + comp
    return {
        "img_s": len(timed) * args.batch_size / total,
        "step_s": total / len(timed),
        "data": data / total,
        "prepare": prep / total,
        "compute": comp / total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    ap.add_argument("--widths", type=str, default="1.0,0.25")
    ap.add_argument("--crop", type=int, default=176)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", type=str, default="cpu")
    ap.add_argument("--prior-images", type=int, default=20)
    args = ap.parse_args()

    print(
        f"eccv16 classification training, crop {args.crop}, batch {args.batch_size}, "
        f"{args.workers} workers, device {args.device}, torch threads {torch.get_num_threads()}"
    )
    print(f"{'width':>6} {'img/s':>8} {'s/step':>8} {'data %':>7} {'prep %':>7} "
          f"{'compute %':>9} {'data path %':>11}")  # fmt: skip
    for w in (float(x) for x in args.widths.split(",")):
        t0 = time.perf_counter()
        r = run_one(args, w)
        print(
            f"{w:>6.3g} {r['img_s']:>8.2f} {r['step_s']:>8.3f} {100 * r['data']:>7.1f} "
            f"{100 * r['prepare']:>7.1f} {100 * r['compute']:>9.1f} "
            f"{100 * (r['data'] + r['prepare']):>11.1f}   ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()

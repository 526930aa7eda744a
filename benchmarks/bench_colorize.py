"""Folder throughput and 24 MP memory of `colorcli colorize` on CPU, with the shipped default.

    python benchmarks/bench_colorize.py [--images 16] [--batch-size 4] [--backend both]
                                        [--model PATH] [--repeats 3] [--skip-large]

Builds, in a temporary folder, N 1024x768 grayscale JPEGs (real photos from ../shared/data made
gray and resized, or synthetic ones when the photo sets are absent) and one 6000x4000 (24 MP)
grayscale JPEG. For each backend (torch, onnx: ONNX Runtime on the model's ``.onnx`` twin):

* **pipeline**: ``colorize_paths`` on the folder, exactly the CLI's code path (decode and
  preparation on reader threads, the model on this thread, finishing, encoding and the atomic
  write on writer threads): wall seconds and images/s;
* **bare parts**, measured one after another in the same run on the same files: the JPEG decode
  (``imageio.read_image``) of every file, the network forward alone on the same padded inputs in
  the same batches, and the JPEG encode (quality 95, to memory) of every colorized output. The
  ratio is pipeline throughput / (1 / (decode + forward + encode) per image): target >= 0.85.
  Over 1 means the pipeline's overlap of the stages beats running the three bare parts back
  to back, even with all its extra work (luminance, ab decode, upsampling, Lab->RGB, write);
* **CPU per image** of the pipeline (all its threads) and of the bare parts, in the same runs:
  the difference is the pipeline's extra work, and with N cores the pipeline cannot finish in
  less than its CPU time / N, which bounds the ratio (bare sum / (pipeline CPU / N)) whatever
  the overlap; the last column is how close the pipeline comes to that bound;
* **24 MP**: the 6000x4000 photo colorized in a fresh process (``colorcli colorize``'s
  ``colorize_paths``): wall seconds and peak RSS (target <= 1 GB), next to a process that only
  imports and loads the model.

Pipeline and bare parts alternate ``--repeats`` times and the best of each is kept: on a shared
machine the load changes between measurements and the minimum is the least disturbed one. Wall
time is what a user waits for; the load average is printed beside the table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "data" / "bsds500" / "test"
BIG = (6000, 4000)


def make_inputs(folder: Path, n: int) -> tuple[Path, Path]:
    """N 1024x768 gray JPEGs in folder/small and one 6000x4000 gray JPEG in folder/large."""
    from PIL import Image

    small, large = folder / "small", folder / "large"
    small.mkdir(parents=True)
    large.mkdir()
    photos = sorted(PHOTOS.glob("*.jpg"))[:n] if PHOTOS.is_dir() else []
    rng = np.random.default_rng(0)

    def source(i: int) -> Image.Image:
        if photos:
            return Image.open(photos[i % len(photos)]).convert("L")
        return Image.fromarray(rng.integers(0, 256, (48, 64), dtype=np.uint8))

    for i in range(n):
        img = source(i).resize((1024, 768), Image.Resampling.BICUBIC)
        img.save(small / f"img{i:03d}.jpg", quality=92)
    source(0).resize(BIG, Image.Resampling.BICUBIC).save(large / "big.jpg", quality=92)
    return small, large / "big.jpg"


def network_inputs(files: list[Path], size: int, mult: int) -> list[np.ndarray]:
    """The padded network input ``(1, H, W)`` of each file, as the pipeline builds it."""
    import cv2

    from colorcli import imageio
    from colorcli.color.lab_np import luminance
    from colorcli.inference import network_size

    out = []
    for f in files:
        lum = luminance(imageio.read_image(f).pixels)
        small = cv2.resize(lum, network_size(lum.shape, size), interpolation=cv2.INTER_AREA)
        h, w = small.shape
        padded = np.pad(small, ((0, (-h) % mult), (0, (-w) % mult)), mode="edge")
        out.append(np.ascontiguousarray(padded[None], dtype=np.float32))
    return out


def forward_fn(model_path: Path, backend: str) -> tuple[Any, int, int]:
    """(forward on a ``(B, 1, H, W)`` float32 batch, network input size, size multiple)."""
    if backend == "onnx":
        import onnxruntime as ort

        from colorcli.onnx.backend import ensure_twin
        from colorcli.onnx.runtime import read_meta

        # ONNX Runtime's defaults (its pool spins between operators: the fastest bare forward)
        twin = ensure_twin(model_path)
        meta = read_meta(twin)
        session = ort.InferenceSession(str(twin), providers=["CPUExecutionProvider"])

        def forward_onnx(x: np.ndarray) -> Any:
            return session.run(None, {"L": x})[0]

        return forward_onnx, int(meta["input_size"]), int(meta.get("size_multiple", 1))
    import torch

    from colorcli.checkpoint import load_model

    loaded = load_model(model_path, "cpu")
    net = loaded.model.to(memory_format=torch.channels_last)  # as Colorizer.load does

    def forward(x: np.ndarray) -> Any:
        t = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return net(t)

    return forward, loaded.input_size, loaded.size_multiple


def bare_parts(
    forward: Any, inputs: list[np.ndarray], files: list[Path], outputs: list[Path], batch: int
) -> dict[str, float]:
    """Wall seconds of the decode of every file, the forward of every batch, and the encode of
    every colorized output, each run alone."""
    from PIL import Image

    from colorcli import imageio

    start, cpu = time.perf_counter(), time.process_time()
    for f in files:
        imageio.read_image(f)
    t_decode, c_decode = time.perf_counter() - start, time.process_time() - cpu
    forward(np.stack(inputs[:batch]))  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(inputs), batch):
        forward(np.stack(inputs[i : i + batch]))
    t_forward, c_forward = time.perf_counter() - start, time.process_time() - cpu
    rgbs = [np.asarray(Image.open(p).convert("RGB")) for p in outputs]
    start, cpu = time.perf_counter(), time.process_time()
    for rgb in rgbs:
        Image.fromarray(rgb).save(io.BytesIO(), format="JPEG", quality=95)
    t_encode, c_encode = time.perf_counter() - start, time.process_time() - cpu
    return {
        "decode": t_decode,
        "forward": t_forward,
        "encode": t_encode,
        "cpu": c_decode + c_forward + c_encode,
    }


def pipeline(
    colorizer: Any, folder: Path, out: Path, batch: int, backend: str
) -> tuple[float, float]:
    """Wall and CPU seconds of the whole colorize pipeline on the folder (the CLI's code
    path)."""
    from colorcli.colorize import ColorizeConfig, colorize_paths

    n = len(list(folder.glob("*.jpg")))
    cfg = ColorizeConfig(
        inputs=(str(folder),), out_dir=out, batch_size=batch, overwrite=True, backend=backend
    )
    start, cpu = time.perf_counter(), time.process_time()
    summary = colorize_paths(cfg, colorizer)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    if summary.done != n:
        raise RuntimeError(f"pipeline colorized {summary.done} of {n}: {summary.results}")
    return seconds, cpu


def _vm_hwm_mb() -> float | None:
    """Peak RSS of this process from /proc (Linux), which, unlike ru_maxrss, does not inherit
    the parent's peak across fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child_large(model: str, backend: str, image: str, out: str, load_only: bool) -> None:
    """Runs in a subprocess: colorize one image; print its own peak RSS and time as JSON."""
    from colorcli.colorize import ColorizeConfig, Colorizer, colorize_paths

    start = time.perf_counter()
    spec = None if model == "default" else model
    colorizer = Colorizer.load(spec, "cpu", backend=backend)
    done = 0
    if not load_only:
        cfg = ColorizeConfig(inputs=(image,), out_dir=Path(out), overwrite=True, backend=backend)
        done = colorize_paths(cfg, colorizer).done
    hwm = _vm_hwm_mb()
    rss = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "rss_mb": rss,
                "done": done,
                "backend": colorizer.backend,
                "torch": "torch" in sys.modules,
            }
        )
    )


def run_child(model: str, backend: str, image: Path, out: Path, load_only: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", model, backend, str(image), str(out)]
    if load_only:
        cmd.append("--load-only")
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"large-image child failed: {res.stderr[-2000:]}")
    info: dict = json.loads(res.stdout.strip().splitlines()[-1])
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--backend", choices=("both", "onnx", "torch"), default="both")
    ap.add_argument("--model", default=None, help="model file (default: the shipped default)")
    ap.add_argument("--repeats", type=int, default=3, help="pipeline/bare pairs; best kept")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_large(*args.child, load_only=args.load_only)
        return

    from colorcli.checkpoint import resolve_model_spec
    from colorcli.colorize import Colorizer

    model_path = Path(args.model) if args.model else resolve_model_spec(None)
    spec = str(model_path) if args.model else "default"
    backends = ("torch", "onnx") if args.backend == "both" else (args.backend,)
    rows, large = {}, {}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        small, big = make_inputs(tmp, args.images)
        files = sorted(small.glob("*.jpg"))
        for b in backends:
            colorizer = Colorizer.load(model_path, "cpu", backend=b)
            assert colorizer.backend == b, f"asked for {b}, got {colorizer.backend}"
            forward, size, mult = forward_fn(model_path, b)
            inputs = network_inputs(files, size, mult)
            out = tmp / f"out-{b}"
            pipeline(colorizer, small, out, args.batch_size, b)  # warm-up (allocator, oneDNN)
            outputs = [out / f.name for f in files]
            pipes, parts = [], []
            for _ in range(args.repeats):
                pipes.append(pipeline(colorizer, small, out, args.batch_size, b))
                parts.append(bare_parts(forward, inputs, files, outputs, args.batch_size))
            best = {k: min(p[k] for p in parts) for k in parts[0]}
            rows[b] = (min(pipes), best, tuple(inputs[0].shape[1:]))  # (wall, cpu) of the best
            del colorizer, forward
            if not args.skip_large:
                base = run_child(spec, b, big, tmp / "large-out", load_only=True)
                info = run_child(spec, b, big, tmp / "large-out", load_only=False)
                large[b] = (info, base)

    n = args.images
    print(f"model: {model_path}   load average (1 min): {os.getloadavg()[0]:.2f}")
    shape = next(iter(rows.values()))[2]
    print(
        f"folder: {n} gray JPEGs 1024x768, batch {args.batch_size}, network input "
        f"{shape[1]}x{shape[0]}; wall seconds, best of {args.repeats} alternating runs"
    )
    print(
        "| backend | pipeline s | images/s | decode s | forward s | encode s | "
        "bare sum s | ratio (target >= 0.85) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    bare_sum = {
        b: best["decode"] + best["forward"] + best["encode"] for b, (_, best, _) in rows.items()
    }
    for b, ((t_pipe, _), best, _) in rows.items():
        bare = bare_sum[b]
        print(
            f"| {b} | {t_pipe:.2f} | {n / t_pipe:.1f} | {best['decode']:.2f} | "
            f"{best['forward']:.2f} | {best['encode']:.2f} | {bare:.2f} | {bare / t_pipe:.2f} |"
        )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"\nCPU time per image (all threads), and the best ratio {cores} cores allow: the pipeline"
        f" cannot run faster than its CPU time / {cores}"
    )
    print(
        "| backend | pipeline CPU ms | bare parts CPU ms | pipeline's extra work ms | "
        "bound on the ratio | pipeline / its bound |"
    )
    print("|---|---|---|---|---|---|")
    for b, ((t_pipe, c_pipe), best, _) in rows.items():
        bare = bare_sum[b]
        bound = bare / (c_pipe / (cores or 1))
        print(
            f"| {b} | {1e3 * c_pipe / n:.1f} | {1e3 * best['cpu'] / n:.1f} | "
            f"{1e3 * (c_pipe - best['cpu']) / n:.1f} | {bound:.2f} | "
            f"{(bare / t_pipe) / bound:.2f} |"
        )
    if large:
        print(f"\none {BIG[0]}x{BIG[1]} gray JPEG in a fresh process (import + load + colorize):")
        print("| backend | seconds | peak RSS MB (target <= 1024) | load-only RSS MB | torch |")
        print("|---|---|---|---|---|")
        for info, base in large.values():
            print(
                f"| {info['backend']} | {info['seconds']:.2f} | {info['rss_mb']:.0f} | "
                f"{base['rss_mb']:.0f} | {'imported' if info['torch'] else 'not imported'} |"
            )


if __name__ == "__main__":
    main()

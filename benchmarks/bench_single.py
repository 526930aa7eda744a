"""Latency of colorizing ONE black-and-white photo (1024x768 unless ``--size``) on CPU, per
backend and per stage.

    python benchmarks/bench_single.py [--backend both|onnx|torch] [--repeats 10] [--model PATH]
                                      [--size 1024x768]   (--size 6000x4000: a 24 MP scan)

On one grayscale JPEG of that size (a real photo from ../shared/data made gray, or a synthetic one
when the photo sets are absent), for each backend (torch, and onnx: ONNX Runtime, the model's
twin exported into the user cache on first use):

* the stage table: decode (``imageio.read_image``), luminance (full-size L), resize (L to the
  network input), forward (the bare network), ab decode (annealed mean at the logits' stride
  and bilinear upsampling to the network input: torch ops, or numpy on the onnx backend), ab
  upsample (to the full size), Lab -> RGB (full size), encode (JPEG to memory), write
  (``imageio.write_image``: encode + metadata + atomic write); median milliseconds; beside
  it, the OpenCV call each stage is held against where colorcli does not call OpenCV for it
  already (``REFERENCES``: ``cvtColor`` on float32 Lab, ``imread``, ``imencode``; the resizes
  are OpenCV's ``resize`` itself), on the same data;
* warm: read + colorize + write in one process with the model loaded once (the
  ``colorize_paths`` call the CLI makes), median and best of ``--repeats``;
* cold: ``colorcli colorize photo.jpg --backend B`` as a fresh process (interpreter start,
  imports, model load, the same work), CPU and wall time, median of ``--cold-runs``; and
  whether torch was imported.

Numbers are noisy on a shared machine: compare the two backends within one run, and report the
load average printed beside them. Times are CPU time (``CLOCK``): a loaded machine
inflates them far less than wall time.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "data" / "bsds500" / "test"
STAGES = (
    "decode",
    "luminance",
    "resize",
    "forward",
    "ab decode",
    "ab upsample",
    "Lab->RGB",
    "encode",
    "write",
)


def make_photo(path: Path, size: tuple[int, int] = (1024, 768)) -> None:
    from PIL import Image

    sources = sorted(PHOTOS.glob("*.jpg"))[:1] if PHOTOS.is_dir() else []
    if sources:
        img = Image.open(sources[0]).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    else:
        rng = np.random.default_rng(0)
        small = (rng.random((6, 8, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    img.convert("L").save(path, quality=92)


#: The well-kept library call each stage is held against (the issue's floor), where colorcli
#: does not call that library directly for the stage already.
REFERENCES = {
    "decode": "cv2.imread gray",
    "Lab->RGB": "cv2.cvtColor Lab2RGB float32 + merge + to uint8",
    "encode": "cv2.imencode q95 (+ RGB2BGR)",
}


def reference_ms(
    photo: Path, lum: np.ndarray, ab_full: np.ndarray, rgb: np.ndarray, repeats: int
) -> dict:
    """CPU ms of the OpenCV reference of each stage in ``REFERENCES`` on the same data."""
    import cv2

    def lab_to_rgb() -> None:
        out = cv2.cvtColor(cv2.merge([lum, ab_full]), cv2.COLOR_Lab2RGB)
        cv2.convertScaleAbs(out, out, 255.0)

    def encode() -> None:
        cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])

    return {
        "decode": median_ms(lambda: cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE), repeats),
        "Lab->RGB": median_ms(lab_to_rgb, repeats),
        "encode": median_ms(encode, repeats),
    }


#: Timing clock: CPU seconds of this process (all its threads). With one compute thread (run
#: under OMP_NUM_THREADS=1, which both backends honour) this is the time on an idle machine,
#: and it does not count waiting for the CPU on a loaded one.
CLOCK = time.process_time


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = CLOCK()
        fn()
        times.append(CLOCK() - start)
    return 1e3 * statistics.median(times)


def stage_table(model_path: Path, backend: str, photo: Path, out: Path, repeats: int) -> dict:
    import cv2

    from colorcli import imageio
    from colorcli.color.lab_np import lab_to_rgb_image, luminance
    from colorcli.inference import network_size

    decoded = imageio.read_image(photo)
    lum = luminance(decoded.pixels)
    if backend == "onnx":
        from colorcli.onnx.backend import ensure_twin
        from colorcli.onnx.runtime import OnnxModel, decode_np, upsample_bilinear

        onnx_model = OnnxModel.open(ensure_twin(model_path))
        size, mult = onnx_model.input_size, onnx_model.size_multiple
        meta = onnx_model.meta
        bins = np.asarray(meta["bins"], dtype=np.float32)

        def forward(x: np.ndarray) -> Any:
            return onnx_model.forward(x)

        def ab_decode(logits: Any, shape: tuple[int, int]) -> np.ndarray:
            ab = decode_np(logits, bins, meta["decode"]["method"], meta["decode"]["temperature"])
            return upsample_bilinear(ab, shape)
    else:
        import torch
        import torch.nn.functional as F

        from colorcli.checkpoint import load_model
        from colorcli.color.encode import decode

        loaded = load_model(model_path, "cpu")
        size, mult = loaded.input_size, loaded.size_multiple

        def forward(x: np.ndarray) -> Any:
            with torch.inference_mode():
                return loaded.model(torch.from_numpy(x))

        def ab_decode(logits: Any, shape: tuple[int, int]) -> np.ndarray:
            with torch.inference_mode():
                assert loaded.bins is not None
                ab = decode(logits, loaded.bins, loaded.decode_method, loaded.temperature)
                ab = F.interpolate(ab, size=shape, mode="bilinear", align_corners=False)
                return ab.numpy()

    w_net, h_net = network_size(lum.shape, size)
    small = cv2.resize(lum, (w_net, h_net), interpolation=cv2.INTER_AREA)
    ph, pw = -(-h_net // mult) * mult, -(-w_net // mult) * mult
    x = np.ascontiguousarray(
        np.pad(small, ((0, ph - h_net), (0, pw - w_net)), mode="edge")[None, None]
    )
    logits = forward(x)
    ab_small = ab_decode(logits, (ph, pw))[0, :, :h_net, :w_net]
    ab = np.ascontiguousarray(ab_small.transpose(1, 2, 0))
    h, w = lum.shape
    ab_full = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
    rgb = lab_to_rgb_image(lum, ab_full, 8)

    # the stages as the colorize pipeline runs them: OpenCV's own thread pool off (it doubles
    # the CPU time of the colour conversion's many small calls; colorize_jobs turns it off)
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(0)
    try:
        return _stage_times(
            photo,
            out,
            repeats,
            decoded,
            lum,
            (w_net, h_net),
            (ph, pw),
            x,
            logits,
            ab,
            ab_full,
            rgb,
            forward,
            ab_decode,
        )
    finally:
        cv2.setNumThreads(opencv_threads)


def _stage_times(
    photo: Path, out: Path, repeats: int, decoded: Any, lum: np.ndarray,
    net: tuple[int, int], padded: tuple[int, int], x: np.ndarray, logits: Any, ab: np.ndarray,
    ab_full: np.ndarray, rgb: np.ndarray, forward: Any, ab_decode: Any,
) -> dict:  # fmt: skip
    import cv2

    from colorcli import imageio
    from colorcli.color.lab_np import lab_to_rgb_image, luminance

    (w_net, h_net), (ph, pw), (h, w) = net, padded, lum.shape

    def encode() -> None:
        from PIL import Image

        Image.fromarray(rgb).save(io.BytesIO(), format="JPEG", quality=95)

    return {
        "decode": median_ms(lambda: imageio.read_image(photo), repeats),
        "luminance": median_ms(lambda: luminance(decoded.pixels), repeats),
        "resize": median_ms(
            lambda: cv2.resize(lum, (w_net, h_net), interpolation=cv2.INTER_AREA), repeats
        ),
        "forward": median_ms(lambda: forward(x), repeats),
        "ab decode": median_ms(lambda: ab_decode(logits, (ph, pw)), repeats),
        "ab upsample": median_ms(
            lambda: cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR), repeats
        ),
        "Lab->RGB": median_ms(lambda: lab_to_rgb_image(lum, ab_full, 8), repeats),
        "encode": median_ms(encode, repeats),
        "write": median_ms(lambda: imageio.write_image(out / "w.jpg", rgb, quality=95), repeats),
        "net input": f"{w_net}x{h_net}",
        "reference": reference_ms(photo, lum, ab_full, rgb, repeats),
    }


def warm(model_path: Path, backend: str, photo: Path, out: Path, repeats: int) -> list[float]:
    from colorcli.colorize import ColorizeConfig, Colorizer, colorize_paths

    colorizer = Colorizer.load(model_path, "cpu", backend=backend)
    assert colorizer.backend == backend, f"asked for {backend}, got {colorizer.backend}"
    config = ColorizeConfig(
        inputs=(str(photo),), out_dir=out, overwrite=True, workers=1, backend=backend
    )
    colorize_paths(config, colorizer)  # first call: allocator and oneDNN warm-up
    times = []
    for _ in range(repeats):
        start = CLOCK()
        summary = colorize_paths(config, colorizer)
        times.append(CLOCK() - start)
        assert summary.failed == 0 and summary.done == 1, "colorize failed"
    return times


COLD = """
import sys, runpy
sys.argv = ["colorcli", *sys.argv[1:]]
try:
    runpy.run_module("colorcli", run_name="__main__")
except SystemExit as exc:
    if exc.code:
        raise
sys.stderr.write("TORCH-IMPORTED\\n" if "torch" in sys.modules else "NO-TORCH\\n")
"""


def _children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def cold(
    model_path: Path, backend: str, photo: Path, out: Path, runs: int
) -> tuple[list, bool, list]:
    """CPU seconds (user + system) of each fresh process, whether any imported torch, and the
    wall seconds of each (what the user waits for; the target is on this one)."""
    cmd = [sys.executable, "-c", COLD, "colorize", str(photo), "-o", str(out), "--overwrite"]
    cmd += ["--device", "cpu", "--model", str(model_path), "--backend", backend]
    times, torch_seen, walls = [], False, []
    for _ in range(runs):
        start, wall = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        walls.append(time.perf_counter() - wall)
        times.append(_children_cpu() - start)
        torch_seen |= "TORCH-IMPORTED" in proc.stderr
    return times, torch_seen, walls


def import_time(runs: int) -> float:
    times = []
    for _ in range(runs):
        start = _children_cpu()
        subprocess.run([sys.executable, "-c", "import colorcli"], check=True)
        times.append(_children_cpu() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--backend", choices=("both", "onnx", "torch"), default="both")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--model", default=None, help="model file (default: the shipped default)")
    ap.add_argument("--size", default="1024x768", help="photo size WxH (6000x4000: a 24 MP scan)")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    if len(size) != 2 or min(size) < 8:
        ap.error(f"--size must be WxH, got {args.size}")
    if args.model:
        model_path = Path(args.model)
    else:
        from colorcli.checkpoint import resolve_model_spec

        model_path = resolve_model_spec(None)
    backends = ("torch", "onnx") if args.backend == "both" else (args.backend,)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / f"photo-{size[0]}x{size[1]}.jpg"
        make_photo(photo, (size[0], size[1]))
        for b in backends:
            out = Path(tmp) / b
            out.mkdir()
            table = stage_table(model_path, b, photo, out, args.repeats)
            table["warm"] = warm(model_path, b, photo, out / "warm", args.repeats)
            table["cold"] = cold(model_path, b, photo, out / "cold", args.cold_runs)
            rows[b] = table
        imp = import_time(args.cold_runs)
    load = os.getloadavg()[0]
    print(f"model: {model_path}   {args.size} gray JPEG   load average (1 min): {load:.2f}")
    print(
        f"network input: {next(iter(rows.values()))['net input']}; median CPU ms (one compute "
        "thread: OMP_NUM_THREADS=1 recommended); cold: CPU ms of the new process"
    )
    ref = next(iter(rows.values()))["reference"]
    print("| stage | " + " | ".join(backends) + " | OpenCV reference |")
    print("|---|" + "---|" * len(backends) + "---|")
    for stage in STAGES:
        cells = " | ".join(f"{rows[b][stage]:.1f}" for b in backends)
        theirs = f"{ref[stage]:.1f} ({REFERENCES[stage]})" if stage in ref else "-"
        print(f"| {stage} | {cells} | {theirs} |")
    total = {b: sum(rows[b][s] for s in STAGES if s != "encode") for b in backends}
    print(
        "| sum (write includes encode) | " + " | ".join(f"{total[b]:.1f}" for b in backends) + " |"
    )
    warm_s = {b: statistics.median(rows[b]["warm"]) for b in backends}
    print(
        "| warm read+colorize+write, median | "
        + " | ".join(f"{1e3 * warm_s[b]:.1f}" for b in backends)
        + " |"
    )
    print(
        "| warm, best | " + " | ".join(f"{1e3 * min(rows[b]['warm']):.1f}" for b in backends) + " |"
    )
    cold_s = {b: statistics.median(rows[b]["cold"][0]) for b in backends}
    print(
        "| cold `colorcli colorize` (new process), CPU ms, median | "
        + " | ".join(f"{1e3 * cold_s[b]:.0f}" for b in backends)
        + " |"
    )
    print(
        "| cold, wall ms (target <= 1000 on onnx), median | "
        + " | ".join(f"{1e3 * statistics.median(rows[b]['cold'][2]):.0f}" for b in backends)
        + " |"
    )
    print(
        "| cold run imported torch | "
        + " | ".join("yes" if rows[b]["cold"][1] else "no" for b in backends)
        + " |"
    )
    if len(backends) == 2:
        fwd = rows["onnx"]["forward"] / rows["torch"]["forward"]
        ratio_w, ratio_c = warm_s["onnx"] / warm_s["torch"], cold_s["onnx"] / cold_s["torch"]
        print(f"onnx / torch: forward {fwd:.2f}, warm {ratio_w:.2f}, cold {ratio_c:.2f}")
    print(f"`python -c 'import colorcli'`: {1e3 * imp:.0f} ms (median of {args.cold_runs})")


if __name__ == "__main__":
    main()

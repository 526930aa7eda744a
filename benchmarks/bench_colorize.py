"""Speed and memory of `colorcli colorize` on CPU (random weights: timing does not need good ones).

    python benchmarks/bench_colorize.py [--images 16] [--batch-size 4] [--widths 1.0 0.25]

Builds, in a temporary folder, N 1024x768 JPEGs (real photos from ../shared/data upscaled, or
synthetic ones when the photo sets are absent) and one 6000x4000 JPEG, and for each eccv16 width:

* the whole pipeline on the folder (decode, L, model, decode of the logits, full-size colour,
  encode, atomic write; threads as in the CLI): images/s;
* the bare model forward on the same inputs with the same batch size, and the pipeline's ratio
  to it (target for full width: <= 1.3);
* for each width, where the time goes when the stages run one after another on one thread;
* the 6000x4000 image colorized in a fresh subprocess: its wall time and peak RSS (target
  < 2 GB), next to the RSS of a subprocess that only imports and loads the model.

Numbers are noisy on a shared machine; compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "data" / "bsds500" / "test"


def make_inputs(folder: Path, n: int) -> tuple[Path, Path]:
    """N 1024x768 JPEGs in folder/small and one 6000x4000 JPEG in folder/large."""
    from PIL import Image

    small, large = folder / "small", folder / "large"
    small.mkdir(parents=True)
    large.mkdir()
    photos = sorted(PHOTOS.glob("*.jpg"))[:n] if PHOTOS.is_dir() else []
    rng = np.random.default_rng(0)
    for i in range(n):
        if photos:
            img = Image.open(photos[i % len(photos)]).convert("RGB")
        else:
            img = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
        img.resize((1024, 768), Image.Resampling.BICUBIC).save(
            small / f"img{i:03d}.jpg", quality=92
        )
    src = Image.open(photos[0]).convert("RGB") if photos else Image.open(small / "img000.jpg")
    src.resize((6000, 4000), Image.Resampling.BICUBIC).save(large / "big.jpg", quality=92)
    return small, large / "big.jpg"


def make_model(path: Path, width: float) -> None:
    import torch

    from colorcli.checkpoint import save_model
    from colorcli.color.bins import reference_bins
    from colorcli.models import create_model

    torch.manual_seed(0)
    model = create_model("eccv16", q=313, width=width)
    save_model(
        path, model, arch="eccv16", arch_kwargs={"q": 313, "width": width}, bins=reference_bins()
    )


def bare_forward(
    model_path: Path, n: int, batch: int, size: int, channels_last: bool
) -> tuple[float, float]:
    """(wall, process CPU) seconds for the model forward alone on n inputs, in batches."""
    import torch

    from colorcli.checkpoint import load_model

    loaded = load_model(model_path, "cpu")
    net = loaded.model
    x = torch.rand(batch, 1, size, size) * 100
    if channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        net(x)  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        done = 0
        while done < n:
            b = min(batch, n - done)
            net(x[:b])
            done += b
    return time.perf_counter() - start, time.process_time() - cpu


def pipeline(model_path: Path, folder: Path, out: Path, batch: int) -> tuple[float, float, int]:
    """(wall, process CPU) seconds and images done for the whole colorize pipeline on a folder
    (the CLI's code path, threads included)."""
    import torch

    from colorcli.colorize import ColorizeConfig, Colorizer, colorize_paths

    colorizer = Colorizer.load(model_path, "cpu")
    colorizer.predict_ab(np.zeros((1, colorizer.size, colorizer.size), np.float32))  # warm-up
    cfg = ColorizeConfig(inputs=(str(folder),), out_dir=out, batch_size=batch, workers=2)
    del torch
    start, cpu = time.perf_counter(), time.process_time()
    summary = colorize_paths(cfg, colorizer)
    return time.perf_counter() - start, time.process_time() - cpu, summary.done


def stages(model_path: Path, folder: Path, out: Path, batch: int) -> dict[str, float]:
    """Per-stage seconds with the stages run one after another on this thread."""
    import torch

    from colorcli import imageio
    from colorcli.checkpoint import load_model
    from colorcli.color.encode import decode
    from colorcli.colorize import Colorizer

    loaded = load_model(model_path, "cpu")
    loaded.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    colorizer = Colorizer.load(model_path, "cpu")
    files = sorted(folder.glob("*.jpg"))
    t = dict.fromkeys(
        (
            "decode JPEG",
            "L + legacy check + resize",
            "model forward",
            "annealed-mean decode",
            "ab upsample + Lab->RGB",
            "encode JPEG + write",
        ),
        0.0,
    )
    out.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        loaded.model(torch.zeros(1, 1, 256, 256))
    for i in range(0, len(files), batch):
        chunk = files[i : i + batch]
        preps = []
        for f in chunk:
            s = time.perf_counter()
            d = imageio.read_image(f)
            t["decode JPEG"] += time.perf_counter() - s
            s = time.perf_counter()
            preps.append(colorizer.prepare(d))
            t["L + legacy check + resize"] += time.perf_counter() - s
        x = torch.from_numpy(np.stack([p.l_small for p in preps]))[:, None]
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            s = time.perf_counter()
            logits = loaded.model(x)
            t["model forward"] += time.perf_counter() - s
            s = time.perf_counter()
            assert loaded.bins is not None
            ab_small = decode(logits, loaded.bins, method="annealed", temperature=0.38)
            ab = torch.nn.functional.interpolate(ab_small, size=x.shape[-2:], mode="bilinear")
            t["annealed-mean decode"] += time.perf_counter() - s
        for p, f, a in zip(preps, chunk, ab.numpy(), strict=True):
            s = time.perf_counter()
            rgb = colorizer.finish(p, a)
            t["ab upsample + Lab->RGB"] += time.perf_counter() - s
            s = time.perf_counter()
            imageio.write_image(out / f.name, rgb, exif=p.decoded.exif)
            t["encode JPEG + write"] += time.perf_counter() - s
    return t


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


def child_large(model_path: str, image: str, out: str, load_only: bool) -> None:
    """Runs in a subprocess: colorize one image; print its own peak RSS and time as JSON."""
    from colorcli.colorize import ColorizeConfig, Colorizer, colorize_paths

    start = time.perf_counter()
    colorizer = Colorizer.load(model_path, "cpu")
    done = 0
    if not load_only:
        cfg = ColorizeConfig(inputs=(image,), out_dir=Path(out), overwrite=True)
        done = colorize_paths(cfg, colorizer).done
    hwm = _vm_hwm_mb()
    rss = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": time.perf_counter() - start, "rss_mb": rss, "done": done}))


# ru_maxrss of a child starts at the peak of the process that forked it (Linux keeps it across
# exec), so the measured child is started from this tiny launcher, not from the big benchmark
# process; the launcher reports RUSAGE_CHILDREN for its one child.
_LAUNCHER = (
    "import json, resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stderr.write(r.stderr)\n"
    "info = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else {}\n"
    "info['rusage_children_mb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
    "info['returncode'] = r.returncode\n"
    "print(json.dumps(info))\n"
)


def run_child(model: Path, image: Path, out: Path, load_only: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", str(model), str(image), str(out)]
    if load_only:
        cmd.append("--load-only")
    res = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True, check=True
    )
    info: dict[str, float] = json.loads(res.stdout.strip().splitlines()[-1])
    if info.get("returncode"):
        raise RuntimeError(f"large-image child failed: {res.stderr[-2000:]}")
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    ap.add_argument("--repeats", type=int, default=3, help="pipeline/bare pairs; best kept")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "IMAGE", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        model, image, out = args.child
        child_large(model, image, out, load_only=args.load_only)
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        small, big = make_inputs(tmp, args.images)
        rows = []
        breakdowns = {}
        large_rows = []
        for width in args.widths:
            model = tmp / f"eccv16-w{width}.pt"
            make_model(model, width)
            # alternate pipeline and bare forward, keep the best of each: on a shared machine
            # the load changes between measurements, the minimum is the least disturbed one.
            # The pipeline runs the model channels-last (its default): compare like with like.
            pipes, bares, pipe_cpu, bare_cpu = [], [], [], []
            for r in range(args.repeats):
                t_pipe, c_pipe, done = pipeline(
                    model, small, tmp / f"out-{width}-{r}", args.batch_size
                )
                assert done == args.images, done
                t_bare, c_bare = bare_forward(model, args.images, args.batch_size, 256, True)
                pipes.append(t_pipe)
                bares.append(t_bare)
                pipe_cpu.append(c_pipe)
                bare_cpu.append(c_bare)
            t_pipe, t_bare = min(pipes), min(bares)
            cpu_ratio = min(pipe_cpu) / min(bare_cpu)
            t_nchw = min(
                bare_forward(model, args.images, args.batch_size, 256, False)[0]
                for _ in range(args.repeats)
            )
            rows.append(
                (width, args.images / t_pipe, t_pipe, t_bare, t_pipe / t_bare, cpu_ratio, t_nchw)
            )
            if width == min(args.widths):
                breakdowns[width] = stages(model, small, tmp / f"stages-{width}", args.batch_size)
            if not args.skip_large:
                base = run_child(model, big, tmp / "large-out", load_only=True)
                big_info = run_child(model, big, tmp / "large-out", load_only=False)
                large_rows.append((width, big_info, base))

    print(f"\nfolder: {args.images} JPEGs 1024x768, batch {args.batch_size}, network input 256x256")
    print(
        f"(best of {args.repeats} alternating runs; bare fwd: the model alone, channels-last as in "
        "the pipeline; ratio = pipeline / bare wall time; CPU-time ratio: same with process CPU "
        "time, less sensitive to other load on the machine)"
    )
    print(
        f"{'eccv16 width':>12} {'images/s':>9} {'pipeline s':>11} {'bare fwd s':>11} "
        f"{'ratio':>6} {'CPU-time ratio':>15} {'bare fwd NCHW s':>16}"
    )
    for width, ips, tp, tb, ratio, cr, tcl in rows:
        print(
            f"{width:>12} {ips:>9.2f} {tp:>11.2f} {tb:>11.2f} {ratio:>6.2f} {cr:>15.2f} "
            f"{tcl:>16.2f}"
        )
    for width, t in breakdowns.items():
        total = sum(t.values())
        print(f"\nwhere the time goes, width {width}, stages run serially ({total:.2f} s in all):")
        for name, sec in t.items():
            print(f"  {name:<28} {sec:>7.2f} s  {100 * sec / total:>5.1f} %")
    if large_rows:
        print("\none 6000x4000 JPEG in a fresh process (import + load + colorize + write):")
        print(
            f"{'eccv16 width':>12} {'seconds':>8} {'peak RSS MB':>12} {'RUSAGE_CHILDREN MB':>19} "
            f"{'load-only RSS MB':>17}"
        )
        for width, info, base in large_rows:
            sec, rss, ru = info["seconds"], info["rss_mb"], info["rusage_children_mb"]
            print(f"{width:>12} {sec:>8.2f} {rss:>12.0f} {ru:>19.0f} {base['rss_mb']:>17.0f}")
        print("(target: peak RSS < 2048 MB)")


if __name__ == "__main__":
    main()

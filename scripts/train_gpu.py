"""Train colorizers side by side on one GPU: by default the three objectives of issue 6 at equal
compute.

    python scripts/train_gpu.py --runs runs-gpu --steps 6000             # reproduce a run
    python scripts/train_gpu.py --runs runs-gpu --budget-s 420 --export OUT  # fit a time budget

The variants (``VARIANTS``) are the same eccv16 trunk (``--width``, default 0.5), batch, crop,
learning rate, seed and data order, on the downsized training photos of
``scripts/prepare_small_data.py`` (imagenet-sample + bsds500/train + bsds500/val; never
bsds500/test). Each is one ``colorcli train`` process; all three share the GPU.

``--steps N`` trains each for N steps (what ``scripts/train_default.sh gpu`` runs). ``--budget-s S``
is how the step count was found on a GPU lent for a few minutes: the runs start with a step count
far beyond the budget, and once the slowest has run ``--probe-steps`` steps the script measures the
step rates, kills the runs and resumes each with ``--steps N``, the largest multiple of 100 that the
slowest run reaches within the budget. The learning-rate milestones are fractions of ``--steps``
and the probe ends before the first one, so this equals a straight N-step run (``colorcli train``
resumes exactly). The chosen N is printed. Any run that fails ends the whole script at once.

``--export DIR`` finally writes each run's model as ``DIR/NAME.safetensors`` in float16 and the
logs and metrics as ``DIR/logs.tar.gz``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

VARIANTS: dict[str, list[str]] = {
    "full": ["--objective", "classification"],
    "class": ["--objective", "classification", "--no-rebalance"],
    "l1": ["--objective", "regression", "--arch", "eccv16", "--loss", "l1"],
    "full-lam75": ["--objective", "classification", "--lambda", "0.75"],
}
COMPARISON = ("full", "class", "l1")
SAVE_EVERY = 100
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: import colorcli from this checkout

from prepare_small_data import SETS  # noqa: E402  (beside this script)

from colorcli.checkpoint import copy_model  # noqa: E402
from colorcli.training.config import LR_MILESTONES  # noqa: E402
from colorcli.training.loop import read_metrics  # noqa: E402


def common_args(a: argparse.Namespace) -> list[str]:
    return [
        "--preset", "paper", "--width", str(a.width), "--batch-size", str(a.batch_size),
        "--crop", "176",
        "--lr", str(a.lr), "--val-split", "0.05", "--val-images", "64",
        "--save-every", str(SAVE_EVERY), "--val-every", str(a.val_every), "--log-every", "50",
        "--workers", str(a.workers), "--seed", "0", "--device", a.device,
    ]  # fmt: skip


def parse_run(spec: str) -> tuple[str, str, int | None]:
    """``VARIANT`` or ``VARIANT:STEPS`` -> (run folder name, variant, steps or None)."""
    variant, _, steps = spec.partition(":")
    if variant not in VARIANTS:
        sys.exit(f"unknown variant {variant!r} (choose from: {', '.join(VARIANTS)})")
    return (f"{variant}-{steps}" if steps else variant), variant, int(steps) if steps else None


def launch(a: argparse.Namespace, name: str, steps: int, resume: bool) -> subprocess.Popen[bytes]:
    out = a.runs / name
    cmd = [sys.executable, "-m", "colorcli", "train"]  # cwd: the checkout
    if resume:
        cmd += ["--resume", str(out), "--steps", str(steps)]
    else:
        cmd += [str(a.data / d) for d in SETS] + common_args(a) + VARIANTS[a.variant_of[name]]
        cmd += ["--steps", str(steps), "--out", str(out)]
    log = open(a.runs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    print("+", " ".join(cmd), flush=True)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def last_train_step(run: Path) -> int:
    records = read_metrics(run / "metrics.jsonl")
    return max([0] + [int(r["step"]) for r in records if r.get("kind") == "train"])


def check(procs: dict[str, subprocess.Popen[bytes]], a: argparse.Namespace) -> None:
    for name, p in procs.items():
        if p.poll() not in (None, 0):
            for q in procs.values():
                if q.poll() is None:
                    q.kill()
            tail = (a.runs / f"{name}.log").read_text(errors="replace")[-3000:]
            sys.exit(f"run {name} failed (exit {p.returncode}):\n{tail}")


def wait_all(
    procs: dict[str, subprocess.Popen[bytes]], a: argparse.Namespace, deadline: float
) -> None:
    """Wait for every run; past ``deadline`` kill them (their last checkpoints stay)."""
    while any(p.poll() is None for p in procs.values()):
        check(procs, a)
        if time.time() > deadline:
            for n, p in procs.items():
                if p.poll() is None:
                    p.kill()
                    p.wait()
                    print(f"run {n} killed at the deadline, at step {last_train_step(a.runs / n)}")
            return
        time.sleep(2)
    check(procs, a)


def fit_budget(a: argparse.Namespace, t_start: float) -> int:
    """Probe the step rates of the concurrent runs and return the step count that fits."""
    procs = {n: launch(a, n, 10**6, resume=False) for n in a.variant_of}
    first: dict[str, tuple[float, int]] = {}
    rate: dict[str, float] = {}
    while len(rate) < len(procs):
        check(procs, a)
        time.sleep(1)
        now = time.time()
        for n in procs:
            s = last_train_step(a.runs / n)
            if n not in first and s >= 100:  # past start-up and cuDNN's kernel search
                first[n] = (now, s)
            elif n in first and n not in rate and s >= a.probe_steps:
                rate[n] = (s - first[n][1]) / (now - first[n][0])
    for p in procs.values():
        p.send_signal(signal.SIGKILL)
        p.wait()
    left = a.budget_s - (time.time() - t_start) - a.restart_s
    steps = {n: last_train_step(a.runs / n) for n in procs}
    fits = min(steps[n] // SAVE_EVERY * SAVE_EVERY + rate[n] * left for n in procs)
    n_steps = int(fits // 100 * 100)
    print(f"rates (steps/s): {json.dumps({n: round(r, 2) for n, r in rate.items()})}")
    print(f"probe at steps {steps}; {left:.0f} s left -> --steps {n_steps}", flush=True)
    first_milestone = LR_MILESTONES[0][0] * n_steps
    if max(steps.values()) >= first_milestone:
        sys.exit(f"probe ran past the first lr milestone ({first_milestone:.0f}): not exact")
    return n_steps


def export(a: argparse.Namespace) -> None:
    a.export.mkdir(parents=True, exist_ok=True)
    for n in a.variant_of:
        model = a.runs / n / "model.pt"
        if model.exists():
            copy_model(model, a.export / f"{n}.safetensors", half=True)
    with tarfile.open(a.export / "logs.tar.gz", "w:gz") as tar:
        for n in a.variant_of:
            samples = sorted(
                (a.runs / n / "samples").glob("step*.png"), key=lambda p: int(p.stem[4:])
            )
            names = [f"{n}.log", f"{n}/metrics.jsonl", f"{n}/loss.png"]
            if a.samples:
                names += [str(p.relative_to(a.runs)) for p in samples[-1:]]  # the last only
            for f in names:
                if (a.runs / f).exists():
                    tar.add(a.runs / f, arcname=f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, default=Path("runs-gpu"))
    ap.add_argument("--data", type=Path, default=Path("data-small"))
    ap.add_argument(
        "--run",
        action="append",
        metavar="VARIANT[:STEPS]",
        help=f"a run (repeatable; default: {' '.join(COMPARISON)}); {', '.join(VARIANTS)}",
    )
    ap.add_argument("--steps", type=int, help="steps per run (else --budget-s decides)")
    ap.add_argument("--budget-s", type=float, default=420.0)
    ap.add_argument("--probe-steps", type=int, default=300)
    ap.add_argument("--restart-s", type=float, default=25.0, help="resume overhead allowance")
    ap.add_argument("--grace-s", type=float, default=60.0, help="then kill (budget mode)")
    ap.add_argument("--deadline-s", type=float, help="kill runs still going after this")
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--export", type=Path)
    ap.add_argument(
        "--no-samples", dest="samples", action="store_false", help="export no sample images"
    )
    a = ap.parse_args()
    t_start = time.time()
    a.runs.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "4")
    runs = [parse_run(r) for r in a.run or COMPARISON]
    a.variant_of = {name: variant for name, variant, _ in runs}
    deadline = a.deadline_s
    if a.steps is None and all(steps is None for *_, steps in runs):
        n_steps = fit_budget(a, t_start)
        procs = {n: launch(a, n, n_steps, resume=True) for n in a.variant_of}
        deadline = deadline or a.budget_s + a.grace_s
    else:
        if any(steps is None for *_, steps in runs) and a.steps is None:
            sys.exit("give every --run its :STEPS, or --steps")
        procs = {n: launch(a, n, steps or a.steps, resume=False) for n, _, steps in runs}
    wait_all(procs, a, t_start + deadline if deadline else float("inf"))
    print(f"done in {time.time() - t_start:.0f} s", flush=True)
    if a.export is not None:
        export(a)


if __name__ == "__main__":
    main()

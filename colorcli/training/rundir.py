"""The run folder: its file names, the checks before a run starts in it, and the digest of the
training file list that a resume compares.

Run folder::

    model.pt         self-describing model file (checkpoint.save_model), every --save-every steps
    model-stepN.pt   the same at step N (with keep_checkpoints)
    resume.pt        everything else needed to continue exactly (``saving``)
    critic.pt        the fine-tuned critic (fine-tuning with a critic that trains)
    metrics.jsonl    one JSON object per line: {"step", "kind": "train"|"val"|"mine", ...}
    loss.png         loss curves, refreshed at each validation
    samples/stepN.png  gray | prediction | truth for a few fixed validation images
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from colorcli.errors import UsageError
from colorcli.training.distributed import Dist

MODEL_FILE = "model.pt"
RESUME_FILE = "resume.pt"
CRITIC_FILE = "critic.pt"
METRICS_FILE = "metrics.jsonl"
LOSS_PLOT = "loss.png"
SAMPLES_DIR = "samples"
RUN_FILES = (MODEL_FILE, RESUME_FILE, CRITIC_FILE, METRICS_FILE, LOSS_PLOT)


def restartable(out: Path) -> bool:
    """A run folder that holds no checkpoint yet (interrupted before its first save): only the
    files a run writes, without ``model.pt`` or ``resume.pt``. A rerun may start over in it."""
    names = set(RUN_FILES) - {MODEL_FILE, RESUME_FILE, CRITIC_FILE}
    for p in out.iterdir():
        if p.name in names or (p.name.startswith(".") and p.name.endswith(".tmp")):
            continue
        if (
            p.name == SAMPLES_DIR
            and p.is_dir()
            and all(q.is_file() and q.name.startswith(("step", ".")) for q in p.iterdir())
        ):
            continue
        return False
    return True


def check_new_run_dir(out: Path, overwrite: bool, d: Dist) -> bool:
    """Refuse a non-empty ``out`` unless ``overwrite`` or ``restartable``, and clear a previous
    run's files there; True when a run without a checkpoint is started over."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    restart = False
    if out.is_dir() and any(out.iterdir()):
        restart = not overwrite and restartable(out)
        if not overwrite and not restart:
            raise UsageError(
                f"{out}: folder is not empty; use --resume to continue that run "
                "or --overwrite to start again there"
            )
        if d.main:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
            for pattern in ("model-step*.pt", "critic-step*.pt"):
                for p in out.glob(pattern):
                    p.unlink()
            samples = out / SAMPLES_DIR
            if samples.is_dir():
                for p in samples.glob("step*.png"):
                    p.unlink()
    return restart


def make_run_dir(out: Path, d: Dist) -> None:
    """Create ``out`` and remove the temporary files a killed run left there (rank 0), then
    wait for every process."""
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
    d.barrier()


def files_digest(files: list[Path]) -> str:
    """SHA-1 of the file list (a resume compares it: a changed folder changes the data order)."""
    h = hashlib.sha1()
    for f in files:
        h.update(str(f).encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()

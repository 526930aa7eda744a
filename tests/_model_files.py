"""Small model files for the info / push / wheel tests (a helper module, not a test)."""

from __future__ import annotations

from pathlib import Path

import torch

from colorcli.checkpoint import read_model_file, save_model
from colorcli.color.bins import reference_bins
from colorcli.models import create_model

TRAIN_CONFIG = {
    "data_dir": "data/imagenet-sample",
    "extra_data_dirs": ["data/bsds500/train", "data/bsds500/val"],
    "objective": "classification",
    "steps": 400,
    "batch_size": 8,
    "crop": 64,
    "lr": 1e-3,
    "val_split": 0.05,
    "val_images": 16,
}
METRICS = {
    "val_auc": 88.25,
    "val_psnr": float("inf"),
    "temperature_selection": {"rule": "max rebalanced AuC", "data": "validation", "sweep": []},
}


def save_tiny(path: Path, *, half: bool = False, seed: int = 0) -> Path:
    """A tiny eccv16 (Q = 313, width 1/16) with a training config and metrics."""
    torch.manual_seed(seed)
    model = create_model("eccv16", q=313, width=0.0625)
    return save_model(
        path,
        model,
        arch="eccv16",
        arch_kwargs={"q": 313, "width": 0.0625},
        bins=reference_bins(),
        decode={"method": "annealed", "temperature": 0.42},
        input_size=64,
        train_config=TRAIN_CONFIG,
        metrics=METRICS,
        step=300,
        half=half,
    )


def save_legacy(src: Path, dst: Path) -> Path:
    """``src`` rewritten as colorcli wrote model files before safetensors (torch.save)."""
    torch.save(read_model_file(src), dst)
    return dst

"""What a run trains and validates on: the training and validation file lists, the fixed
validation crops, and the colour statistics (bins, smoothed prior, class weights)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from colorcli import data
from colorcli.color.bins import load_bins, reference_bins
from colorcli.errors import BadImage, BadWeights, EmptyDataset, UsageError
from colorcli.events import Note
from colorcli.imageio import find_images
from colorcli.training.config import TrainConfig
from colorcli.training.dataset import load_crop, split_files
from colorcli.training.distributed import Dist
from colorcli.training.events import Caution, TrainEvent
from colorcli.training.sources import Sources

MIN_VAL_PHOTOS = 10
"""Fewer validation photos than this get a ``Caution``: their metrics are mostly noise."""


def list_files(
    config: TrainConfig, emit: Callable[[TrainEvent], None]
) -> tuple[list[Path], list[Path]]:
    """(training files, validation files): the split of the data folders, or ``val_dir``; the
    training files themselves (with a ``Note``) when nothing is left for validation."""
    c = config
    files = find_images([c.data_dir, *c.extra_data_dirs])
    if c.val_dir:
        train_files, val_files = files, find_images([c.val_dir])
    else:
        train_files, val_files = split_files(files, c.val_split, c.seed)
    if not train_files:
        raise EmptyDataset(f"{c.data_dir}: no image files found")
    if not val_files:
        emit(Note("no separate validation images: validating on training images"))
        val_files = train_files
    elif len(val_files) < MIN_VAL_PHOTOS:
        where = f"in {c.val_dir}" if c.val_dir else f"({c.val_split:.0%} of {len(files)} photos)"
        emit(
            Caution(
                f"only {len(val_files)} validation photo(s) {where}: validation metrics "
                f"will be mostly noise; give at least {MIN_VAL_PHOTOS} (--val-split or "
                "--val-dir)"
            )
        )
    return train_files, val_files


def load_val(
    files: list[Path], config: TrainConfig, report_bad: Callable[[str, str], None]
) -> torch.Tensor:
    """Centre crops of up to ``val_images`` readable validation files, ``(N, 3, c, c)`` uint8."""
    crops: list[torch.Tensor] = []
    for f in files:
        if len(crops) >= config.val_images:
            break
        try:
            crops.append(torch.from_numpy(load_crop(f, config.crop, None)).permute(2, 0, 1))
        except BadImage as exc:
            report_bad(str(f), str(exc))
    if not crops:
        return torch.zeros(0, 3, config.crop, config.crop, dtype=torch.uint8)
    return torch.stack(crops).contiguous()


def _load_bins(config: TrainConfig, rebalance_bins: np.ndarray | None) -> np.ndarray:
    if config.bins_file:
        bins = load_bins(config.bins_file)
        if rebalance_bins is not None and (
            bins.shape != rebalance_bins.shape or not np.allclose(bins, rebalance_bins)
        ):
            raise UsageError(
                f"{config.bins_file}: these bins differ from those of {config.rebalance_file}"
            )
        return bins
    if rebalance_bins is not None:
        return rebalance_bins
    return reference_bins()


def _prior(
    config: TrainConfig, train_files: list[Path], bins: np.ndarray, d: Dist
) -> tuple[np.ndarray, np.ndarray, str]:
    """(smoothed prior, class weights, where they came from), identical on every rank."""
    q = len(bins)
    if config.rebalance_file:
        reb = data.load_rebalance(config.rebalance_file)
        if reb.bins.shape != bins.shape or not np.allclose(reb.bins, bins):
            raise BadWeights(f"{config.rebalance_file}: its bins differ from the training bins")
        return reb.prior_smoothed, reb.weights, f"rebalancing weights from {config.rebalance_file}"
    buf = torch.zeros(2, q, dtype=torch.float64)
    if d.main:
        rng = np.random.default_rng([config.seed, 104729])
        n = min(len(train_files), config.prior_images)
        pick = sorted(rng.choice(len(train_files), size=n, replace=False).tolist())
        est = data.estimate_prior(
            [train_files[i] for i in pick], bins, workers=max(1, config.workers)
        )
        _, smoothed, weights = data.compute_rebalance(est, bins, lam=config.lam, sigma=config.sigma)
        buf[0] = torch.from_numpy(smoothed)
        buf[1] = torch.from_numpy(weights)
    if d.world_size > 1:
        dist.broadcast(buf, 0)
    src = f"ab prior estimated from {min(len(train_files), config.prior_images)} training images"
    return buf[0].numpy(), buf[1].numpy(), src


def colour_stats(
    config: TrainConfig,
    train_files: list[Path],
    state: Mapping[str, Any] | None,
    sources: Sources | None,
    d: Dist,
) -> dict[str, Any]:
    """``bins``, ``prior_smoothed``, ``class_weights`` and ``prior_source``: from the resume
    ``state``, or built now (a fine-tuned classification model keeps its own bins)."""
    if state is not None:
        return {
            "bins": state["bins"].numpy(),
            "prior_smoothed": state["prior_smoothed"].numpy(),
            "class_weights": state["class_weights"].numpy(),
            "prior_source": str(state["prior_source"]),
        }
    c = config
    rebalance_bins = None
    if c.rebalance_file:
        rebalance_bins = data.load_rebalance(c.rebalance_file).bins
    if sources is not None and sources.bins is not None:
        bins = sources.bins  # a classification model predicts its own bins
        for name, other in ((c.rebalance_file, rebalance_bins), (c.bins_file, None)):
            if not name:
                continue
            theirs = load_bins(name) if other is None else other
            if theirs.shape != bins.shape or not np.allclose(theirs, bins):
                raise UsageError(f"{name}: these bins differ from those of {c.finetune}")
    else:
        bins = _load_bins(c, rebalance_bins)
    prior_smoothed, class_weights, prior_source = _prior(c, train_files, bins, d)
    return {
        "bins": bins,
        "prior_smoothed": prior_smoothed,
        "class_weights": class_weights,
        "prior_source": prior_source,
    }

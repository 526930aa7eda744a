"""The prior of the rebalanced AuC: a ``rebalance`` file, or the evaluation set's own ab counted
in a first pass over the set (which also finds the unreadable files)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from colorcli import metrics as M
from colorcli.color.bins import reference_bins
from colorcli.color.prior import smooth_prior
from colorcli.errors import BadImage, EmptyDataset
from colorcli.evaluate.config import EvalConfig
from colorcli.evaluate.report import EvalProgress, OnProgress
from colorcli.evaluate.samples import load_sample


@dataclass
class Prior:
    bins: np.ndarray
    prior_smoothed: np.ndarray
    source: str

    def __post_init__(self) -> None:
        self.bin_weights = M.bin_weights_lambda0(self.prior_smoothed)


def load_prior_file(path: Path) -> Prior:
    from colorcli.data import load_rebalance

    reb = load_rebalance(path)
    return Prior(
        np.asarray(reb.bins, dtype=np.float64),
        np.asarray(reb.prior_smoothed, dtype=np.float64),
        f"file {path}",
    )


def hard_counts(ab: torch.Tensor, bins: np.ndarray) -> np.ndarray:
    """Counts ``(Q,)`` of pixels of ab ``(B, 2, H, W)`` per nearest bin (hard assignment)."""
    from colorcli.color.encode import nearest_bin

    idx = nearest_bin(ab, bins).flatten()
    return torch.bincount(idx, minlength=len(bins)).numpy().astype(np.float64)


def pixel_weights(ab: torch.Tensor, prior: Prior) -> torch.Tensor:
    from colorcli.color.encode import nearest_bin

    return M.pixel_weights_from_index(nearest_bin(ab, prior.bins), prior.bin_weights)


def prepare_prior(
    config: EvalConfig,
    files: Sequence[Path],
    names: Sequence[str],
    on_image: OnProgress | None = None,
) -> tuple[Prior | None, dict[int, str]]:
    """The prior (None without AuC, or when the set has no colour pixel) and the unreadable files
    (index -> reason) found by the scan.

    The set is scanned (``on_image`` phase "scan") when the random baseline needs its readable
    images or the prior comes from the set; raises EmptyDataset when no file is readable then.
    """
    want_auc = "auc" in tuple(config.metrics)
    failed: dict[int, str] = {}
    prior: Prior | None = None
    if want_auc and config.prior is not None:
        prior = load_prior_file(config.prior)
    if not ("random" in names or (want_auc and prior is None)):
        return prior, failed
    count = want_auc and prior is None
    bins313 = reference_bins()
    counts = np.zeros(len(bins313))
    for i, path in enumerate(files):
        err = None
        try:
            s = load_sample(i, path, config.size)
            if count and not M.is_grayscale_ab(s.ab):
                counts += hard_counts(s.ab, bins313)
        except BadImage as exc:
            failed[i] = err = str(exc)
        if on_image is not None:
            on_image(EvalProgress("scan", i + 1, len(files), path, err))
    if len(failed) == len(files):
        raise EmptyDataset(f"{config.data_dir}: none of the {len(files)} image files is readable")
    if count and counts.sum() > 0:
        prior = Prior(
            bins313,
            smooth_prior(counts, bins313),
            "computed from the evaluation set (hard counts of the ground-truth ab of "
            "the colour images over the 313 reference bins, smoothed sigma = 5)",
        )
    return prior, failed

"""The build-bins and rebalance workflow: the ab bins of a gamut (the reference 313, the sRGB gamut
or a folder's colours; ``build_bins``) and a folder's rebalancing weights over bins
(``rebalance_folder``), what ``colorcli build-bins`` and ``colorcli rebalance`` run.

The passes over the photos are ``colorcli.data``'s (streaming, prior estimation, the rebalancing
file); the colour science is ``colorcli.color``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorcli.data import (
    DEFAULT_MAX_SIDE,
    AbHistogram,
    Assignment,
    OnImage,
    PriorEstimate,
    Rebalance,
    compute_rebalance,
    estimate_prior,
    histogram_ab,
    list_folder,
)
from colorcli.errors import EmptyDataset, UsageError

# --- the rebalance workflow ------------------------------------------------------------------


@dataclass(frozen=True)
class RebalanceConfig:
    """Settings of ``colorcli rebalance`` (see ``rebalance_folder``)."""

    source: Path
    lam: float = 0.5
    sigma: float = 5.0
    q_mode: str = "all"  # a value of choices.QMode
    assignment: Assignment = "hard"
    max_side: int | None = DEFAULT_MAX_SIDE
    workers: int = 1
    bins_source: str = "reference"


@dataclass(frozen=True)
class RebalanceResult:
    """What ``rebalance_folder`` computed; ``skipped`` holds the unreadable and non-image files."""

    estimate: PriorEstimate
    rebalance: Rebalance
    skipped: list[tuple[Path, str]]
    n_files: int


def rebalance_folder(
    config: RebalanceConfig,
    bins: np.ndarray,
    *,
    files: Iterable[Path] | None = None,
    skipped: Sequence[tuple[Path, str]] = (),
    on_image: OnImage | None = None,
) -> RebalanceResult:
    """Estimate the prior of ``config.source`` over ``bins`` and compute the rebalancing weights.

    ``files`` defaults to the images under ``config.source`` (non-image files are added to
    ``skipped``). Raises EmptyDataset for a folder with no image files or no colour image.
    """
    from colorcli import __version__

    if files is None:
        found, not_images = list_folder(config.source)
        skipped = [*skipped, *not_images]
    else:
        found = list(files)
    if not found:
        raise EmptyDataset(f"{config.source}: no image files found (JPEG, PNG, TIFF, WebP, BMP)")
    est = estimate_prior(
        found,
        bins,
        max_side=config.max_side,
        assignment=config.assignment,
        workers=config.workers,
        on_image=on_image,
    )
    all_skipped = [*skipped, *est.bad]
    if est.n_colour == 0:
        raise EmptyDataset(
            f"{config.source}: no colour images among {len(found)} files "
            f"({est.n_gray} grayscale, {len(est.bad)} unreadable)"
        )
    prior, smoothed, weights = compute_rebalance(est, bins, config.lam, config.sigma, config.q_mode)
    settings: dict[str, Any] = {
        "lambda": config.lam,
        "sigma": config.sigma,
        "q_mode": config.q_mode,
        "q_effective": int((smoothed > 0).sum()) if config.q_mode == "nonzero" else len(bins),
        "assignment": config.assignment,
        "max_side": config.max_side,
        "bins": config.bins_source,
        "n_images": est.n_images,
        "n_gray": est.n_gray,
        "n_pixels": est.n_pixels,
        "n_bad": len(all_skipped),
        "source": str(Path(config.source).resolve()),
        "colorcli_version": __version__,
    }
    reb = Rebalance(bins, prior, smoothed, weights, settings)
    return RebalanceResult(est, reb, all_skipped, len(found))


# --- the build-bins workflow -----------------------------------------------------------------


@dataclass(frozen=True)
class BinsConfig:
    """Settings of ``colorcli build-bins``: ``source`` is "reference", "srgb" or a folder."""

    source: str = "reference"
    grid: float = 10.0
    min_pixels: int = 1
    srgb_steps: int = 256
    max_side: int | None = DEFAULT_MAX_SIDE
    workers: int = 1


@dataclass(frozen=True)
class BinsResult:
    """Bins ``(Q, 2)`` and how they were made: ``kind`` (reference, srgb, folder) and ``rule``."""

    bins: np.ndarray
    kind: str
    rule: str
    histogram: AbHistogram | None = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def build_bins(config: BinsConfig, *, on_image: OnImage | None = None) -> BinsResult:
    """Compute the bins that ``config`` asks for.

    "reference": the 313 bins of Zhang et al. (grid 10 only). "srgb": ``srgb_bins`` at
    ``config.grid``. A folder: the grid cells holding at least ``config.min_pixels`` colour pixels
    of its images (read at ``max_side``; grayscale images skipped). Raises UsageError for a bad
    combination, EmptyDataset when a folder yields fewer than 2 bins.
    """
    from colorcli.color.bins import (
        REFERENCE_GRID,
        SRGB_RULE,
        bins_from_counts,
        reference_bins,
        srgb_bins,
    )

    if not config.grid > 0:
        raise UsageError(f"--grid must be > 0, got {config.grid:g}")
    if config.source == "reference":
        if config.grid != REFERENCE_GRID:
            raise UsageError(
                f"the reference bins have grid {REFERENCE_GRID:g}; use --source srgb or a folder "
                f"for grid {config.grid:g}"
            )
        return BinsResult(
            reference_bins(),
            "reference",
            "the 313 in-gamut bins of Zhang et al. (ECCV 2016), grid 10",
        )
    if config.source == "srgb":
        rule = SRGB_RULE.format(steps=config.srgb_steps)
        return BinsResult(srgb_bins(config.grid, config.srgb_steps), "srgb", rule)
    folder = Path(config.source)
    if not folder.is_dir():
        raise UsageError(f"--source {config.source}: not 'reference', 'srgb' or an existing folder")
    if config.min_pixels < 1:
        raise UsageError(f"--min-pixels must be >= 1, got {config.min_pixels}")
    files, not_images = list_folder(folder)
    if not files:
        raise EmptyDataset(f"{folder}: no image files found (JPEG, PNG, TIFF, WebP, BMP)")
    hist = histogram_ab(
        files, config.grid, max_side=config.max_side, workers=config.workers, on_image=on_image
    )
    if hist.n_pixels == 0:
        raise EmptyDataset(
            f"{folder}: no colour images among {len(files)} files "
            f"({hist.n_gray} grayscale, {len(hist.bad)} unreadable)"
        )
    bins = bins_from_counts(hist.counts, config.grid, config.min_pixels)
    if len(bins) < 2:
        raise EmptyDataset(
            f"{folder}: only {len(bins)} grid cell(s) hold >= {config.min_pixels} colour pixels; "
            "lower --min-pixels or add images"
        )
    side = "full size" if config.max_side is None else f"longer side <= {config.max_side} px"
    rule = (
        f"a cell of centre (a, b) (multiples of the grid g) counts when at least "
        f"{config.min_pixels} colour pixel(s) of the {hist.n_images - hist.n_gray} colour images "
        f"(read at {side}; grayscale images skipped) have a in [a - g/2, a + g/2) and "
        "b in [b - g/2, b + g/2)"
    )
    return BinsResult(bins, "folder", rule, hist, [*not_images, *hist.bad])

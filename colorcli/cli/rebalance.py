"""`colorcli rebalance`: the ab prior of a folder of colour photos and the rebalancing weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from colorcli.choices import Assignment, QMode
from colorcli.cli._common import (
    OverwriteFiles,
    ReadWorkers,
    handle_errors,
    make_progress,
    png_path,
    refuse_existing,
    say,
    warn_skipped,
)
from colorcli.errors import EmptyDataset, UsageError
from colorcli.fsutil import check_writable

if TYPE_CHECKING:
    import numpy as np


@handle_errors
def command(
    folder: Annotated[Path, typer.Argument(help="Folder of colour photos (searched recursively).")],
    out: Annotated[
        Path,
        typer.Option(
            "-o", "--out", help="Output .npz: bins, prior, smoothed prior, weights, settings."
        ),
    ],
    bins_arg: Annotated[
        str,
        typer.Option(
            "--bins", help="'reference' (the 313 bins) or a bins .npy from 'colorcli build-bins'."
        ),
    ] = "reference",
    lam: Annotated[
        float,
        typer.Option(
            "--lambda", min=0.0, max=1.0, help="Mix with the uniform prior (1 = no rebalancing)."
        ),
    ] = 0.5,
    sigma: Annotated[
        float,
        typer.Option("--sigma", min=0.0, help="Gaussian smoothing of the prior, in ab units."),
    ] = 5.0,
    q_mode: Annotated[
        QMode,
        typer.Option(
            "--q-mode",
            help="Q in lambda/Q: all bins (the paper) or bins with non-zero smoothed prior "
            "(the authors' code).",
        ),
    ] = QMode.all,
    assign: Annotated[
        Assignment,
        typer.Option(
            "--assign",
            help="hard: each pixel counts 1 for its nearest bin; soft: its 5-nearest-bin "
            "Gaussian (sigma 5) encoding.",
        ),
    ] = Assignment.hard,
    max_side: Annotated[
        int,
        typer.Option(
            "--max-side", min=16, help="Images are read with their longer side shrunk to this."
        ),
    ] = 256,
    workers: ReadWorkers = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also draw the prior (log scale) and weights on the ab plane."),
    ] = None,
    overwrite: OverwriteFiles = False,
) -> None:
    """Estimate the ab prior of a folder of colour photos and compute rebalancing weights.

    Images are read with their longer side shrunk to --max-side (256 px by default) and converted
    to Lab; grayscale images (no pixel with |a| or |b| > 5) are skipped. Each pixel is assigned
    hard (to its nearest bin, the default) or soft (--assign soft). The prior is smoothed with a
    Gaussian (--sigma 5) on the ab grid, mixed with the uniform distribution (--lambda 0.5),
    inverted and normalised so that the expected weight is 1.
    """
    from colorcli.data import default_workers, list_folder, rebalance_path, save_rebalance
    from colorcli.gamut import RebalanceConfig, rebalance_folder

    out = rebalance_path(out)
    plot = png_path(plot)
    refuse_existing((out, plot), overwrite)
    check_writable(out, folder=False)  # before any work: one line, exit 2
    if not folder.exists():
        raise UsageError(f"{folder}: no such folder")
    bins = _load_bins(bins_arg)
    config = RebalanceConfig(
        source=folder,
        lam=lam,
        sigma=sigma,
        q_mode=q_mode.value,
        assignment=assign.value,
        max_side=max_side,
        workers=workers or default_workers(),
        bins_source=bins_arg,
    )
    files, not_images = list_folder(folder)
    if not files:
        raise EmptyDataset(f"{folder}: no image files found (JPEG, PNG, TIFF, WebP, BMP)")
    with make_progress() as progress:
        task = progress.add_task("reading images", total=len(files), status="")
        result = rebalance_folder(
            config,
            bins,
            files=files,
            skipped=not_images,
            on_image=lambda done, total, path: progress.update(
                task, completed=done, status=path.name[-30:] if done < total else "done"
            ),
        )
    reb = result.rebalance
    written = save_rebalance(
        out,
        bins=reb.bins,
        prior=reb.prior,
        prior_smoothed=reb.prior_smoothed,
        weights=reb.weights,
        settings=reb.settings,
    )
    warn_skipped(result.skipped)
    est, s = result.estimate, reb.settings
    say(f"wrote {written}")
    say(
        f"  images: {est.n_colour} used, {est.n_gray} grayscale skipped, "
        f"{len(result.skipped)} bad; {est.n_pixels} pixels ({s['assignment']} assignment, "
        f"longer side <= {max_side} px)",
    )
    say(
        f"  bins: Q = {len(reb.bins)} ({bins_arg}), {int((reb.prior > 0).sum())} seen; "
        f"effective Q = {s['q_effective']} (q-mode {s['q_mode']})",
    )
    say(
        f"  weights: min {reb.weights.min():.4g}, max {reb.weights.max():.4g} "
        f"(lambda {lam:g}, sigma {sigma:g}; E_p~[w] = "
        f"{float((reb.prior_smoothed * reb.weights).sum()):.4f})",
    )
    if plot is not None:
        from colorcli.plots import plot_rebalance

        say(f"plot: {plot_rebalance(reb.bins, reb.prior, reb.weights, plot)}")


def _load_bins(arg: str) -> np.ndarray:
    from colorcli.color.bins import load_bins, reference_bins

    return reference_bins() if arg == "reference" else load_bins(arg)


command.__doc__ = "\n\n".join(" ".join(p.split()) for p in (command.__doc__ or "").split("\n\n"))

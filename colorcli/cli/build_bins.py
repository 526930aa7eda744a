"""`colorcli build-bins`: write a bins file (the quantized ab gamut)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
from colorcli.fsutil import check_writable


@handle_errors
def command(
    out: Annotated[
        Path,
        typer.Option(
            "-o", "--out", help="Bins file to write (.npy, a (Q, 2) array of a, b centres)."
        ),
    ],
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help=(
                "'reference': the 313 bins of Zhang et al. (grid 10). 'srgb': every grid cell "
                "that some 8-bit sRGB colour falls into (Q = 261 at grid 10). A folder: the cells "
                "holding at least --min-pixels colour pixels of its images."
            ),
        ),
    ] = "reference",
    grid: Annotated[
        float, typer.Option("--grid", help="Cell size in ab units (srgb and folder sources).")
    ] = 10.0,
    min_pixels: Annotated[
        int,
        typer.Option(
            "--min-pixels", min=1, help="Folder source: pixels a cell needs to become a bin."
        ),
    ] = 1,
    max_side: Annotated[
        int,
        typer.Option(
            "--max-side",
            min=16,
            help="Folder source: images are read with their longer side "
            "shrunk to this many pixels.",
        ),
    ] = 256,
    workers: ReadWorkers = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also draw the bins, coloured by their ab at L = 50 (PNG)."),
    ] = None,
    overwrite: OverwriteFiles = False,
) -> None:
    """Quantize the ab gamut into bins (reference Q = 313, or from sRGB / a folder)."""
    from colorcli.data import default_workers
    from colorcli.gamut import BinsConfig, build_bins
    from colorcli.plots import plot_bins

    out = out if out.suffix == ".npy" else out.with_name(out.name + ".npy")
    plot = png_path(plot)
    refuse_existing((out, plot), overwrite)
    check_writable(out, folder=False)  # before any work: one line, exit 2
    config = BinsConfig(
        source=source,
        grid=grid,
        min_pixels=min_pixels,
        max_side=max_side,
        workers=workers or default_workers(),
    )
    if config.source in ("reference", "srgb"):
        result = build_bins(config)
    else:
        with make_progress(transient=True) as progress:
            task = progress.add_task("reading images", total=None, status="")
            result = build_bins(
                config,
                on_image=lambda done, total, path: progress.update(
                    task,
                    completed=done,
                    total=total,
                    status=path.name[-30:] if done < total else "done",
                ),
            )
    from colorcli.color.bins import save_bins

    written = save_bins(out, result.bins)
    warn_skipped(result.skipped)
    b = result.bins
    say(f"wrote {written}: Q = {len(b)} bins ({result.kind})")
    say(f"  a range: {b[:, 0].min():g} .. {b[:, 0].max():g}")
    say(f"  b range: {b[:, 1].min():g} .. {b[:, 1].max():g}")
    say(f"  rule: {result.rule}")
    if result.histogram is not None:
        h = result.histogram
        say(
            f"  images: {h.n_images - h.n_gray} colour, {h.n_gray} grayscale skipped, "
            f"{len(result.skipped)} files skipped; {h.n_pixels} pixels"
        )
    if plot is not None:
        say(f"plot: {plot_bins(b, plot)}")

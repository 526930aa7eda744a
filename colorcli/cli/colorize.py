"""`colorcli colorize`: colorize files, folders and globs at full resolution."""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from colorcli.choices import Backend, Device, OutputFormat
from colorcli.cli._common import (
    ModelDevice,
    console,
    debug_enabled,
    err_console,
    error_line,
    escape,
    handle_errors,
    make_progress,
    warn_line,
)

if TYPE_CHECKING:
    from colorcli.colorize import ColorizeConfig, Plan, Summary


_HELP = (
    "Colorize black-and-white photos (files, folders, glob patterns) at full resolution.\n\n"
    "Folders are searched recursively and their sub-folder layout is kept in OUT_DIR. Each "
    "output has the input's size, format, bit depth (16-bit PNG/TIFF stay 16-bit), alpha, EXIF "
    "and ICC profile. Only the lightness (L) of each input is used: the network predicts the "
    "colour at --size x --size and that colour is laid under the ORIGINAL full-resolution L, so "
    "every detail survives. Photos that are already in colour are left alone and listed by name "
    "(--recolor colorizes them from their L, discarding their own colours).\n\n"
    "Each output records the model and settings it was made with (PNG text chunk, JPEG/WebP "
    "EXIF, a hidden .NAME.colorcli.json beside TIFF/BMP/JPEG 2000). An output made with the "
    "same ones is skipped, so an interrupted batch resumes when you run the same command again; "
    "one made with other settings is kept and counted (--overwrite redoes both). Outputs are "
    "written atomically: a killed run never leaves a half-written file. Folders are searched "
    "for JPEG, PNG, TIFF, WebP, BMP, GIF (first frame) and JPEG 2000 files; other files are "
    "counted as ignored. Unreadable files are reported, one line each, and the batch goes on; "
    "the exit code is 0 when every file succeeded (colour photos left alone included), 1 when "
    "any failed or no image was found, 2 for usage errors (an output folder that cannot be "
    "written is one, found before the model loads).\n\n"
    "[bold]Old photos[/]: grayscale files and uniformly tinted scans (sepia, selenium, "
    "cyanotype) are detected as legacy scans; --legacy treats every input as one (for stained "
    "or hand-tinted scans the detector misses). A scan's tint is discarded: it is colorized "
    "from its luminance. For legacy scans you can also restore that luminance, which changes "
    "the output's tones: --denoise for film grain and scanner noise (runs first), --clahe for "
    "faded, low-contrast prints. Scratches, tears, stains and missing corners are not repaired "
    "(use a retouching tool first). Example: colorcli colorize scans/ --legacy --denoise --clahe"
)


@handle_errors
def command(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders (searched recursively) and glob patterns "
            "('scans/**/*.tif').",
            show_default=False,
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option("--out-dir", "-o", help="Folder for the results (created if needed)."),
    ] = Path("colorized"),
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model: a model file, hf://owner/repo\\[@revision]/file (through the Hugging "
            "Face cache; HF_HUB_OFFLINE=1 works once cached), or 'default' (the shipped model).",
            show_default=False,
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(
            help="Long side of the network input in pixels, the aspect ratio kept (default: "
            "the model file's input size, 256 for the shipped default; 'colorcli info MODEL' "
            "shows it). Larger can give finer colour regions, slower.",
            show_default=False,
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Annealed-mean temperature T for classification models (default: the model "
            "file's, 1 for the shipped default; 'colorcli info MODEL' shows it). Lower is more "
            "vivid (1 = plain mean, duller; ~0 = the most likely colour, blotchy).",
            show_default=False,
        ),
    ] = None,
    saturation: Annotated[
        float,
        typer.Option(help="Multiply the predicted colour (ab) by this; 0 gives gray, >1 vivid."),
    ] = 1.0,
    legacy: Annotated[
        bool | None,
        typer.Option(
            "--legacy/--no-legacy",
            help="Treat every input as an old monochrome scan (--legacy) or none (--no-legacy). "
            "Default: auto-detect grayscale and uniformly tinted files.",
            show_default=False,
        ),
    ] = None,
    clahe: Annotated[
        bool,
        typer.Option(
            "--clahe",
            help="Legacy scans: restore contrast of faded, flat prints with CLAHE on L "
            "(OpenCV, 8x8 tiles, see --clahe-clip). Changes the output's tones.",
        ),
    ] = False,
    clahe_clip: Annotated[
        float, typer.Option(help="CLAHE clip limit: 1 nearly off, 2 moderate, 4 strong.")
    ] = 2.0,
    denoise: Annotated[
        bool,
        typer.Option(
            "--denoise",
            help="Legacy scans: remove film grain and scanner noise from L with OpenCV "
            "non-local means (slow on large scans: tens of seconds at 24 megapixels).",
        ),
    ] = False,
    denoise_strength: Annotated[
        float,
        typer.Option(
            help="Non-local means strength h in 8-bit levels: 3 light, 7 moderate grain, 12+ "
            "heavy (smears fine detail)."
        ),
    ] = 7.0,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Also write NAME.compare.jpg: input | output side by side (at most 2048 px wide).",
        ),
    ] = False,
    gallery: Annotated[
        bool,
        typer.Option(
            "--gallery",
            help="Also write OUT_DIR/index.html: a self-contained review page (before/after "
            "slider per image, keyboard navigation, the summary, failed files, a 'mark as "
            "wrong' list to download); thumbnails go to OUT_DIR/.gallery/.",
        ),
    ] = False,
    format: Annotated[
        OutputFormat,
        typer.Option(
            "--format", "-f", help="Output format ('keep': the input's own format and extension)."
        ),
    ] = OutputFormat.keep,
    quality: Annotated[int, typer.Option(help="JPEG/WebP quality (1-100).", min=1, max=100)] = 95,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Redo outputs that already exist (made with the same or other settings).",
        ),
    ] = False,
    recolor: Annotated[
        bool,
        typer.Option(
            "--recolor",
            help="Also colorize photos that are already in colour, from their lightness (their "
            "own colours are discarded). Default: they are left alone and listed.",
        ),
    ] = False,
    device: ModelDevice = Device.auto,
    backend: Annotated[
        Backend,
        typer.Option(
            help="Inference engine: onnx (ONNX Runtime on the CPU, no torch import; pip install "
            "'colorcli[onnx]'), torch, or auto (onnx when installed, on the CPU, and the model's "
            ".onnx twin exists or can be exported once into the user cache).",
        ),
    ] = Backend.auto,
    batch_size: Annotated[int, typer.Option(help="Images per network call.", min=1)] = 4,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Threads for decoding and for encoding (each); default: CPU count, at most 4.",
            min=1,
            show_default=False,
        ),
    ] = None,
    half: Annotated[
        bool | None,
        typer.Option(
            "--half/--no-half",
            help="Half-precision inference (default: on with CUDA, off elsewhere).",
            show_default=False,
        ),
    ] = None,
    max_pixels: Annotated[
        int | None,
        typer.Option(
            help="Largest image accepted, in pixels (decompression-bomb guard; default about "
            "179 million, Pillow's). Raise it only for files you trust.",
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="I/N: colorize only part I of N (I from 0) of the planned files, every N-th "
            "of the sorted list: N processes or cluster array jobs with the same inputs and -o "
            "share the work, each file done once. Under torchrun each process takes its "
            "rank's part of this by itself.",
            show_default=False,
        ),
    ] = None,
) -> None:
    from colorcli.colorize import ColorizeConfig, ColorSettings, parse_shard

    settings = ColorSettings(
        size=size,
        temperature=temperature,
        saturation=saturation,
        legacy="auto" if legacy is None else ("on" if legacy else "off"),
        clahe=clahe,
        clahe_clip=clahe_clip,
        denoise=denoise,
        denoise_strength=denoise_strength,
    )
    config = ColorizeConfig(
        inputs=tuple(inputs),
        out_dir=out_dir,
        model=model,
        device=device.value,
        batch_size=batch_size,
        workers=workers or max(1, min(4, os.cpu_count() or 1)),
        format=None if format is OutputFormat.keep else format.value.upper(),
        quality=quality,
        overwrite=overwrite,
        compare=compare,
        max_pixels=max_pixels,
        half=half,
        settings=settings,
        shard=parse_shard(shard),
        recolor=recolor,
        backend=backend.value,
    )
    from colorcli.colorize.dist import for_rank, gather_summary, torchrun_ranks

    ranks = torchrun_ranks()  # under torchrun: this rank's share of the files, its own GPU
    if ranks is not None:
        config = for_rank(config, ranks)
    summary = _run(config, show=ranks is None or ranks.main)
    if gallery and ranks is not None:  # each rank makes the thumbnails of its own files
        from colorcli.colorize.gallery import make_thumbnails

        make_thumbnails(summary.results, out_dir, workers=config.workers)
    if ranks is not None:
        merged = gather_summary(summary, ranks)
        if merged is None:  # rank 0 reports for all
            return
        summary = merged
    _render(summary, config)
    if gallery:
        _write_gallery(summary, config)
    if summary.failed:
        raise typer.Exit(1)


command.__doc__ = _HELP


def _quiet_libraries() -> None:
    import warnings

    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="PIL")


def _write_gallery(summary: Summary, config: ColorizeConfig) -> None:
    from colorcli.colorize.gallery import write_gallery

    page = write_gallery(
        summary,
        config.out_dir,
        model=config.model or "default",
        workers=config.workers,
        max_pixels=config.max_pixels,
    )
    err_console.print(f"gallery: {escape(str(page))} (open it in a browser)", highlight=False)


def _run(config: ColorizeConfig, show: bool = True) -> Summary:
    """Plan and run the batch; ``show`` False (torchrun ranks other than 0) draws no
    announcements and no progress bar (failed files are still reported, by their rank)."""
    from colorcli.colorize import (
        Colorizer,
        FileResult,
        Summary,
        colorize_jobs,
        plan_colorize,
    )

    _quiet_libraries()
    start = time.perf_counter()
    plan = plan_colorize(config)
    if show:
        _announce(plan)
    summary = Summary()
    todo = len(plan.todo)
    if not todo:  # nothing to compute: do not even load the model
        for job in plan.jobs:
            summary.add(FileResult(job.source, job.output, job.status, job.message, skip=job.skip))
            if job.status == "failed":
                error_line(job.message)
    else:
        colorizer = Colorizer.load(
            config.model, config.device, config.settings, half=config.half, backend=config.backend
        )
        engine = " (ONNX Runtime)" if colorizer.backend == "onnx" else ""
        keeps_colour = not config.recolor and config.settings.legacy != "on"
        share = "" if config.shard is None else f" (part {config.shard[0]} of {config.shard[1]})"
        if show:
            err_console.print(
                f"{'Reading' if keeps_colour else 'Colorizing'} {todo} "
                f"image{'s' if todo != 1 else ''}"
                f"{' (colorizing those not already in colour)' if keeps_colour else ''} with "
                f"{escape(colorizer.name)} on {colorizer.device}{engine} "
                f"(network input: long side {colorizer.size} px) into "
                f"{escape(str(plan.out_dir))}{share}",
                highlight=False,
            )
        progress = make_progress()
        with progress if show else contextlib.nullcontext():
            total = sum(j.status != "skipped" for j in plan.jobs)  # planned failures count
            task = progress.add_task("colorize", total=total, status="")
            for result in colorize_jobs(plan.jobs, colorizer, config):
                summary.add(result)
                if result.status == "failed":
                    if result.exception is not None and debug_enabled():
                        traceback.print_exception(result.exception)
                    error_line(result.message)
                if result.status != "skipped" or result.skip == "colour":  # not planned skips
                    progress.update(task, advance=1, status=escape(result.source.name))
    summary.seconds = time.perf_counter() - start
    summary.ignored = plan.ignored
    return summary


def _names(paths: list[Path], limit: int = 10) -> str:
    """``a.jpg, b.png and 3 more``: file names for a one-line message."""
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _announce(plan: Plan) -> None:
    same = sum(j.skip == "exists" for j in plan.jobs)
    if same:
        err_console.print(
            f"{same} output{'s' if same != 1 else ''} already exist with the same settings: "
            "skipped (--overwrite redoes them)",
            highlight=False,
        )
    other = [j for j in plan.jobs if j.skip == "other-settings"]
    if other:
        changes = sorted({j.message.split("(", 1)[-1].split(")", 1)[0] for j in other})
        what = changes[0] + ("; and other changes" if len(changes) > 1 else "")
        warn_line(
            f"{len(other)} output{'s' if len(other) != 1 else ''} in {plan.out_dir} exist made "
            f"with other settings ({what}): kept; --overwrite redoes them, or choose another "
            "folder with -o"
        )
    if plan.excluded_in_out_dir:
        err_console.print(
            f"{plan.excluded_in_out_dir} file(s) inside the output folder were left out "
            "(earlier outputs are never inputs)",
            highlight=False,
        )
    if plan.stale_temp_removed:
        err_console.print(
            f"removed {plan.stale_temp_removed} temporary file(s) left by an interrupted run",
            highlight=False,
        )


def _render(summary: Summary, config: ColorizeConfig) -> None:
    from rich.table import Table

    by_note: dict[str, list[Path]] = {}
    for r in summary.results:
        for n in r.notes:
            by_note.setdefault(n, []).append(r.source)
    for note, paths in sorted(by_note.items()):
        warn_line(f"{_names(paths)}: {note}")
    s = config.settings
    if (s.clahe or s.denoise) and s.legacy == "auto":
        plain = [r.source for r in summary.results if r.status == "done" and r.legacy is None]
        if plain:
            warn_line(
                f"--clahe/--denoise did not touch {_names(plain)}: not detected as legacy "
                "scans (add --legacy to restore every input)"
            )
    colour = summary.skipped_for("colour")
    if colour:
        err_console.print(
            f"{len(colour)} colour photo{'s' if len(colour) != 1 else ''} left as "
            f"{'they are' if len(colour) != 1 else 'it is'} (--recolor colorizes them): "
            f"{escape(_names(colour, 20))}",
            highlight=False,
            soft_wrap=True,
        )
    if s.legacy == "auto":
        recolored = [r.source for r in summary.results if r.status == "done" and r.legacy is None]
        if recolored:
            err_console.print(
                f"note: {len(recolored)} colour photo(s) were recolorized from their lightness "
                f"(their own colours are not used): {escape(_names(recolored))}",
                highlight=False,
                soft_wrap=True,
            )
    if summary.ignored:
        err_console.print(
            f"{summary.ignored} other file{'s' if summary.ignored != 1 else ''} in the input "
            "folders ignored (not images by their extension)",
            highlight=False,
        )
    table = Table(title="colorize", show_header=True, header_style="bold")
    for col in ("done", "skipped", "failed", "legacy scans", "time", "images/s"):
        table.add_column(col, justify="right")
    rate = summary.done / summary.seconds if summary.seconds > 0 and summary.done else 0.0
    table.add_row(
        str(summary.done),
        str(summary.skipped),
        f"[red]{summary.failed}[/]" if summary.failed else "0",
        str(summary.legacy),
        f"{summary.seconds:.1f} s",
        f"{rate:.2f}" if summary.done else "-",
    )
    console.print(table)
    if summary.failed and not summary.done and not summary.skipped:
        error_line(f"nothing colorized: none of the {summary.failed} input file(s) could be read")

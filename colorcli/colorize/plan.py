"""Planning a colorize batch: what ``colorcli colorize`` was asked (``ColorizeConfig``), and for
each input where its output goes and whether it is done already (``plan_colorize`` -> ``Plan``
of ``Job``s). No pixels are read here, only file names and the records in existing outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from colorcli import fsutil, imageio
from colorcli.errors import EmptyDataset, UsageError
from colorcli.inference import ColorSettings

OutputFormat = Literal["JPEG", "PNG", "TIFF", "WEBP", "BMP"]


@dataclass(frozen=True)
class ColorizeConfig:
    """Everything ``colorcli colorize`` was asked to do."""

    inputs: tuple[str, ...]
    out_dir: Path = Path("colorized")
    model: str | None = None
    device: str | None = None
    batch_size: int = 4
    workers: int = 2
    format: OutputFormat | None = None
    quality: int = 95
    overwrite: bool = False
    compare: bool = False
    max_pixels: int | None = None
    half: bool | None = None
    settings: ColorSettings = field(default_factory=ColorSettings)
    #: "auto", "onnx" or "torch" (``Colorizer.load``).
    backend: str = "auto"
    #: ``(i, n)``: plan only the i-th of n interleaved parts of the file list (``parse_shard``).
    shard: tuple[int, int] | None = None
    #: Colorize photos that are already in colour too (from their L). Off: they are skipped
    #: (``FileResult.skip == "colour"``). ``settings.legacy == "on"`` treats every input as a
    #: monochrome scan, so nothing is skipped as colour then.
    recolor: bool = False

    def __post_init__(self) -> None:
        if not self.inputs:
            raise UsageError("give at least one input file, folder or glob pattern")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {self.workers}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality must be between 1 and 100, got {self.quality}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise UsageError(f"--max-pixels must be positive, got {self.max_pixels}")
        if self.shard is not None and not 0 <= self.shard[0] < self.shard[1]:
            raise UsageError(f"--shard I/N needs 0 <= I < N, got {self.shard[0]}/{self.shard[1]}")


Status = Literal["todo", "done", "skipped", "failed"]
#: Why a file was skipped: its output exists, made with the same model and settings ("exists")
#: or with others ("other-settings": kept, --overwrite redoes it); or it is a colour photo.
Skip = Literal["", "exists", "other-settings", "colour"]


@dataclass
class Job:
    """One input and where its output goes; ``status`` is decided by planning or by the run."""

    source: Path
    output: Path
    compare: Path | None = None
    status: Status = "todo"
    message: str = ""
    skip: Skip = ""
    record: str = ""  # what the output is made with (imageio.write_image's ``record``)


@dataclass
class Plan:
    """The jobs of a batch and what planning found (for the CLI to report)."""

    jobs: list[Job]
    out_dir: Path
    excluded_in_out_dir: int = 0
    stale_temp_removed: int = 0
    ignored: int = 0  # files in the input folders that are not images (by extension)

    @property
    def todo(self) -> list[Job]:
        return [j for j in self.jobs if j.status == "todo"]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def compare_path(output: Path) -> Path:
    """Where the side-by-side input|output image of ``output`` goes (``name.compare.jpg``)."""
    return output.with_name(f"{output.stem}.compare.jpg")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (``--shard``) -> ``(I, N)``; None stays None; UsageError otherwise."""
    if text is None:
        return None
    i, sep, n = text.partition("/")
    if not (sep and i.strip().isdigit() and n.strip().isdigit()):
        raise UsageError(f"--shard takes I/N (e.g. 0/4: the first of 4 parts), got {text!r}")
    return int(i), int(n)


def plan_colorize(config: ColorizeConfig) -> Plan:
    """Expand the inputs and decide each output path and whether it is skipped.

    Raises UsageError when an input is missing, OUT_DIR is a file or cannot be written, and
    EmptyDataset when the inputs hold no image file at all. Files inside OUT_DIR are left out
    (they are earlier outputs); outputs are never inputs. An existing output made with the same
    model and settings (its record, see ``output_record``) is skipped; one made otherwise is
    kept and skipped as "other-settings"; ``overwrite`` redoes both. Two inputs that would write
    the same output fail with a message. Leftover temporary files of a killed run are deleted.
    """
    out_dir = Path(config.out_dir)
    ignored: list[Path] = []
    found = imageio.find_images_with_roots(config.inputs, ignored)
    if not found:
        raise EmptyDataset(
            f"nothing to colorize: no image file in {', '.join(config.inputs)}"
            + (f" ({len(ignored)} other files ignored)" if ignored else "")
            + f"; images are {', '.join(sorted(imageio.IMAGE_EXTENSIONS))}"
        )
    out_resolved = out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        is_input = any(f.resolve() == out_resolved for f, _ in found)
        what = "one of the input files" if is_input else "an existing file"
        raise UsageError(f"output folder {out_dir} is {what}; choose a folder with -o")
    jobs: list[Job] = []
    owners: dict[Path, Path] = {}
    excluded = 0
    for src, rel in found:
        if _inside(src.resolve(), out_resolved):
            excluded += 1
            continue
        out = out_dir / rel
        if config.format is not None:
            current = imageio.format_for_extension(out.suffix)
            if current != config.format:
                out = out.with_suffix(imageio.FORMAT_EXTENSIONS[config.format])
        elif out.suffix.lower() in imageio.WRITE_INSTEAD:
            out = out.with_suffix(imageio.WRITE_INSTEAD[out.suffix.lower()])
        job = Job(src, out, compare_path(out) if config.compare else None)
        job.record = output_record(config, out)
        key = out.resolve()
        if key in owners:
            job.status = "failed"
            job.message = (
                f"{src}: its output {out} would also be written for {owners[key]}; "
                "colorize them separately or give their parent folder"
            )
        else:
            owners[key] = src
            done = out.exists() and (job.compare is None or job.compare.exists())
            if done and not config.overwrite:
                _skip_existing(job)
        jobs.append(job)
    if excluded and not jobs:
        raise UsageError(
            f"every input is inside the output folder {out_dir} (outputs would replace them); "
            "choose another folder with -o"
        )
    if config.shard is not None:  # every n-th file of the sorted list: the same split each run
        jobs = jobs[config.shard[0] :: config.shard[1]]
    if any(j.status == "todo" for j in jobs):
        fsutil.check_writable(out_dir)  # before the model loads: exit 2, one line
    removed = imageio.clean_temp_files(out_dir)
    return Plan(jobs, out_dir, excluded, removed, len(ignored))


def output_record(config: ColorizeConfig, output: Path) -> str:
    """What an output is made with, as compact JSON: the model (as given: a resolved local path,
    an ``hf://`` address or "default") and every setting that changes its pixels (quality only
    for JPEG and WebP). Stored in each output (``imageio.write_image``'s ``record``)."""
    s = config.settings
    model = config.model or "default"
    if model != "default" and "://" not in model:
        model = str(Path(model).resolve())
    fmt = config.format or imageio.format_for_extension(output.suffix)
    rec: dict[str, Any] = {
        "model": model,
        "size": s.size,
        "temperature": s.temperature,
        "saturation": s.saturation,
        "legacy": s.legacy,
        "clahe": s.clahe_clip if s.clahe else False,
        "denoise": s.denoise_strength if s.denoise else False,
    }
    if fmt in ("JPEG", "WEBP"):
        rec["quality"] = config.quality
    return json.dumps({"colorcli": 1, **rec}, sort_keys=True, separators=(",", ":"))


def _record_changes(old: str | None, new: str) -> str:
    """``"saturation 1.0 -> 1.5, model a.pt -> b.pt"``: how two records differ."""
    try:
        before = json.loads(old) if old else None
    except ValueError:
        before = None
    if not isinstance(before, dict):
        return "no colorcli settings recorded"
    after = json.loads(new)
    keys = [k for k in after if before.get(k) != after[k]] or ["version"]
    return ", ".join(f"{k} {before.get(k)} -> {after.get(k)}" for k in keys)


def _skip_existing(job: Job) -> None:
    recorded = imageio.read_record(job.output)
    job.status = "skipped"
    if recorded == job.record:
        job.skip = "exists"
        job.message = "output exists, made with the same settings (--overwrite redoes it)"
    else:
        job.skip = "other-settings"
        job.message = (
            f"output exists, made with other settings ({_record_changes(recorded, job.record)}): "
            "kept (--overwrite redoes it)"
        )


__all__ = [
    "ColorizeConfig",
    "Job",
    "OutputFormat",
    "Plan",
    "Skip",
    "Status",
    "compare_path",
    "output_record",
    "parse_shard",
    "plan_colorize",
]

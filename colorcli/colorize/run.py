"""Running a planned colorize batch (``colorize_jobs``), or the whole batch in one call
(``colorize_paths``).

Images are decoded and prepared (``Colorizer.prepare``) on a thread pool while the model runs
on the previous batch, and encoded/written on another pool; the queues are bounded so memory
does not grow with the batch. One ``FileResult`` per input, never an exception for a bad file;
a colour photo is kept as it is unless ``recolor`` (``COLOUR_MESSAGE``). Each output is written
like its input (format, EXIF/ICC, alpha, bit depth; atomically) with its record
(``plan.output_record``), and with ``compare`` a side-by-side ``name.compare.jpg``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from colorcli import imageio
from colorcli.color.legacy import detect_legacy, thumbnail
from colorcli.colorize.plan import ColorizeConfig, Job, Skip, Status, plan_colorize
from colorcli.errors import ColorcliError
from colorcli.inference import COMPARE_MAX_SIDE, Colorizer, Prepared, predict_by_shape


@dataclass
class FileResult:
    """What happened to one input."""

    source: Path
    output: Path
    status: Status
    message: str = ""
    seconds: float = 0.0
    legacy: str | None = None
    notes: list[str] = field(default_factory=list)
    exception: BaseException | None = field(default=None, repr=False)  # for --debug
    skip: Skip = ""


class _ColourPhoto(Exception):
    """Raised by a reader thread for a colour photo that the batch keeps as it is."""


COLOUR_MESSAGE = "already in colour: kept as it is (--recolor colorizes it from its lightness)"


def _prepare_job(colorizer: Colorizer, job: Job, config: ColorizeConfig) -> Prepared:
    decoded = imageio.read_image(job.source, config.max_pixels)
    keep_colour = not config.recolor and config.settings.legacy != "on"
    if keep_colour and detect_legacy(decoded.pixels) is None:
        raise _ColourPhoto(job.source)
    return colorizer.prepare(decoded, compare=config.compare)


def _write_compare(path: Path, left: np.ndarray, rgb: np.ndarray) -> None:
    right = imageio.to_uint8(thumbnail(rgb, COMPARE_MAX_SIDE // 2))
    if right.shape[0] != left.shape[0]:
        right = cv2.resize(right, (left.shape[1], left.shape[0]), interpolation=cv2.INTER_AREA)
    imageio.write_image(path, np.hstack([left, right]), format="JPEG", quality=90)


def _finish_job(
    colorizer: Colorizer,
    job: Job,
    prepared: Prepared,
    ab_small: np.ndarray,
    config: ColorizeConfig,
    started: float,
) -> FileResult:
    rgb = colorizer.finish(prepared, ab_small)
    dec = prepared.decoded
    fmt = config.format or imageio.format_for_extension(job.output.suffix) or dec.format
    job.output.parent.mkdir(parents=True, exist_ok=True)
    notes = list(dec.notes)
    if job.output.suffix.lower() != job.source.suffix.lower() and config.format is None:
        notes.append(f"{job.source.suffix.lower()} input written as {job.output.suffix.lower()}")
    notes += imageio.write_image(
        job.output,
        rgb,
        alpha=dec.alpha,
        format=fmt,
        quality=config.quality,
        exif=dec.exif,
        icc_profile=dec.icc_profile,
        save_options=dec.save_options,
        record=job.record or None,
    )
    if job.compare is not None and prepared.compare_left is not None:
        _write_compare(job.compare, prepared.compare_left, rgb)
    return FileResult(
        job.source,
        job.output,
        "done",
        seconds=time.perf_counter() - started,
        legacy=prepared.legacy,
        notes=notes,
    )


def _failure(job: Job, exc: BaseException) -> FileResult:
    if isinstance(exc, ColorcliError):
        msg = str(exc)
        if str(job.source) not in msg:
            msg = f"{job.source}: {msg}"
    elif isinstance(exc, OSError):
        msg = f"{job.source}: cannot write {job.output} ({exc.strerror or exc})"
    else:
        msg = f"{job.source}: {type(exc).__name__}: {exc}"
    return FileResult(job.source, job.output, "failed", msg, exception=exc)


_POOL_LOCK = threading.Lock()
_POOL_USERS = 0
_POOL_SAVED = 0


@contextmanager
def _opencv_pool_off() -> Iterator[None]:
    """OpenCV's own thread pool off while any batch runs.

    The batch's reader and writer pools are the parallelism: OpenCV's pool inside each call on
    top of them doubles the CPU time of the many small calls of the colour conversion for the
    same wall time (lab_to_rgb_image on 1024x768: 25 -> 9 ms CPU), CPU that the model needs.
    The setting is process-wide, so batches running at the same time (threads of one program)
    share one count: the first turns the pool off, the last to end restores the caller's.
    """
    global _POOL_USERS, _POOL_SAVED
    with _POOL_LOCK:
        if _POOL_USERS == 0:
            _POOL_SAVED = cv2.getNumThreads()
            cv2.setNumThreads(0)
        _POOL_USERS += 1
    try:
        yield
    finally:
        with _POOL_LOCK:
            _POOL_USERS -= 1
            if _POOL_USERS == 0:
                cv2.setNumThreads(_POOL_SAVED)


def colorize_jobs(
    jobs: Sequence[Job], colorizer: Colorizer, config: ColorizeConfig
) -> Iterator[FileResult]:
    """Run the jobs; yield one FileResult per job (planned skips and failures first).

    Decoding/preparation runs on ``config.workers`` threads at most ``2 x batch_size`` images
    ahead of the model; finishing/encoding/writing runs on another ``config.workers`` threads
    with at most ``2 x workers`` images queued. Bad files become "failed" results; errors of
    the model itself (e.g. out of memory) propagate.
    """
    for job in jobs:
        if job.status != "todo":
            yield FileResult(job.source, job.output, job.status, job.message, skip=job.skip)
    todo = iter([j for j in jobs if j.status == "todo"])
    readers = ThreadPoolExecutor(config.workers, thread_name_prefix="colorcli-read")
    writers = ThreadPoolExecutor(config.workers, thread_name_prefix="colorcli-write")
    reads: deque[tuple[Job, float, Future[Prepared]]] = deque()
    writes: dict[Future[FileResult], Job] = {}

    def fill() -> None:
        while len(reads) < 2 * config.batch_size:
            job = next(todo, None)
            if job is None:
                return
            fut = readers.submit(_prepare_job, colorizer, job, config)
            reads.append((job, time.perf_counter(), fut))

    def collect(done: set[Future[FileResult]]) -> Iterator[FileResult]:
        for fut in done:
            job = writes.pop(fut)
            exc = fut.exception()
            yield _failure(job, exc) if exc is not None else fut.result()

    with _opencv_pool_off():
        try:
            fill()
            while reads:
                batch: list[tuple[Job, float, Prepared]] = []
                while reads and len(batch) < config.batch_size:
                    job, started, fut = reads.popleft()
                    exc = fut.exception()
                    if isinstance(exc, _ColourPhoto):
                        yield FileResult(
                            job.source, job.output, "skipped", COLOUR_MESSAGE, skip="colour"
                        )
                    elif exc is not None:
                        yield _failure(job, exc)
                    else:
                        batch.append((job, started, fut.result()))
                fill()  # the next batch decodes while the model runs on this one
                if not batch:
                    continue
                ab = predict_by_shape(colorizer, [p.l_small for _, _, p in batch])
                for (job, started, prep), ab_i in zip(batch, ab, strict=True):
                    while len(writes) >= 2 * config.workers:
                        done, _ = wait(list(writes), return_when=FIRST_COMPLETED)
                        yield from collect(set(done))
                    fut_w = writers.submit(_finish_job, colorizer, job, prep, ab_i, config, started)
                    writes[fut_w] = job
                del batch
                yield from collect({f for f in writes if f.done()})
            while writes:
                done, _ = wait(list(writes), return_when=FIRST_COMPLETED)
                yield from collect(set(done))
        finally:
            readers.shutdown(wait=True, cancel_futures=True)
            writers.shutdown(wait=True, cancel_futures=True)


@dataclass
class Summary:
    """Counts and time of a finished batch."""

    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    legacy: int = 0  # done images treated as legacy scans (grayscale, tinted or forced)
    results: list[FileResult] = field(default_factory=list)
    ignored: int = 0  # files in the input folders that are not images (Plan.ignored)

    def skipped_for(self, reason: Skip) -> list[Path]:
        """The inputs skipped for ``reason`` ("colour": the colour photos kept as they are)."""
        return [r.source for r in self.results if r.status == "skipped" and r.skip == reason]

    def add(self, result: FileResult) -> None:
        self.results.append(result)
        if result.status == "done":
            self.done += 1
            self.legacy += result.legacy is not None
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1


def colorize_paths(
    config: ColorizeConfig,
    colorizer: Colorizer | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> Summary:
    """The whole batch in one call (plan, load the model if needed, run); for Python users.

    The CLI uses ``plan_colorize`` and ``colorize_jobs`` directly to draw progress.
    """
    start = time.perf_counter()
    plan = plan_colorize(config)
    summary = Summary(ignored=plan.ignored)
    if plan.todo and colorizer is None:
        colorizer = Colorizer.load(
            config.model, config.device, config.settings, half=config.half, backend=config.backend
        )
    if colorizer is None:
        results: Iterator[FileResult] = (
            FileResult(j.source, j.output, j.status, j.message, skip=j.skip) for j in plan.jobs
        )
    else:
        results = colorize_jobs(plan.jobs, colorizer, config)
    for r in results:
        summary.add(r)
        if on_result is not None:
            on_result(r)
    summary.seconds = time.perf_counter() - start
    return summary


__all__ = [
    "COLOUR_MESSAGE",
    "FileResult",
    "Summary",
    "colorize_jobs",
    "colorize_paths",
]

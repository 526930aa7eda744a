"""Image folders -> Lab pixels: streaming decode, the ab prior of a folder, rebalancing files.

Everything here reads files; the colour science it applies is in ``colorcli.color``. Unreadable
files never stop a pass: they are collected as ``(path, reason)`` and skipped. Progress is
reported through plain callbacks, ``on_image(done, total, path)``. The build-bins and rebalance
workflows built on these passes are ``colorcli.gamut``.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from colorcli.color.constants import GRAY_THRESHOLD
from colorcli.errors import BadImage, BadWeights, EmptyDataset
from colorcli.events import OnImage
from colorcli.fsutil import atomic_open
from colorcli.imageio import find_images, is_image_path, read_rgb

Assignment = str  # a value of choices.Assignment

DEFAULT_MAX_SIDE = 256
REBALANCE_KIND = "colorcli-rebalance"


# --- discovery and streaming -----------------------------------------------------------------


def list_folder(folder: str | Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files below ``folder`` (recursive, sorted) and the other visible files, skipped.

    Returns ``(images, skipped)`` where ``skipped`` holds ``(path, "not an image file ...")`` for
    every non-hidden file without an image extension, so that callers can report them. A path that
    is a file (or glob) is expanded by ``colorcli.imageio.find_images``.
    """
    folder = Path(folder)
    images = find_images([folder])
    skipped: list[tuple[Path, str]] = []
    if folder.is_dir():
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder)
            if any(part.startswith(".") for part in rel.parts) or not p.is_file():
                continue
            if not is_image_path(p):
                skipped.append((p, f"not an image file (extension {p.suffix or 'none'!r})"))
    return images, skipped


@dataclass(frozen=True)
class Decoded:
    """One streamed file: ``rgb`` ``(H, W, 3)`` float32 in [0, 1], or ``error`` when unreadable.

    ``seconds`` is the time spent decoding it (in whichever thread did the work).
    """

    path: Path
    rgb: np.ndarray | None
    error: str | None
    seconds: float


def _decode(path: Path, max_side: int | None) -> Decoded:
    t0 = time.perf_counter()
    try:
        rgb = read_rgb(path, max_side)
    except BadImage as exc:
        return Decoded(path, None, str(exc), time.perf_counter() - t0)
    return Decoded(path, rgb, None, time.perf_counter() - t0)


T = TypeVar("T")
R = TypeVar("R")


def map_ordered(fn: Callable[[T], R], items: Iterable[T], workers: int = 1) -> Iterator[R]:
    """``fn`` over ``items`` in a thread pool, results in input order (``map`` when workers <= 1).

    At most ``4 * workers`` results wait in memory. Threads help when ``fn`` releases the GIL
    (Pillow decoding, torch ops); ``fn`` should not raise (return errors as values).
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="colorcli-data") as pool:
        pending: deque[Future[R]] = deque()
        it = iter(items)
        for item in it:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 4 * workers:
                break
        while pending:
            result = pending.popleft().result()
            for item in it:
                pending.append(pool.submit(fn, item))
                break
            yield result


def default_workers(cap: int = 8) -> int:
    """Threads for streaming passes: the CPUs this process may use, at most ``cap``."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(cap, n))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous setting.

    Per-image tensors are small: splitting each op over threads costs more than it saves (and
    oversubscribes a busy machine badly), so the streaming passes use 1 and parallelise over
    images instead.
    """
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def iter_decoded(
    files: Sequence[Path], max_side: int | None = DEFAULT_MAX_SIDE, workers: int = 1
) -> Iterator[Decoded]:
    """Decode ``files`` in order, yielding one ``Decoded`` per file (errors included, never raised).

    With ``workers > 1`` decoding runs in a thread pool (Pillow releases the GIL while decoding);
    results still come in input order and at most ``4 * workers`` decoded images wait in memory.
    """
    return map_ordered(lambda p: _decode(Path(p), max_side), files, workers)


def rgb_to_ab(rgb: np.ndarray) -> Any:
    """``(H, W, 3)`` sRGB float in [0, 1] -> ab torch tensor ``(1, 2, H, W)`` float32, Lab units."""
    import torch

    from colorcli.color.lab import rgb_to_lab

    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    return rgb_to_lab(x.unsqueeze(0))[:, 1:]


def is_grayscale_ab(ab: Any, threshold: float = GRAY_THRESHOLD) -> bool:
    """True when no pixel of ``ab`` (tensor or array, any shape) has |a| or |b| > ``threshold``."""
    return bool(abs(ab).max() <= threshold)


# --- the ab prior of a folder ----------------------------------------------------------------


@dataclass
class PriorEstimate:
    """Bin counts of the colour pixels of a set of images.

    ``counts`` ``(Q,)`` float64: pixels per bin (hard) or summed soft weights (soft); both sum to
    ``n_pixels``. ``n_images`` counts readable images (grayscale included), ``n_gray`` the
    grayscale ones that were skipped, ``n_pixels`` the pixels counted, ``bad`` the unreadable files
    with the reason. ``decode_s`` is the total decode time (summed over threads), ``compute_s``
    the time spent converting and counting.
    """

    counts: np.ndarray
    n_images: int = 0
    n_gray: int = 0
    n_pixels: int = 0
    bad: list[tuple[Path, str]] = field(default_factory=list)
    decode_s: float = 0.0
    compute_s: float = 0.0

    @property
    def n_colour(self) -> int:
        """Images whose pixels were counted."""
        return self.n_images - self.n_gray


def _bin_counts(ab: Any, bins: np.ndarray, assignment: Assignment, k: int, sigma: float) -> Any:
    """Per-bin counts ``(Q,)`` float64 tensor of the pixels of ab ``(1, 2, H, W)``."""
    import torch

    from colorcli.color import encode

    q = len(bins)
    if assignment == "hard":
        idx = encode.nearest_bin(ab, bins)
        return torch.bincount(idx.reshape(-1), minlength=q).to(torch.float64)
    if assignment == "soft":
        index, weight = encode.soft_encode(ab, bins, k=k, sigma=sigma)
        return torch.bincount(
            index.reshape(-1), weights=weight.reshape(-1).to(torch.float64), minlength=q
        )
    raise ValueError(f"unknown assignment {assignment!r} (hard, soft)")


@dataclass(frozen=True)
class _Counted:
    """One file of a counting pass: ``counts`` is None for a bad or grayscale file."""

    path: Path
    counts: Any
    n_pixels: int
    gray: bool
    error: str | None
    decode_s: float
    compute_s: float


def _count_pass(
    files: Sequence[Path],
    count: Callable[[Any], Any],
    max_side: int | None,
    workers: int,
    on_image: OnImage | None,
) -> Iterator[_Counted]:
    """Decode, convert and ``count(ab)`` each file (in worker threads), yielding in input order."""

    def one(path: Path) -> _Counted:
        item = _decode(Path(path), max_side)
        if item.rgb is None:
            return _Counted(item.path, None, 0, False, item.error or "unreadable", item.seconds, 0)
        t0 = time.perf_counter()
        ab = rgb_to_ab(item.rgb)
        gray = is_grayscale_ab(ab)
        counts = None if gray else count(ab)
        n = 0 if gray else int(ab.shape[-1] * ab.shape[-2])
        return _Counted(item.path, counts, n, gray, None, item.seconds, time.perf_counter() - t0)

    total = len(files)
    with torch_threads(1):
        for done, res in enumerate(map_ordered(one, files, workers), start=1):
            yield res
            if on_image is not None:
                on_image(done, total, res.path)


def estimate_prior(
    files: Sequence[Path],
    bins: np.ndarray,
    *,
    max_side: int | None = DEFAULT_MAX_SIDE,
    assignment: Assignment = "hard",
    workers: int = 1,
    on_image: OnImage | None = None,
    k: int = 5,
    sigma: float = 5.0,
) -> PriorEstimate:
    """Count the ab pixels of ``files`` over ``bins`` ``(Q, 2)``.

    Each file is read with ``read_rgb(path, max_side)`` (longer side shrunk to ``max_side``),
    converted to Lab; grayscale images (no pixel with |a| or |b| > 5) are counted and skipped.
    ``assignment="hard"``: each pixel adds 1 to its nearest bin; ``"soft"``: it adds its soft
    encoding weights (``k`` nearest bins, Gaussian ``sigma``) to those bins. Unreadable files go to
    ``bad``. ``workers > 1`` processes images in that many threads (results are summed in input
    order, so they do not depend on ``workers``). ``on_image(done, total, path)`` is called after
    each file.
    """
    if assignment not in ("hard", "soft"):
        raise ValueError(f"unknown assignment {assignment!r} (hard, soft)")
    est = PriorEstimate(counts=np.zeros(len(bins), dtype=np.float64))
    acc = None
    for res in _count_pass(
        files,
        lambda ab: _bin_counts(ab, bins, assignment, k, sigma),
        max_side,
        workers,
        on_image,
    ):
        est.decode_s += res.decode_s
        est.compute_s += res.compute_s
        if res.error is not None:
            est.bad.append((res.path, res.error))
            continue
        est.n_images += 1
        if res.gray:
            est.n_gray += 1
        else:
            acc = res.counts if acc is None else acc + res.counts
            est.n_pixels += res.n_pixels
    if acc is not None:
        est.counts = acc.numpy().astype(np.float64)
    return est


@dataclass
class AbHistogram:
    """Colour pixels of a set of images counted per cell of the full ab plane.

    ``counts`` ``(n, n)`` int64 laid out as ``colorcli.color.bins.histogram_ab_samples`` (a on axis
    0, b on axis 1, cells centred on ``ab_axis(grid)``).
    """

    counts: np.ndarray
    grid: float
    n_images: int = 0
    n_gray: int = 0
    n_pixels: int = 0
    bad: list[tuple[Path, str]] = field(default_factory=list)


def histogram_ab(
    files: Sequence[Path],
    grid: float,
    *,
    max_side: int | None = DEFAULT_MAX_SIDE,
    workers: int = 1,
    on_image: OnImage | None = None,
) -> AbHistogram:
    """Count the colour pixels of ``files`` per ab grid cell (grayscale images skipped, counted)."""
    from colorcli.color.bins import ab_axis, histogram_ab_samples

    n = len(ab_axis(grid))
    hist = AbHistogram(counts=np.zeros((n, n), dtype=np.int64), grid=float(grid))

    def count(ab: Any) -> np.ndarray:
        return histogram_ab_samples(ab[0].reshape(2, -1).T.numpy(), grid)

    for res in _count_pass(files, count, max_side, workers, on_image):
        if res.error is not None:
            hist.bad.append((res.path, res.error))
            continue
        hist.n_images += 1
        if res.gray:
            hist.n_gray += 1
        else:
            hist.counts += res.counts
            hist.n_pixels += res.n_pixels
    return hist


# --- rebalancing weights ---------------------------------------------------------------------


def compute_rebalance(
    estimate: PriorEstimate,
    bins: np.ndarray,
    lam: float = 0.5,
    sigma: float = 5.0,
    q_mode: str = "all",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts -> ``(prior, prior_smoothed, weights)``, each ``(Q,)`` float64.

    prior = counts / sum; prior_smoothed = Gaussian (``sigma`` ab units) on the ab grid,
    renormalised; weights = 1 / ((1 - lam) p~ + lam / Q) with E_p~[w] = 1 (see
    ``colorcli.color.prior``).
    Raises EmptyDataset when no colour pixel was counted.
    """
    from colorcli.color.prior import normalize_counts, rebalance_weights, smooth_prior

    if len(estimate.counts) != len(bins):
        raise ValueError(f"counts have {len(estimate.counts)} bins, bins have {len(bins)}")
    if estimate.n_pixels == 0 or float(estimate.counts.sum()) <= 0:
        raise EmptyDataset("no colour pixels were counted: every image was grayscale or bad")
    prior = normalize_counts(estimate.counts)
    smoothed = smooth_prior(prior, bins, sigma)
    weights = rebalance_weights(smoothed, lam, q_mode)
    return prior, smoothed, weights


@dataclass(frozen=True)
class Rebalance:
    """A rebalancing file: ``bins`` ``(Q, 2)``, ``prior``, ``prior_smoothed``, ``weights`` ``(Q,)``
    float64, and ``settings`` (how it was made: lambda, sigma, q_mode, assignment, ...)."""

    bins: np.ndarray
    prior: np.ndarray
    prior_smoothed: np.ndarray
    weights: np.ndarray
    settings: dict[str, Any]


def rebalance_path(path: str | Path) -> Path:
    """``path`` with a ``.npz`` suffix added when it has none (what ``save_rebalance`` writes)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def save_rebalance(
    path: str | Path,
    *,
    bins: np.ndarray,
    prior: np.ndarray,
    prior_smoothed: np.ndarray,
    weights: np.ndarray,
    settings: dict[str, Any],
) -> Path:
    """Write a rebalancing ``.npz`` atomically (temp file + os.replace); returns the final path.

    Only numeric arrays and the settings as a JSON string are stored, so the file loads without
    pickle. ``.npz`` is appended to ``path`` when missing.
    """
    q = len(bins)
    for name, arr in (("prior", prior), ("prior_smoothed", prior_smoothed), ("weights", weights)):
        if np.shape(arr) != (q,):
            raise ValueError(f"{name} must have shape ({q},), got {np.shape(arr)}")
    path = rebalance_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "kind": np.array(REBALANCE_KIND),
        "bins": np.asarray(bins, dtype=np.float64),
        "prior": np.asarray(prior, dtype=np.float64),
        "prior_smoothed": np.asarray(prior_smoothed, dtype=np.float64),
        "weights": np.asarray(weights, dtype=np.float64),
        "settings": np.array(json.dumps(settings, sort_keys=True, default=str)),
    }
    with atomic_open(path) as fh:
        np.savez(fh, **payload)  # type: ignore[arg-type]
    return path


def load_rebalance(path: str | Path) -> Rebalance:
    """Read a file written by ``save_rebalance`` (never unpickles); BadWeights names the file."""
    from colorcli.color.bins import validate_bins

    path = Path(path)
    keys = ("bins", "prior", "prior_smoothed", "weights")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise BadWeights(f"{path}: a single array, not a rebalancing .npz file")
        with loaded as npz:
            missing = {"kind", *keys, "settings"} - set(npz.files)
            if missing:
                raise BadWeights(
                    f"{path}: not a rebalancing file (missing {', '.join(sorted(missing))})"
                )
            if str(npz["kind"]) != REBALANCE_KIND:
                raise BadWeights(f"{path}: not a rebalancing file (kind {str(npz['kind'])!r})")
            arrays = {k: np.asarray(npz[k], dtype=np.float64) for k in keys}
            settings = json.loads(str(npz["settings"]))
    except FileNotFoundError as exc:
        raise BadWeights(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise BadWeights(f"{path}: is a folder, not a rebalancing file") from exc
    except BadWeights:
        raise
    except (ValueError, OSError, EOFError, KeyError, TypeError) as exc:
        raise BadWeights(f"{path}: not a readable rebalancing .npz file ({exc})") from exc
    except Exception as exc:  # zipfile.BadZipFile and friends from a corrupt archive
        raise BadWeights(f"{path}: corrupt rebalancing file ({type(exc).__name__}: {exc})") from exc
    bins = arrays["bins"]
    try:
        validate_bins(bins)
    except ValueError as exc:
        raise BadWeights(f"{path}: {exc}") from exc
    q = len(bins)
    for name in ("prior", "prior_smoothed", "weights"):
        if arrays[name].shape != (q,):
            raise BadWeights(f"{path}: {name} has shape {arrays[name].shape}, expected ({q},)")
    if not isinstance(settings, dict):
        raise BadWeights(f"{path}: settings are not a JSON object")
    return Rebalance(
        bins=bins,
        prior=arrays["prior"],
        prior_smoothed=arrays["prior_smoothed"],
        weights=arrays["weights"],
        settings=settings,
    )

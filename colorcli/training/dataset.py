"""Training data: random crops of a folder of photos, and a deterministic, resumable batch order.

Each sample is a ``(3, crop, crop)`` uint8 RGB tensor (cheap to move between worker processes);
the Lab conversion happens in batches on the training device (``loop.to_lab``).

Scale and crop (documented choice, close to the reference pipeline that resized ImageNet to 256
and took random 176 crops): for training, the image is resized so that its *short side* is a
random size in ``[crop, round(crop * 256 / 176)]`` (so a crop covers 69-100 % of the short
side; small images are upscaled the same way, so any image yields a full crop), then a random
``crop x crop`` window is taken and flipped horizontally with probability 1/2. JPEGs are decoded
at a reduced scale (Pillow draft mode) when that still covers the target size. For validation,
the short side is resized to ``crop`` and the centre window taken, no flip.

Randomness never depends on worker processes or on the global RNG: the sample of file ``i`` in
epoch ``e`` draws from ``numpy.random.default_rng([seed, e, i])``, and the batch order of epoch
``e`` is a permutation drawn from ``(seed, e)``. So a run resumed at step ``s`` sees exactly the
batches it would have seen (``BatchOrder.position``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from colorcli.errors import BadImage
from colorcli.imageio import open_guarded, open_image, pil_to_rgb_float

SCALE_JITTER = 256 / 176
"""Largest short side of the resized image, as a multiple of the crop size."""

Sample = tuple[torch.Tensor, bool, int, str]
"""(rgb uint8 (3, crop, crop), readable, file index, error message or '')."""


def _load_rgb8(path: Path, short_side: int) -> Image.Image:
    """Decode ``path`` as an RGB Pillow image whose short side is at least ``short_side`` when
    the file allows (JPEG draft scaling); EXIF orientation applied. BadImage on failure."""
    try:
        with open_guarded(path) as raw:  # the decompression-bomb guard first
            w, h = raw.size
            if raw.format == "JPEG" and min(w, h) > short_side:
                s = short_side / min(w, h)
                raw.draft("RGB", (math.ceil(w * s), math.ceil(h * s)))
            raw.load()
            img = ImageOps.exif_transpose(raw)
    except Exception:
        img = open_image(path)  # raises BadImage with a precise message
    if img.mode in ("RGB", "L", "P", "RGBA", "LA", "CMYK", "YCbCr", "PA", "La", "1"):
        return img.convert("RGB") if img.mode != "RGB" else img
    arr = (pil_to_rgb_float(img) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def load_crop(
    path: Path, crop: int, rng: np.random.Generator | None, *, max_scale: float = SCALE_JITTER
) -> np.ndarray:
    """One ``(crop, crop, 3)`` uint8 crop of ``path``: random scale, position and flip with
    ``rng``; centre crop at short side ``crop`` when ``rng`` is None (validation)."""
    top_short = max(crop, round(crop * max_scale))
    short = crop if rng is None else int(rng.integers(crop, top_short + 1))
    try:
        img = _load_rgb8(path, short)
        w, h = img.size
        s = short / min(w, h)
        size = (max(crop, round(w * s)), max(crop, round(h * s)))
        if size != (w, h):
            img = img.resize(size, Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
    except BadImage:
        raise
    except Exception as exc:  # decoder errors that surface only at resize time
        raise BadImage(f"{path}: cannot decode image ({exc})") from exc
    h, w = arr.shape[:2]
    if rng is None:
        top, left = (h - crop) // 2, (w - crop) // 2
        flip = False
    else:
        top = int(rng.integers(0, h - crop + 1))
        left = int(rng.integers(0, w - crop + 1))
        flip = bool(rng.integers(0, 2))
    out = arr[top : top + crop, left : left + crop]
    if flip:
        out = out[:, ::-1]
    return np.array(out, dtype=np.uint8, copy=True)


class PhotoCrops(torch.utils.data.Dataset[Sample]):
    """Crops of ``files``. Indexed by ``(file index, epoch)`` keys (see ``BatchOrder``).

    An unreadable file gives a zero image with ``readable=False`` and the error message, so the
    training loop can drop it from the loss and report it once; it never stops a run.
    """

    def __init__(self, files: Sequence[Path], crop: int, *, train: bool, seed: int) -> None:
        self.files = list(files)
        self.crop = int(crop)
        self.train = bool(train)
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> Sample:
        index, epoch = key
        rng = np.random.default_rng([self.seed, epoch, index]) if self.train else None
        try:
            arr = load_crop(self.files[index], self.crop, rng)
        except BadImage as exc:
            return torch.zeros(3, self.crop, self.crop, dtype=torch.uint8), False, index, str(exc)
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous(), True, index, ""


@dataclass(frozen=True)
class BatchOrder:
    """Deterministic sharded batch order over ``n`` files: an infinite sequence of epochs.

    Epoch ``e`` is the permutation of ``range(n)`` drawn from ``(seed, e)``, repeated when there
    are fewer files than one global batch, cut into ``batches_per_epoch`` global batches of
    ``batch_size * world_size`` (the tail that does not fill a batch is dropped). Rank ``r`` takes
    the ``r``-th slice of ``batch_size`` keys of each global batch, so ranks see disjoint files and
    together exactly what one process with ``batch_size * world_size`` would see.
    """

    n: int
    batch_size: int
    seed: int
    rank: int = 0
    world_size: int = 1
    shuffle: bool = True

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def batches_per_epoch(self) -> int:
        return max(1, self.n // self.global_batch)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within the epoch) of the batch consumed by step ``step`` (0-based)."""
        return divmod(step, self.batches_per_epoch)

    def epoch_keys(self, epoch: int) -> np.ndarray:
        """This rank's keys of ``epoch``: ``(batches_per_epoch, batch_size)`` file indices."""
        if self.shuffle:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        else:
            perm = np.arange(self.n)
        need = self.batches_per_epoch * self.global_batch
        if need > self.n:
            perm = np.tile(perm, math.ceil(need / self.n))
        glob = perm[:need].reshape(self.batches_per_epoch, self.world_size, self.batch_size)
        return glob[:, self.rank, :]

    def batches(self, start_step: int = 0) -> Iterator[list[tuple[int, int]]]:
        """Infinite iterator of batches of ``(file index, epoch)`` keys from ``start_step`` on."""
        epoch, first = self.position(start_step)
        while True:
            keys = self.epoch_keys(epoch)
            for b in range(first, len(keys)):
                yield [(int(i), epoch) for i in keys[b]]
            epoch, first = epoch + 1, 0


class _BatchSampler:
    """Wraps ``BatchOrder.batches`` for ``DataLoader(batch_sampler=...)``."""

    def __init__(self, order: BatchOrder, start_step: int) -> None:
        self.order = order
        self.start_step = start_step

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return self.order.batches(self.start_step)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def make_loader(
    dataset: PhotoCrops, order: BatchOrder, start_step: int, *, workers: int, pin_memory: bool
) -> torch.utils.data.DataLoader[Sample]:
    """An infinite DataLoader yielding ``(rgb uint8 (B,3,c,c), readable (B,), index (B,),
    errors list[str])`` batches in ``order`` from ``start_step`` on."""
    return make_keyed_loader(
        dataset, _BatchSampler(order, start_step), workers=workers, pin_memory=pin_memory
    )


def make_keyed_loader(
    dataset: PhotoCrops,
    batches: Iterable[list[tuple[int, int]]],
    *,
    workers: int,
    pin_memory: bool,
) -> torch.utils.data.DataLoader[Sample]:
    """A DataLoader yielding the batches of ``(file index, epoch)`` keys in ``batches`` (finite
    or not), in the same form as ``make_loader``."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if workers > 0 else None,
        prefetch_factor=4 if workers > 0 else None,
    )


def split_files(
    files: Sequence[Path], val_split: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split: a ``val_split`` share (at least one file when
    ``val_split > 0`` and there are two or more files) picked by a permutation from ``seed``."""
    files = list(files)
    if val_split <= 0 or len(files) < 2:
        return files, []
    n_val = min(len(files) - 1, max(1, round(len(files) * val_split)))
    perm = np.random.default_rng([seed, 7919]).permutation(len(files))
    val_idx = set(perm[:n_val].tolist())
    train = [f for i, f in enumerate(files) if i not in val_idx]
    val = [f for i, f in enumerate(files) if i in val_idx]
    return train, val

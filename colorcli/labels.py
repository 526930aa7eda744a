"""Labelled photo folders for the semantic-interpretability metric, and the held-out fifth of
``imagenet-sample``.

A labelled folder holds photos whose file names start with an ImageNet synset id and an
underscore: ``n01440764_tench.JPEG`` (the ``imagenet-sample`` convention; anything may follow the
underscore). The class index of a synset is its position among the 1000 ImageNet-1k synsets
sorted by id, which is the order of the classifier's outputs; the synsets are those of the
``imagenet-sample`` folder, or any list of 1000 sorted ids.

Held-out split: the classes whose index ``i`` in that sorted order has ``i % 5 == 4`` (every
fifth class by sorted synset id: 200 classes, ``n01494475`` first) are never used to train a
shipped model, so the interpretability metric has photos no default has seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

HOLDOUT_EVERY = 5
HOLDOUT_REMAINDER = 4
_SYNSET = re.compile(r"(n\d{8})_")


def synset_of(path: str | Path) -> str | None:
    """The synset id at the start of a file name (``n01440764``), or None."""
    m = _SYNSET.match(Path(path).name)
    return m.group(1) if m else None


def class_index(synsets: Iterable[str]) -> dict[str, int]:
    """Synset id -> class index (its position in sorted order)."""
    return {s: i for i, s in enumerate(sorted(set(synsets)))}


def is_held_out(index: int) -> bool:
    """True for the classes kept out of every shipped model's training."""
    return index % HOLDOUT_EVERY == HOLDOUT_REMAINDER


def split_files(files: Sequence[Path], index: dict[str, int]) -> tuple[list[Path], list[Path]]:
    """(training files, held-out files) of a labelled folder's photos; unlabelled files go to
    training."""
    train: list[Path] = []
    held: list[Path] = []
    for f in files:
        s = synset_of(f)
        (held if s is not None and s in index and is_held_out(index[s]) else train).append(f)
    return train, held

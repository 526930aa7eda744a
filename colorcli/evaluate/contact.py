"""Contact-sheet material: thumbnails (gray input, prediction, truth) of each row's best and worst
images by a score, kept while the run goes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from colorcli.evaluate.samples import Sample, join_rgb

THUMB = 128


@dataclass
class ContactEntry:
    score: float
    path: Path
    tiles: tuple[np.ndarray, np.ndarray, np.ndarray]  # gray input, prediction, truth: uint8 RGB


class ContactKeeper:
    """Keeps thumbnails of the best (unless not ``keep_best``) and worst ``k`` images of each
    model by a score (plain AuC, or realism)."""

    def __init__(self, k: int, keep_best: bool = True):
        self.k = k
        self.keep_best = keep_best
        self.best: dict[str, list[ContactEntry]] = {}
        self.worst: dict[str, list[ContactEntry]] = {}
        self._gray_tiles: dict[int, np.ndarray] = {}  # the current image's input thumbnail

    @staticmethod
    def tile(rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` float in [0, 1] -> ``(THUMB, THUMB, 3)`` uint8."""
        small = cv2.resize(rgb.astype(np.float32), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
        return np.asarray(np.clip(small * 255.0 + 0.5, 0, 255), dtype=np.uint8)

    def _entry(
        self, score: float, sample: Sample, pred: torch.Tensor, pred_rgb: np.ndarray | None
    ) -> ContactEntry:
        if sample.index not in self._gray_tiles:
            self._gray_tiles = {sample.index: self.tile(join_rgb(sample.L, torch.zeros_like(pred)))}
        if pred_rgb is None:
            pred_rgb = join_rgb(sample.L, pred)
        tiles = (self._gray_tiles[sample.index], self.tile(pred_rgb), self.tile(sample.rgb))
        return ContactEntry(score, sample.path, tiles)

    def offer(
        self,
        model: str,
        score: float,
        sample: Sample,
        pred: torch.Tensor,
        pred_rgb: np.ndarray | None = None,
    ) -> None:
        """Consider one prediction; thumbnails are made only when it enters a list."""
        best = self.best.setdefault(model, [])
        worst = self.worst.setdefault(model, [])
        entry: ContactEntry | None = None
        if self.keep_best and (len(best) < self.k or score > best[-1].score):
            entry = self._entry(score, sample, pred, pred_rgb)
            best.append(entry)
            best.sort(key=lambda e: -e.score)
            del best[self.k :]
        if len(worst) < self.k or score < worst[-1].score:
            worst.append(entry or self._entry(score, sample, pred, pred_rgb))
            worst.sort(key=lambda e: e.score)
            del worst[self.k :]

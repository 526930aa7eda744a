"""Semantic interpretability (Zhang et al. 2016, Table 1): does an ImageNet classifier still
recognise a colorized photo? The classifier is EfficientNet-Lite0 with its ImageNet head (the
``pretrained`` extra), run on the sRGB image of each row (gray baseline, colorizers, ground
truth); a row's top-1 / top-5 accuracy against the label in the file name, and the share of the
gray-to-truth top-1 gap it recovers, ``(top1 - top1_gray) / (top1_truth - top1_gray)``.

Labels: a file name that starts with an ImageNet synset id and an underscore
(``n01440764_tench.JPEG``, the ``imagenet-sample`` convention; see ``colorcli.labels``); the
class index is the synset's position in the sorted list of the 1000 ImageNet-1k synsets
(``assets/imagenet_synsets.txt``). Files without such a prefix are not scored.

Input: the whole image at the evaluation size, resized to 224 x 224 (area average; the
classifier's training size), normalised as the TensorFlow release does.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import torch

from colorcli.labels import class_index, synset_of

CLASSIFIER_SIZE = 224
TOP_K = 5


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ImageNet-1k synset ids in class-index (sorted) order."""
    text = resources.files("colorcli").joinpath("assets/imagenet_synsets.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@lru_cache(maxsize=1)
def _synset_index() -> dict[str, int]:
    return class_index(imagenet_synsets())


def label_of(path: str | Path) -> int | None:
    """The ImageNet class index named by a file's synset prefix, or None."""
    synset = synset_of(path)
    return None if synset is None else _synset_index().get(synset)


def gap_recovered(top1: float, top1_gray: float, top1_truth: float) -> float:
    """Share of the gray-to-truth top-1 gap a row recovers (nan when there is no gap)."""
    gap = top1_truth - top1_gray
    return (top1 - top1_gray) / gap if gap > 0 else float("nan")


class SemanticScorer:
    """The ImageNet classifier on ``device``; ``score(rgb, label)`` -> (top-1, top-5) hits."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        from colorcli.models.efficientnet_lite import imagenet_classifier

        self.device = torch.device(device)
        self.net = imagenet_classifier("lite0").to(self.device)

    @torch.inference_mode()
    def logits(self, rgb: np.ndarray) -> torch.Tensor:
        """sRGB ``(H, W, 3)`` float in [0, 1] -> class logits ``(1000,)``."""
        from colorcli.models.efficientnet_lite import normalize

        small = cv2.resize(
            np.ascontiguousarray(rgb, dtype=np.float32),
            (CLASSIFIER_SIZE, CLASSIFIER_SIZE),
            interpolation=cv2.INTER_AREA,
        )
        x = torch.from_numpy(small).permute(2, 0, 1)[None].to(self.device)
        out: torch.Tensor = self.net(normalize(x))[0].float().cpu()
        return out

    def score(self, rgb: np.ndarray, label: int) -> tuple[float, float]:
        """(1.0 if the top class is ``label`` else 0.0, the same for the top five)."""
        top = self.logits(rgb).topk(TOP_K).indices.tolist()
        return float(top[0] == label), float(label in top)

"""One image of the set at the evaluation size (and at full resolution), and the Lab <-> RGB
steps every row's prediction goes through."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from colorcli.color.lab import lab_to_rgb, rgb_to_lab
from colorcli.errors import BadImage
from colorcli.imageio import read_rgb


@dataclass
class Sample:
    """One image of the set: RGB/Lab at the evaluation size (and at full resolution if asked)."""

    index: int
    path: Path
    rgb: np.ndarray  # (S, S, 3) float32 [0, 1]
    lab: torch.Tensor  # (1, 3, S, S) float32
    rgb_full: np.ndarray | None = None
    lab_full: torch.Tensor | None = None

    @property
    def L(self) -> torch.Tensor:
        return self.lab[:, :1]

    @property
    def ab(self) -> torch.Tensor:
        return self.lab[:, 1:]


def to_lab(rgb: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    return rgb_to_lab(t.unsqueeze(0))


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize a whole ``(H, W, 3)`` float image to ``size x size`` (cv2 INTER_AREA; aspect is not
    kept, as in the paper's protocol)."""
    out = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def load_sample(index: int, path: Path, size: int, full_res: bool = False) -> Sample:
    """Read ``path`` and prepare it at ``size`` (and full resolution). Raises BadImage."""
    rgb_full = read_rgb(path)
    if rgb_full.shape[0] < 2 or rgb_full.shape[1] < 2:
        raise BadImage(f"{path}: image is too small ({rgb_full.shape[1]}x{rgb_full.shape[0]})")
    rgb = resize_rgb(rgb_full, size)
    sample = Sample(index=index, path=path, rgb=rgb, lab=to_lab(rgb))
    if full_res:
        sample.rgb_full = rgb_full
        sample.lab_full = to_lab(rgb_full)
    return sample


def join_rgb(L: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    rgb = lab_to_rgb(torch.cat([L, ab], dim=1))[0]
    return rgb.permute(1, 2, 0).numpy().astype(np.float64)


def upsample_ab(ab: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(ab, size=shape, mode="bilinear", align_corners=False)

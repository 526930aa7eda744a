"""One classification step (Zhang et al.): L -> bin logits, rebalanced multinomial cross-entropy
against soft (or one-hot) encoded ground truth, Adam update.

Targets are encoded at the logits' resolution (a quarter of the crop): the ground-truth ab is
averaged over each 4 x 4 cell first (area downsampling), then encoded onto the bins.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from colorcli import losses
from colorcli.color import encode
from colorcli.training.common import ModelSpec, Precision, SingleModelObjective


def downsample_ab(ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """ab ``(B, 2, H, W)`` -> ``(B, 2, *size)`` by area averaging (exact when H, W divide)."""
    if tuple(ab.shape[-2:]) == tuple(size):
        return ab
    return F.adaptive_avg_pool2d(ab, size)


def encode_targets(
    ab: torch.Tensor, bins: torch.Tensor, targets: str, k: int, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sparse targets ``(index, weight)`` of ab ``(B, 2, h, w)``: ``soft`` (k nearest bins,
    Gaussian ``sigma``) or ``onehot`` (nearest bin)."""
    if targets == "soft":
        return encode.soft_encode(ab, bins, k=k, sigma=sigma)
    if targets == "onehot":
        return encode.one_hot_encode(ab, bins)
    raise ValueError(f"unknown targets {targets!r} (soft, onehot)")


class ClassificationObjective(SingleModelObjective):
    """A classification colorizer (eccv16, effnet-unet) trained with the rebalanced
    cross-entropy at the model's ``output_stride``; see ``common.Objective``."""

    def __init__(
        self,
        model: nn.Module,
        *,
        bins: np.ndarray,
        class_weights: np.ndarray | None,
        targets: str,
        k: int,
        sigma: float,
        temperature: float,
        lr: float,
        betas: tuple[float, float],
        weight_decay: float,
        precision: Precision,
        spec: ModelSpec,
        ddp: bool = False,
    ) -> None:
        super().__init__(
            model,
            lr=lr,
            betas=betas,
            weight_decay=weight_decay,
            precision=precision,
            spec=spec,
            ddp=ddp,
        )
        device = precision.device
        self.bins = torch.as_tensor(np.asarray(bins), dtype=torch.float32, device=device)
        self.class_weights = (
            None
            if class_weights is None
            else torch.as_tensor(np.asarray(class_weights), dtype=torch.float32, device=device)
        )
        self.targets = targets
        self.k = k
        self.sigma = sigma
        self.temperature = temperature

    def _out_size(self, lum: torch.Tensor) -> tuple[int, int]:
        stride = int(getattr(self.model, "output_stride", 4))
        return lum.shape[-2] // stride, lum.shape[-1] // stride

    @torch.no_grad()
    def prepare(self, lum: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded targets at the logits' resolution: ``(index, weight)`` ``(B, K, H/4, W/4)``."""
        small = downsample_ab(ab, self._out_size(lum))
        return encode_targets(small, self.bins, self.targets, self.k, self.sigma)

    def _loss(self, out: torch.Tensor, targets: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        index, weight = targets
        loss: torch.Tensor = losses.rebalanced_cross_entropy(
            out.float(), index, weight, class_weights=self.class_weights
        )
        return loss

    @torch.no_grad()
    def predict_ab(self, lum: torch.Tensor) -> torch.Tensor:
        """Annealed-mean decoding (``temperature``), upsampled bilinearly to the input size."""
        logits = self.precision.run(self.model, lum)
        ab = encode.decode(logits.float(), self.bins, "annealed", self.temperature)
        return F.interpolate(ab, size=lum.shape[-2:], mode="bilinear", align_corners=False)

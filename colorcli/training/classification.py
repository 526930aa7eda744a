"""One classification step (Zhang et al.): L -> bin logits, rebalanced multinomial cross-entropy
against soft (or one-hot) encoded ground truth, Adam update.

Targets are encoded at the logits' resolution (a quarter of the crop): the ground-truth ab is
averaged over each 4 x 4 cell first (area downsampling), then encoded onto the bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from colorcli import losses
from colorcli.color import encode
from colorcli.training.common import ModelSpec, Precision, set_lr


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


class ClassificationObjective:
    """eccv16 trained with the rebalanced cross-entropy; see ``common.Objective``."""

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
        device = precision.device
        self.model = model.to(device)
        self.net: nn.Module = self.model
        if ddp:
            ids = [device.index] if device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
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
        self.precision = precision
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay
        )
        self.scaler = precision.scaler()
        self.models: dict[str, nn.Module] = {"model": self.model}
        self.optimizers: dict[str, torch.optim.Optimizer] = {"model": self.optimizer}
        self.scalers: dict[str, torch.amp.GradScaler] = {"model": self.scaler}
        self.spec = spec

    def set_lr(self, lr: float) -> None:
        set_lr(self.optimizer, lr)

    def _out_size(self, lum: torch.Tensor) -> tuple[int, int]:
        return lum.shape[-2] // 4, lum.shape[-1] // 4

    @torch.no_grad()
    def prepare(self, lum: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded targets at the logits' resolution: ``(index, weight)`` ``(B, K, H/4, W/4)``."""
        small = downsample_ab(ab, self._out_size(lum))
        return encode_targets(small, self.bins, self.targets, self.k, self.sigma)

    def _loss(self, logits: torch.Tensor, targets: tuple[torch.Tensor, torch.Tensor]) -> Any:
        index, weight = targets
        return losses.rebalanced_cross_entropy(
            logits.float(), index, weight, class_weights=self.class_weights
        )

    def train_step(
        self,
        lum: torch.Tensor,
        ab: torch.Tensor,
        targets: tuple[torch.Tensor, torch.Tensor],
        scale: float,
    ) -> dict[str, torch.Tensor]:
        with self.precision.autocast():
            logits = self.net(lum)
        loss = self._loss(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss * scale).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def val_loss(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast():
            logits = self.model(lum)
        out: torch.Tensor = self._loss(logits, self.prepare(lum, ab))
        return out.detach()

    @torch.no_grad()
    def predict_ab(self, lum: torch.Tensor) -> torch.Tensor:
        """Annealed-mean decoding (``temperature``), upsampled bilinearly to the input size."""
        with self.precision.autocast():
            logits = self.model(lum)
        ab = encode.decode(logits.float(), self.bins, "annealed", self.temperature)
        return F.interpolate(ab, size=lum.shape[-2:], mode="bilinear", align_corners=False)

"""Realism critics: scoring colour images with a PatchGAN trained to tell real photos from one
colorizer's outputs.

A critic judges a colour image given as L ``(B, 1, H, W)`` in [0, 100] and ab ``(B, 2, H, W)``
in Lab units. Scaling (the conventions of ``colorcli.models.patchgan``): the network normalises
L itself (``(L - l_center) / l_range``, [0, 100] -> [-1, 1] by default) and takes ab in unit
scale, ``ab / AB_SCALE`` (``colorcli.color.lab.AB_SCALE`` = 110, stored in the critic file as
``ab_scale``), so a critic sees exactly what the pix2pix discriminator sees.

The image logit is the mean of the PatchGAN's patch map (with ``global_pool=True`` the module
returns that mean itself); logit > 0 means "real", ``realism = sigmoid(logit)`` is the critic's
probability that the image is a real photo. ``critic_logits`` is the one pure function behind
``LoadedCritic.logits`` (differentiable w.r.t. ab: fine-tuning a colorizer against the critic
back-propagates through it) and ``LoadedCritic.realism`` (no grad).

The critic file format (``save_critic``, FORMAT / VERSION / KIND) lives in
``colorcli.checkpoint`` with every other model file; the names are re-exported here.
``load_critic`` returns a ``LoadedCritic`` whose module is in eval mode; its parameters keep
``requires_grad`` (a fine-tuning run may go on training it), ``realism`` runs under no_grad.
Training a critic is a workflow: ``colorcli.training.critic.train_critic``.

Norm: the default is instance normalisation, so a photo's score never depends on the other
images in its batch (the same in training and evaluation, no running statistics).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colorcli.checkpoint import CRITIC_ARCHS as ARCHS
from colorcli.checkpoint import CRITIC_FORMAT as FORMAT
from colorcli.checkpoint import CRITIC_KIND as KIND
from colorcli.checkpoint import CRITIC_VERSION as VERSION
from colorcli.checkpoint import read_critic
from colorcli.checkpoint import save_critic as save_critic
from colorcli.color.lab import AB_SCALE

__all__ = [
    "ARCHS",
    "CRITIC_NORMS",
    "FORMAT",
    "KIND",
    "VERSION",
    "LoadedCritic",
    "critic_logits",
    "load_critic",
    "min_input_side",
    "patch_map_side",
    "save_critic",
]

CRITIC_NORMS: tuple[str, ...] = ("instance", "batch", "none", "spectral")


# ----------------------------------------------------------------------------- scoring


def critic_logits(
    module: nn.Module, lum: torch.Tensor, ab: torch.Tensor, ab_scale: float
) -> torch.Tensor:
    """Image logits ``(B,)`` of a PatchGAN critic for L ``(B, 1, H, W)`` in [0, 100] and ab
    ``(B, 2, H, W)`` in Lab units: ``module(L, ab / ab_scale)`` averaged over its patch map
    (a ``global_pool`` module returns that mean itself). Differentiable w.r.t. ``ab``."""
    scores = module(lum, ab / ab_scale)
    if scores.dim() == 4:
        return scores.mean(dim=(1, 2, 3))
    if scores.dim() == 1:
        return scores
    raise ValueError(f"critic output of shape {tuple(scores.shape)}: expected (B, 1, h, w) or (B,)")


@dataclass
class LoadedCritic:
    """A critic ready to score images; ``module`` is in eval mode on ``device``.

    ``meta`` holds what ``training.critic.train_critic`` recorded (colorizer identity, data,
    steps, held-out accuracy, timing) plus ``format_version``.
    """

    module: nn.Module
    arch: str
    arch_kwargs: dict[str, Any]
    input_size: int
    meta: dict[str, Any]
    path: Path
    device: torch.device
    ab_scale: float = AB_SCALE

    def _inputs(self, lum: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if lum.dim() != 4 or lum.shape[1] != 1:
            raise ValueError(f"L must have shape (B, 1, H, W), got {tuple(lum.shape)}")
        if ab.dim() != 4 or ab.shape[1] != 2 or ab.shape[-2:] != lum.shape[-2:]:
            raise ValueError(f"ab must have shape (B, 2, H, W) like L, got {tuple(ab.shape)}")
        return (
            lum.to(device=self.device, dtype=torch.float32),
            ab.to(device=self.device, dtype=torch.float32),
        )

    def logits(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Image logits ``(B,)`` (> 0: "real") for L ``(B, 1, H, W)`` in [0, 100] and ab
        ``(B, 2, H, W)`` in Lab units; differentiable w.r.t. ``ab`` (and L)."""
        lum, ab = self._inputs(lum, ab)
        return critic_logits(self.module, lum, ab, self.ab_scale)

    @torch.no_grad()
    def realism(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """``(B,)`` probability that each image is a real photo: ``sigmoid(logits)``."""
        return torch.sigmoid(self.logits(lum, ab))


def min_input_side(critic: LoadedCritic) -> int:
    """The smallest image side the critic can score (one patch score; see ``patch_map_side``)."""
    n_layers = int(critic.arch_kwargs.get("n_layers", 3))
    side = 1
    while patch_map_side(side, n_layers) < 1:
        side += 1
    return side


def patch_map_side(side: int, n_layers: int) -> int:
    """Side of a PatchGAN's score map for an input side: the first conv and ``n_layers - 1``
    layers halve it (4x4, stride 2, padding 1), the last layer and the output conv (4x4,
    stride 1, padding 1) each take 1."""
    for _ in range(n_layers):
        side //= 2
    return side - 2


def load_critic(
    spec: str | os.PathLike[str], device: str | torch.device | None = None
) -> LoadedCritic:
    """Load a critic file (a path or ``hf://owner/repo[@rev]/file``) for scoring.

    Every problem (missing, corrupt, a colorizer model file, a newer format) raises BadWeights
    with a one-line message naming the file (``checkpoint.read_critic``).
    """
    return LoadedCritic(**read_critic(spec, device))

"""Realism critics: a PatchGAN trained to tell real photos from one colorizer's outputs.

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

A critic file is ``torch.save`` of a dict of tensors and plain values (loads with
``torch.load(weights_only=True)``)::

    format: "colorcli-critic", version: 1, kind: "critic",
    arch: "patchgan", arch_kwargs: constructor arguments, state_dict: {name: tensor},
    ab_scale: 110.0, input_size: the crop side used in training,
    meta: {colorizer, colorizer_sha256, data_dirs, steps, accuracy..., timing...}

``train_critic(config)`` trains one: for each batch of random crops of the photos (the training
data pipeline: ``training.dataset``), the frozen colorizer predicts ab for the same L (no grad,
at the crop size); the critic learns real (true L + ab) -> 1, colorized (same L + predicted
ab) -> 0 with binary cross-entropy. With a patch map (default) the loss is the mean BCE over
patches (pix2pix); with ``global_pool`` it is the BCE of the image logit. A held-out share of
the photos (``training.dataset.split_files``, seeded) gives the accuracy on real and on
colorized centre crops, and their mean (balanced accuracy), stored in the file's meta.

Norm: the default is instance normalisation, so a photo's score never depends on the other
images in its batch (the same in training and evaluation, no running statistics).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colorcli.checkpoint import _load_state, _plain, _read, resolve_model_spec, unwrap_model
from colorcli.color.lab import AB_SCALE
from colorcli.device import pick_device
from colorcli.errors import BadWeights, ColorcliError, UsageError
from colorcli.fsutil import atomic_open
from colorcli.models import create_model

# Note: colorcli.training (the data pipeline) is imported inside train_critic only: the training
# package imports this module for fine-tuning against a critic, and a top-level import here
# would make the two packages import each other while half-initialised.

FORMAT = "colorcli-critic"
VERSION = 1
KIND = "critic"
ARCHS: tuple[str, ...] = ("patchgan",)
CRITIC_NORMS: tuple[str, ...] = ("instance", "batch", "none", "spectral")
MODEL_FORMAT = "colorcli-model"  # colorcli.checkpoint.FORMAT, named in the wrong-file error


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

    ``meta`` holds what ``train_critic`` recorded (colorizer identity, data, steps, held-out
    accuracy, timing) plus ``format_version``.
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


# ----------------------------------------------------------------------------- files


def save_critic(
    path: str | os.PathLike[str],
    module: nn.Module,
    *,
    arch: str,
    arch_kwargs: Mapping[str, Any],
    input_size: int,
    meta: Mapping[str, Any],
    ab_scale: float = AB_SCALE,
) -> Path:
    """Write a self-describing critic file atomically; returns its path.

    ``arch_kwargs`` must rebuild ``module`` through ``create_model(arch, **arch_kwargs)``;
    ``meta`` must be plain data (strings, numbers, lists, dicts; paths and enums are turned into
    strings).
    """
    if arch not in ARCHS:
        raise ValueError(f"critic arch must be one of {ARCHS}, got {arch!r}")
    module = unwrap_model(module)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": KIND,
        "arch": str(arch),
        "arch_kwargs": _plain(dict(arch_kwargs), "arch_kwargs"),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()},
        "ab_scale": float(ab_scale),
        "input_size": int(input_size),
        "meta": _plain(dict(meta), "meta"),
    }
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(final, fsync=True) as fh:
        torch.save(payload, fh)
    return final


def load_critic(
    spec: str | os.PathLike[str], device: str | torch.device | None = None
) -> LoadedCritic:
    """Load a critic file (a path or ``hf://owner/repo[@rev]/file``) for scoring.

    Every problem (missing, corrupt, a colorizer model file, a newer format) raises BadWeights
    with a one-line message naming the file.
    """
    if isinstance(spec, str) and spec in ("", "default"):
        raise UsageError("a critic must be given as a file (there is no default critic)")
    path = resolve_model_spec(spec)
    obj = _read(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        if isinstance(obj, dict) and obj.get("format") == MODEL_FORMAT:
            raise BadWeights(
                f"{path}: is a colorcli model (colorizer) file, not a critic "
                "(train one with 'colorcli train-critic')"
            )
        raise BadWeights(f"{path}: not a colorcli critic file (no {FORMAT!r} format tag)")
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise BadWeights(f"{path}: bad critic format version {version!r}")
    if version > VERSION:
        raise BadWeights(
            f"{path}: written by a newer colorcli (critic format version {version}; "
            f"this version reads {VERSION})"
        )
    for key in ("arch", "arch_kwargs", "state_dict"):
        if key not in obj:
            raise BadWeights(f"{path}: critic file lacks its {key!r} field")
    arch, kwargs = obj["arch"], obj["arch_kwargs"]
    if arch not in ARCHS:
        raise BadWeights(
            f"{path}: unknown critic architecture {arch!r} (known: {', '.join(ARCHS)})"
        )
    if not isinstance(kwargs, dict):
        raise BadWeights(f"{path}: arch_kwargs is not a dict")
    if not isinstance(obj["state_dict"], Mapping):
        raise BadWeights(f"{path}: state_dict is not a mapping")
    try:
        module = create_model(arch, **kwargs)
    except (ColorcliError, ValueError, TypeError) as exc:
        raise BadWeights(f"{path}: cannot build {arch} from its arguments ({exc})") from exc
    _load_state(path, module, obj["state_dict"], f"the critic {arch}")
    ab_scale = obj.get("ab_scale", AB_SCALE)
    if not isinstance(ab_scale, int | float) or not math.isfinite(ab_scale) or ab_scale <= 0:
        raise BadWeights(f"{path}: bad ab_scale {ab_scale!r}")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise BadWeights(f"{path}: meta is not a dict")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    # parameters keep requires_grad: a fine-tuning run may go on training the critic
    module = module.to(dev).float().eval()
    return LoadedCritic(
        module=module,
        arch=arch,
        arch_kwargs=dict(kwargs),
        input_size=int(obj.get("input_size", 256)),
        meta={**meta, "format_version": version},
        path=path,
        device=dev,
        ab_scale=float(ab_scale),
    )

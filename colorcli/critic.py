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
    meta: {colorizer: {spec, path, name, sha256, arch, kind}, data_dirs, n_files, n_train,
           n_val, steps, accuracy: {real, colorized, balanced, n, gray_skipped, on},
           train_loss, train_accuracy, timing, bad_files, config}

``load_critic`` returns a ``LoadedCritic`` whose module is in eval mode; its parameters keep
``requires_grad`` (a fine-tuning run may go on training it), ``realism`` runs under no_grad.

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

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colorcli.checkpoint import (
    _load_state,
    _plain,
    _read,
    check_file_header,
    resolve_model_spec,
    unwrap_model,
)
from colorcli.color.lab import AB_SCALE
from colorcli.device import pick_device
from colorcli.errors import BadImage, BadWeights, ColorcliError, EmptyDataset, UsageError
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
    version = check_file_header(
        path, obj, reads=VERSION, format_name="critic format", file_name="critic file"
    )
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


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class CriticConfig:
    """Settings of one ``train_critic`` run.

    ``data_dirs``: folders of colour photos (searched recursively); ``model``: the colorizer
    (a spec for ``checkpoint.load_model``: path, ``hf://...`` or ``default``); ``out``: the critic
    file to write. ``crop``: side of the random training crops (and of the centred held-out
    crops); ``val_split``: share of the photos held out (seeded split, at least one photo when
    there are two or more). Critic architecture: PatchGAN of ``width`` channels in its first
    layer and ``n_layers`` stride-2 layers, ``norm``, and ``global_pool`` (train on the image
    logit instead of every patch). ``workers``: data-loading processes (0: in this process).
    """

    data_dirs: tuple[str, ...]
    model: str
    out: str
    steps: int = 300
    batch_size: int = 16
    crop: int = 128
    lr: float = 2e-4
    val_split: float = 0.1
    seed: int = 0
    device: str | None = None
    width: int = 32
    n_layers: int = 3
    norm: str = "instance"
    global_pool: bool = False
    workers: int = 0
    log_every: int = 10
    overwrite: bool = False

    def check(self) -> None:
        """UsageError (one line) for settings that cannot work."""
        checks = [
            (len(self.data_dirs) > 0, "give at least one DATA_DIR"),
            (self.steps >= 1, "--steps must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.crop >= 16, "--crop must be at least 16 pixels"),
            (self.lr > 0, "--lr must be > 0"),
            (0 <= self.val_split < 1, "--val-split must be in [0, 1)"),
            (self.width >= 1, "--width must be >= 1"),
            (1 <= self.n_layers <= 6, "--layers must be between 1 and 6"),
            (self.norm in CRITIC_NORMS, f"--norm must be one of {', '.join(CRITIC_NORMS)}"),
            (self.workers >= 0, "--workers must be >= 0"),
            (self.log_every >= 1, "--log-every must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if patch_map_side(self.crop, self.n_layers) < 1:
            raise UsageError(f"--crop {self.crop} is too small for a {self.n_layers}-layer critic")
        for d in self.data_dirs:
            if not Path(d).is_dir():
                raise UsageError(f"{d}: no such folder")
        out = Path(self.out)
        if out.is_dir():
            raise UsageError(f"{out}: is a folder (--out names the critic file to write)")
        if out.exists() and not self.overwrite:
            raise UsageError(f"{out}: already exists (use --overwrite to replace it)")

    @property
    def arch_kwargs(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "n_layers": self.n_layers,
            "norm": self.norm,
            "global_pool": self.global_pool,
        }


@dataclass(frozen=True)
class CriticStarted:
    n_train: int
    n_val: int
    steps: int
    device: str
    colorizer: str


@dataclass(frozen=True)
class CriticStep:
    """After each step: mean loss and training accuracy (real and colorized crops together) over
    the steps since the last ``log_every`` boundary (this one included)."""

    step: int
    steps: int
    loss: float
    accuracy: float


@dataclass(frozen=True)
class CriticValidating:
    """Held-out scoring progress: ``done`` of ``total`` photos."""

    done: int
    total: int


@dataclass(frozen=True)
class CriticBadFile:
    path: str
    reason: str


@dataclass(frozen=True)
class CriticNote:
    message: str


CriticEvent = CriticStarted | CriticStep | CriticValidating | CriticBadFile | CriticNote
OnCriticEvent = Callable[[CriticEvent], None]


@dataclass
class CriticResult:
    """``accuracy``: ``real`` (share of real crops judged real), ``colorized`` (share of colorized
    crops judged colorized), ``balanced`` (their mean), ``n`` (photos scored) and ``on``
    ("held-out" or "training" when no photo could be held out)."""

    path: Path
    steps: int
    accuracy: dict[str, Any]
    seconds: float
    n_train: int
    n_val: int
    bad_files: list[tuple[str, str]] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _bce_targets(scores: torch.Tensor, n_real: int) -> torch.Tensor:
    """1 for the first ``n_real`` samples of ``scores`` (real), 0 for the rest (colorized)."""
    target = torch.zeros_like(scores)
    target[:n_real] = 1.0
    return target


def held_out_accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, float]:
    """Accuracy of a critic from its image logits (> 0 means "real") on real and colorized
    images: ``real``, ``colorized`` and ``balanced`` (their mean), as fractions."""
    real = float((real_logits > 0).double().mean()) if len(real_logits) else float("nan")
    fake = float((fake_logits <= 0).double().mean()) if len(fake_logits) else float("nan")
    return {"real": real, "colorized": fake, "balanced": (real + fake) / 2}


def train_critic(config: CriticConfig, on_event: OnCriticEvent | None = None) -> CriticResult:
    """Train a critic on ``config.data_dirs`` against the colorizer ``config.model`` and save it
    to ``config.out`` (atomically); returns the held-out accuracy. Never prints.

    Unreadable photos are reported (``CriticBadFile``) and skipped; EmptyDataset when the
    folders hold no image, none is readable, or no crop has colour.
    """
    from colorcli.checkpoint import load_model
    from colorcli.imageio import find_images
    from colorcli.training.common import colour_mask, to_lab
    from colorcli.training.dataset import (
        BatchOrder,
        PhotoCrops,
        load_crop,
        make_loader,
        split_files,
    )

    t_start = time.perf_counter()
    config.check()

    def emit(event: CriticEvent) -> None:
        if on_event is not None:
            on_event(event)

    bad: dict[str, str] = {}

    def report_bad(path: str, reason: str) -> None:
        if path not in bad:
            bad[path] = reason
            emit(CriticBadFile(path, reason))

    files = find_images([Path(d) for d in config.data_dirs])
    if not files:
        raise EmptyDataset(f"{', '.join(config.data_dirs)}: no image files found")
    train_files, val_files = split_files(files, config.val_split, config.seed)
    accuracy_on = "held-out"
    if not val_files:
        emit(CriticNote("no held-out photos: accuracy is measured on the training photos"))
        val_files, accuracy_on = train_files, "training"

    device = pick_device(config.device)
    colorizer_path = resolve_model_spec(config.model)
    colorizer = load_model(config.model, device=device)
    colorizer_info = {
        "spec": config.model,
        "path": str(colorizer_path),
        "name": colorizer_path.name,
        "sha256": file_sha256(colorizer_path),
        "arch": colorizer.arch,
        "kind": colorizer.kind,
    }
    emit(CriticStarted(len(train_files), len(val_files), config.steps, str(device), config.model))

    torch.manual_seed(config.seed)
    module = create_model("patchgan", **config.arch_kwargs).to(device)
    opt = torch.optim.Adam(module.parameters(), lr=config.lr, betas=(0.5, 0.999))
    dataset = PhotoCrops(train_files, config.crop, train=True, seed=config.seed)
    order = BatchOrder(len(train_files), config.batch_size, config.seed)
    loader = make_loader(
        dataset, order, 0, workers=config.workers, pin_memory=device.type == "cuda"
    )
    bad_train: set[int] = set()
    updates = 0
    window_loss = window_correct = 0.0
    window_n = window_steps = 0
    shown = (float("nan"), float("nan"))
    module.train()
    it = iter(loader)
    try:
        for step in range(1, config.steps + 1):
            rgb, ok, index, errors = next(it)
            for flag, i, err in zip(ok.tolist(), index.tolist(), errors, strict=True):
                if not flag:
                    bad_train.add(i)
                    report_bad(str(train_files[i]), err)
            if len(bad_train) >= len(train_files):
                raise EmptyDataset(
                    f"{', '.join(config.data_dirs)}: none of the training photos can be read"
                )
            lum, ab = to_lab(rgb, device)
            keep = ok.to(device) & colour_mask(ab)
            if bool(keep.any()):
                lum, ab = lum[keep], ab[keep]
                fake_ab = colorizer.predict_ab(lum).clone()  # frozen colorizer, no graph
                n = lum.shape[0]
                scores = module(torch.cat([lum, lum]), torch.cat([ab, fake_ab]) / AB_SCALE)
                loss = F.binary_cross_entropy_with_logits(scores, _bce_targets(scores, n))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                updates += 1
                with torch.no_grad():
                    image_logits = scores if scores.dim() == 1 else scores.flatten(1).mean(1)
                    correct = (image_logits[:n] > 0).sum() + (image_logits[n:] <= 0).sum()
                window_loss += float(loss.detach())
                window_correct += float(correct)
                window_n += 2 * n
                window_steps += 1
            current = (
                (window_loss / window_steps, window_correct / window_n) if window_steps else shown
            )
            if step % config.log_every == 0 or step == config.steps:
                shown = current
                window_loss = window_correct = 0.0
                window_n = window_steps = 0
            emit(CriticStep(step, config.steps, *current))
    finally:
        del it
    if updates == 0:
        raise EmptyDataset(
            f"{', '.join(config.data_dirs)}: no colour crop among the training photos"
        )
    t_train = time.perf_counter() - t_start

    # held-out accuracy on centred crops
    module.eval()
    real_logits: list[torch.Tensor] = []
    fake_logits: list[torch.Tensor] = []
    n_gray = 0
    for first in range(0, len(val_files), config.batch_size):
        chunk = val_files[first : first + config.batch_size]
        crops = []
        for path in chunk:
            try:
                crops.append(torch.from_numpy(load_crop(path, config.crop, None)).permute(2, 0, 1))
            except BadImage as exc:
                report_bad(str(path), str(exc))
        if crops:
            lum, ab = to_lab(torch.stack(crops), device)
            colour = colour_mask(ab)
            n_gray += int((~colour).sum())
            lum, ab = lum[colour], ab[colour]
            if len(lum):
                fake_ab = colorizer.predict_ab(lum).clone()
                with torch.no_grad():
                    real_logits.append(critic_logits(module, lum, ab, AB_SCALE).cpu())
                    fake_logits.append(critic_logits(module, lum, fake_ab, AB_SCALE).cpu())
        emit(CriticValidating(min(first + len(chunk), len(val_files)), len(val_files)))
    rl = torch.cat(real_logits) if real_logits else torch.zeros(0)
    fl = torch.cat(fake_logits) if fake_logits else torch.zeros(0)
    accuracy: dict[str, Any] = {
        **held_out_accuracy(rl, fl),
        "n": len(rl),
        "gray_skipped": n_gray,
        "on": accuracy_on,
    }
    if not len(rl):
        emit(CriticNote("no readable colour photo to measure the accuracy on"))
    seconds = time.perf_counter() - t_start
    meta = {
        "colorizer": colorizer_info,
        "data_dirs": [str(Path(d)) for d in config.data_dirs],
        "n_files": len(files),
        "n_train": len(train_files),
        "n_val": len(val_files) if accuracy_on == "held-out" else 0,
        "steps": config.steps,
        "accuracy": accuracy,
        "train_loss": shown[0],
        "train_accuracy": shown[1],
        "timing": {
            "train_seconds": round(t_train, 3),
            "total_seconds": round(seconds, 3),
            "device": str(device),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "bad_files": sorted(bad),
        "config": asdict(config),
    }
    path = save_critic(
        config.out,
        module,
        arch="patchgan",
        arch_kwargs=config.arch_kwargs,
        input_size=config.crop,
        meta=meta,
    )
    return CriticResult(
        path=path,
        steps=config.steps,
        accuracy=accuracy,
        seconds=seconds,
        n_train=len(train_files),
        n_val=len(val_files) if accuracy_on == "held-out" else 0,
        bad_files=sorted(bad.items()),
    )

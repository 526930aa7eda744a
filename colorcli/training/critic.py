"""Training a realism critic: a PatchGAN that tells real photos from one colorizer's outputs.

``train_critic(config)`` trains one: for each batch of random crops of the photos (the training
data pipeline: ``training.dataset``), the frozen colorizer predicts ab for the same L (no grad,
at the crop size); the critic learns real (true L + ab) -> 1, colorized (same L + predicted
ab) -> 0 with binary cross-entropy. With a patch map (default) the loss is the mean BCE over
patches (pix2pix); with ``global_pool`` it is the BCE of the image logit. A held-out share of
the photos (``training.dataset.split_files``, seeded) gives the accuracy on real and on
colorized centre crops, and their mean (balanced accuracy), stored in the file's meta. The file
is written by ``checkpoint.save_critic``; scoring with it is ``colorcli.critic``.

Events: ``CriticStarted``, ``CriticStep``, ``events.Progress`` ("held-out" scoring),
``events.BadFile`` and ``events.Note``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colorcli.checkpoint import LoadedModel, load_model, resolve_model_spec, save_critic
from colorcli.color.lab import AB_SCALE
from colorcli.critic import CRITIC_NORMS, critic_logits, patch_map_side
from colorcli.device import pick_device
from colorcli.errors import BadImage, EmptyDataset, UsageError
from colorcli.events import BadFile, Note, Progress
from colorcli.fsutil import file_sha256
from colorcli.imageio import find_images
from colorcli.models import create_model
from colorcli.training.common import Unreadable, colour_mask, lab_batch, to_lab
from colorcli.training.dataset import BatchOrder, PhotoCrops, load_crop, make_loader, split_files


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


CriticEvent = CriticStarted | CriticStep | Progress | BadFile | Note
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


class _Reports:
    """The events of one run and the files it skipped (each reported once)."""

    def __init__(self, on_event: OnCriticEvent | None) -> None:
        self.on_event = on_event
        self.bad: dict[str, str] = {}

    def emit(self, event: CriticEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def bad_file(self, path: str, reason: str) -> None:
        if path not in self.bad:
            self.bad[path] = reason
            self.emit(BadFile(path, reason))


def _colorizer_info(spec: str, path: Path, colorizer: LoadedModel) -> dict[str, Any]:
    return {
        "spec": spec,
        "path": str(path),
        "name": path.name,
        "sha256": file_sha256(path),
        "arch": colorizer.arch,
        "kind": colorizer.kind,
    }


def _train(
    config: CriticConfig,
    module: nn.Module,
    colorizer: LoadedModel,
    files: list[Path],
    device: torch.device,
    reports: _Reports,
) -> tuple[float, float]:
    """``config.steps`` critic updates on random crops of ``files``; returns the mean loss and
    training accuracy of the last log window. EmptyDataset when no crop had colour."""
    opt = torch.optim.Adam(module.parameters(), lr=config.lr, betas=(0.5, 0.999))
    dataset = PhotoCrops(files, config.crop, train=True, seed=config.seed)
    order = BatchOrder(len(files), config.batch_size, config.seed)
    loader = make_loader(
        dataset, order, 0, workers=config.workers, pin_memory=device.type == "cuda"
    )
    where = ", ".join(config.data_dirs)
    unreadable = Unreadable(
        files, reports.bad_file, f"{where}: none of the training photos can be read"
    )
    updates = 0
    window_loss = window_correct = 0.0
    window_n = window_steps = 0
    shown = (float("nan"), float("nan"))
    module.train()
    it = iter(loader)
    try:
        for step in range(1, config.steps + 1):
            lum, ab, keep, _ = lab_batch(next(it), device, unreadable.add)
            unreadable.check()
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
            reports.emit(CriticStep(step, config.steps, *current))
    finally:
        del it
    if updates == 0:
        raise EmptyDataset(f"{where}: no colour crop among the training photos")
    return shown


def _held_out(
    config: CriticConfig,
    module: nn.Module,
    colorizer: LoadedModel,
    files: list[Path],
    device: torch.device,
    reports: _Reports,
) -> dict[str, Any]:
    """Accuracy of the critic on the centre crops of ``files`` (real and colorized): the
    ``held_out_accuracy`` fields, ``n`` (photos scored) and ``gray_skipped``."""
    module.eval()
    real_logits: list[torch.Tensor] = []
    fake_logits: list[torch.Tensor] = []
    n_gray = 0
    for first in range(0, len(files), config.batch_size):
        chunk = files[first : first + config.batch_size]
        crops = []
        for path in chunk:
            try:
                crops.append(torch.from_numpy(load_crop(path, config.crop, None)).permute(2, 0, 1))
            except BadImage as exc:
                reports.bad_file(str(path), str(exc))
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
        reports.emit(Progress("held-out", min(first + len(chunk), len(files)), len(files)))
    rl = torch.cat(real_logits) if real_logits else torch.zeros(0)
    fl = torch.cat(fake_logits) if fake_logits else torch.zeros(0)
    return {**held_out_accuracy(rl, fl), "n": len(rl), "gray_skipped": n_gray}


def train_critic(config: CriticConfig, on_event: OnCriticEvent | None = None) -> CriticResult:
    """Train a critic on ``config.data_dirs`` against the colorizer ``config.model`` and save it
    to ``config.out`` (atomically); returns the held-out accuracy. Never prints.

    Unreadable photos are reported (``events.BadFile``) and skipped; EmptyDataset when the
    folders hold no image, none is readable, or no crop has colour.
    """
    t_start = time.perf_counter()
    config.check()
    reports = _Reports(on_event)
    files = find_images([Path(d) for d in config.data_dirs])
    if not files:
        raise EmptyDataset(f"{', '.join(config.data_dirs)}: no image files found")
    train_files, val_files = split_files(files, config.val_split, config.seed)
    accuracy_on = "held-out"
    if not val_files:
        reports.emit(Note("no held-out photos: accuracy is measured on the training photos"))
        val_files, accuracy_on = train_files, "training"

    device = pick_device(config.device)
    colorizer_path = resolve_model_spec(config.model)
    colorizer = load_model(config.model, device=device)
    colorizer_info = _colorizer_info(config.model, colorizer_path, colorizer)
    reports.emit(
        CriticStarted(len(train_files), len(val_files), config.steps, str(device), config.model)
    )

    torch.manual_seed(config.seed)
    module = create_model("patchgan", **config.arch_kwargs).to(device)
    shown = _train(config, module, colorizer, train_files, device, reports)
    t_train = time.perf_counter() - t_start
    accuracy = _held_out(config, module, colorizer, val_files, device, reports)
    accuracy["on"] = accuracy_on
    if not accuracy["n"]:
        reports.emit(Note("no readable colour photo to measure the accuracy on"))
    seconds = time.perf_counter() - t_start
    n_val = len(val_files) if accuracy_on == "held-out" else 0
    meta = {
        "colorizer": colorizer_info,
        "data_dirs": [str(Path(d)) for d in config.data_dirs],
        "n_files": len(files),
        "n_train": len(train_files),
        "n_val": n_val,
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
        "bad_files": sorted(reports.bad),
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
        n_val=n_val,
        bad_files=sorted(reports.bad.items()),
    )

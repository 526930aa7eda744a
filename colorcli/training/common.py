"""Pieces shared by the training objectives and loops: Lab batches (``lab_batch``: a loader
batch -> its bad files -> Lab -> colour mask, for the training loop, hard mining and the critic
trainer), grayscale masks, per-step seeds, mixed precision, gradient averaging across
processes, and the ``Objective`` interface the loop drives."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from colorcli.color.constants import GRAY_THRESHOLD
from colorcli.color.lab import rgb_to_lab
from colorcli.errors import EmptyDataset


def to_lab(rgb_u8: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB ``(B, 3, H, W)`` -> (L ``(B, 1, H, W)`` in [0, 100], ab ``(B, 2, H, W)``), float32
    on ``device`` (the conversion runs there, in one batched call)."""
    rgb = rgb_u8.to(device, non_blocking=True).float().div_(255.0)
    lab = rgb_to_lab(rgb)
    return lab[:, :1].contiguous(), lab[:, 1:].contiguous()


def colour_mask(ab: torch.Tensor, threshold: float = GRAY_THRESHOLD) -> torch.Tensor:
    """``(B,)`` bool: True for samples with at least one pixel with |a| or |b| > ``threshold``."""
    return (ab.abs() > threshold).flatten(1).any(dim=1)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]
"""A loader batch (``dataset.PhotoCrops``): uint8 RGB ``(B, 3, H, W)``, ok ``(B,)`` bool, file
index ``(B,)`` and the error message of each sample ("" when ok)."""


class LabBatch(NamedTuple):
    """A batch in Lab on the device: L ``(B, 1, H, W)`` in [0, 100], ab ``(B, 2, H, W)``, ``keep``
    ``(B,)`` bool (readable and in colour) and the ``file_index`` ``(B,)`` (on the CPU)."""

    lum: torch.Tensor
    ab: torch.Tensor
    keep: torch.Tensor
    file_index: torch.Tensor


def lab_batch(
    batch: Batch, device: torch.device, on_bad: Callable[[int, str], None] | None = None
) -> LabBatch:
    """A loader batch -> ``on_bad(file index, reason)`` for each unreadable sample -> Lab on
    ``device`` -> the mask of the readable colour samples (``colour_mask``)."""
    rgb, ok, index, errors = batch
    for flag, i, err in zip(ok.tolist(), index.tolist(), errors, strict=True):
        if not flag and on_bad is not None:
            on_bad(int(i), err)
    lum, ab = to_lab(rgb, device)
    return LabBatch(lum, ab, ok.to(device) & colour_mask(ab), index)


@dataclass
class Unreadable:
    """The training files found unreadable so far: ``add(i, reason)`` reports file ``i`` through
    ``report(path, reason)``; ``check`` raises EmptyDataset(``message``) once every file is."""

    files: Sequence[object]
    report: Callable[[str, str], None]
    message: str
    seen: set[int] = field(default_factory=set)

    def add(self, i: int, reason: str) -> None:
        self.seen.add(i)
        self.report(str(self.files[i]), reason)

    def check(self) -> None:
        if len(self.seen) >= len(self.files):
            raise EmptyDataset(self.message)


def step_seed(seed: int, rank: int, step: int) -> int:
    """The global RNG seed of one step of one process (dropout), a function of its arguments
    only: a resumed run draws what the uninterrupted run drew."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def select(
    lum: torch.Tensor, ab: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The kept samples and a loss scale of 1; when none is kept, the whole batch with scale 0
    (every process must still run a backward pass so that distributed gradients line up)."""
    if bool(keep.all()):
        return lum, ab, 1.0
    if bool(keep.any()):
        return lum[keep], ab[keep], 1.0
    return lum, ab, 0.0


@dataclass
class Precision:
    """Autocast policy of one run: ``dtype`` None means full float32."""

    device: torch.device
    dtype: torch.dtype | None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """A GradScaler, enabled only for float16 (bfloat16 needs none)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    def run(self, module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
        """``module(*args)`` under this policy's autocast."""
        with self.autocast():
            out: torch.Tensor = module(*args)
        return out


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def average_gradients(module: nn.Module) -> None:
    """All-reduce (mean) the gradients of ``module`` across processes, in one flat buffer.

    Used for modules that are called several times per update (the discriminator: real, fake,
    penalties), which DistributedDataParallel's reducer does not support.
    """
    if not distributed():
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def wrap_ddp(model: nn.Module, device: torch.device, ddp: bool) -> nn.Module:
    """``model`` itself, or wrapped in DistributedDataParallel when ``ddp``."""
    if not ddp:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def adam(
    module: nn.Module, lr: float, betas: tuple[float, float], weight_decay: float
) -> torch.optim.Adam:
    """Adam over ``module``'s parameters: one group, or the named groups of a module with
    ``parameter_groups()`` (a pretrained encoder and the rest), each with an ``lr_scale`` of 1
    that ``set_group_scale`` changes."""
    groups_of = getattr(module, "parameter_groups", None)
    if groups_of is None:
        groups: list[dict[str, Any]] = [{"params": list(module.parameters()), "name": "all"}]
    else:
        groups = [{"params": ps, "name": name} for name, ps in groups_of().items()]
    for g in groups:
        g["lr_scale"] = 1.0
    return torch.optim.Adam(groups, lr=lr, betas=betas, weight_decay=weight_decay)


def set_group_scale(optimizer: torch.optim.Optimizer, name: str, scale: float) -> None:
    """Set the ``lr_scale`` of the parameter group called ``name`` (if there is one); it
    applies from the next ``set_lr``."""
    for group in optimizer.param_groups:
        if group.get("name") == name:
            group["lr_scale"] = float(scale)


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    loss: torch.Tensor,
    scale: float,
    *,
    sync: nn.Module | None = None,
) -> None:
    """One (mixed-precision) update: zero the gradients, back-propagate ``loss * scale`` through
    the scaler, average ``sync``'s gradients across processes when given, step, update."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss * scale).backward()
    if sync is not None:
        average_gradients(sync)
    scaler.step(optimizer)
    scaler.update()


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Each group's learning rate = ``lr`` x its ``lr_scale`` (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


@dataclass(frozen=True)
class ModelSpec:
    """What ``checkpoint.save_model`` needs to describe the colorizer of a run."""

    arch: str
    arch_kwargs: dict[str, Any]
    decode: dict[str, Any] | None


class Objective(Protocol):
    """One training objective, as driven by ``loop``.

    ``models``: the bare modules by name (``"model"`` is the colorizer that gets saved as the model
    file; cgan adds ``"discriminator"``). ``optimizers`` and ``scalers`` by name (saved in the
    resume file). ``prepare`` builds the targets without gradients (the data-path part of a step);
    ``train_step`` does forward, backward and the optimizer updates and returns detached losses
    (``"loss"`` is the headline number). ``val_loss`` returns the mean objective loss of a batch,
    ``predict_ab`` the colorization in Lab units at the input size.
    """

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler]
    spec: ModelSpec

    def set_lr(self, lr: float) -> None: ...

    def prepare(self, lum: torch.Tensor, ab: torch.Tensor) -> Any: ...

    def train_step(
        self, lum: torch.Tensor, ab: torch.Tensor, targets: Any, scale: float
    ) -> dict[str, torch.Tensor]: ...

    def val_loss(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor: ...

    def predict_ab(self, lum: torch.Tensor) -> torch.Tensor: ...


class SingleModelObjective(abc.ABC):
    """An objective with one colorizer (``"model"``) and one Adam optimizer: the train step is a
    forward pass of the (DDP-wrapped) net, ``_loss`` and one update; the validation loss is
    ``_loss`` against the ``prepare``d targets. Subclasses give ``prepare``, ``_loss`` and
    ``predict_ab``; see ``Objective``."""

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float,
        betas: tuple[float, float],
        weight_decay: float,
        precision: Precision,
        spec: ModelSpec,
        ddp: bool = False,
    ) -> None:
        self.model = model.to(precision.device)
        if precision.device.type == "cuda":  # NHWC: tensor-core convolutions without transposes
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.net = wrap_ddp(self.model, precision.device, ddp)
        self.precision = precision
        self.optimizer = adam(self.model, lr, betas, weight_decay)
        self.scaler = precision.scaler()
        self.models: dict[str, nn.Module] = {"model": self.model}
        self.optimizers: dict[str, torch.optim.Optimizer] = {"model": self.optimizer}
        self.scalers: dict[str, torch.amp.GradScaler] = {"model": self.scaler}
        self.spec = spec

    def set_lr(self, lr: float) -> None:
        set_lr(self.optimizer, lr)

    @abc.abstractmethod
    def prepare(self, lum: torch.Tensor, ab: torch.Tensor) -> Any:
        """The training targets of a batch (no gradients)."""

    @abc.abstractmethod
    def _loss(self, out: torch.Tensor, targets: Any) -> torch.Tensor:
        """The objective loss of the network output ``out`` against ``targets``."""

    @abc.abstractmethod
    def predict_ab(self, lum: torch.Tensor) -> torch.Tensor:
        """The colorization in Lab units at the input size."""

    def train_step(
        self, lum: torch.Tensor, ab: torch.Tensor, targets: Any, scale: float
    ) -> dict[str, torch.Tensor]:
        loss = self._loss(self.precision.run(self.net, lum), targets)
        optimizer_step(self.optimizer, self.scaler, loss, scale)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def val_loss(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        out = self.precision.run(self.model, lum)
        return self._loss(out, self.prepare(lum, ab)).detach()


@contextlib.contextmanager
def eval_mode(models: dict[str, nn.Module]) -> Iterator[None]:
    """Put every module in eval mode for the block, restoring train mode after."""
    modes = {name: m.training for name, m in models.items()}
    for m in models.values():
        m.eval()
    try:
        yield
    finally:
        for name, m in models.items():
            m.train(modes[name])

"""Regression and conditional-GAN steps (pix2pix family).

Regression: a network L -> ab (unit scale, tanh) trained with L1 or L2 against the true ab / 110
(the unet, or the eccv16 trunk with a regression head, whose quarter-resolution output is
compared with the area-downsampled truth).

cGAN step, as the algorithm reads: the generator colorizes; the discriminator is updated on
(L, true ab) against (L, generated ab) with the chosen GAN loss (+ gradient penalty for wgan-gp,
+ R1 on real samples when gamma > 0), then the generator is updated with
``lambda_gan * L_GAN + lambda_l1 * L1`` through the frozen discriminator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorcli import losses
from colorcli.color.lab import ab_from_unit, ab_to_unit
from colorcli.training.classification import downsample_ab
from colorcli.training.common import (
    ModelSpec,
    Precision,
    SingleModelObjective,
    adam,
    optimizer_step,
    set_lr,
    set_requires_grad,
    wrap_ddp,
)


def _reconstruction(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "l1":
        return losses.l1_loss(pred, target)
    if kind == "l2":
        return losses.l2_loss(pred, target)
    raise ValueError(f"unknown reconstruction loss {kind!r} (l1, l2)")


class RegressionObjective(SingleModelObjective):
    """L -> ab regression with an L1 or L2 loss in unit scale; see ``common.Objective``."""

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: str,
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
        self.loss = loss

    @torch.no_grad()
    def prepare(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return ab_to_unit(ab)

    def _loss(self, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = downsample_ab(targets, (out.shape[-2], out.shape[-1]))
        return _reconstruction(self.loss, out.float(), targets)

    @torch.no_grad()
    def predict_ab(self, lum: torch.Tensor) -> torch.Tensor:
        pred = self.precision.run(self.model, lum)
        ab = ab_from_unit(pred.float())
        if ab.shape[-2:] != lum.shape[-2:]:
            ab = F.interpolate(ab, size=lum.shape[-2:], mode="bilinear", align_corners=False)
        return ab


class CGANObjective:
    """pix2pix-style cGAN: unet generator + PatchGAN discriminator; see ``common.Objective``.

    The discriminator's gradients are averaged across processes explicitly
    (``average_gradients``): it runs several forward passes per update, which
    DistributedDataParallel does not allow; the generator is wrapped in DDP as usual.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        gan: str,
        lambda_gan: float,
        lambda_l1: float,
        r1_gamma: float,
        label_smoothing: float,
        lr: float,
        betas: tuple[float, float],
        weight_decay: float,
        precision: Precision,
        spec: ModelSpec,
        ddp: bool = False,
    ) -> None:
        device = precision.device
        self.generator = generator.to(device)
        self.discriminator = discriminator.to(device)
        self.g_net = wrap_ddp(self.generator, device, ddp)
        self.gan = gan
        self.lambda_gan = lambda_gan
        self.lambda_l1 = lambda_l1
        self.r1_gamma = r1_gamma
        self.label_smoothing = label_smoothing
        self.precision = precision
        self.opt_g = adam(self.generator, lr, betas, weight_decay)
        self.opt_d = adam(self.discriminator, lr, betas, weight_decay)
        self.scaler_g = precision.scaler()
        self.scaler_d = precision.scaler()
        self.models: dict[str, nn.Module] = {
            "model": self.generator,
            "discriminator": self.discriminator,
        }
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "model": self.opt_g,
            "discriminator": self.opt_d,
        }
        self.scalers: dict[str, torch.amp.GradScaler] = {
            "model": self.scaler_g,
            "discriminator": self.scaler_d,
        }
        self.spec = spec

    def set_lr(self, lr: float) -> None:
        set_lr(self.opt_g, lr)
        set_lr(self.opt_d, lr)

    @torch.no_grad()
    def prepare(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return ab_to_unit(ab)

    def _d_loss(self, lum: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        d = self.discriminator
        need_r1 = self.r1_gamma > 0
        real_in = real.detach().requires_grad_(need_r1)
        with self.precision.autocast():
            real_scores = d(lum, real_in)
            fake_scores = d(lum, fake.detach())
        loss = losses.gan_d_loss(
            self.gan,
            real_scores.float(),
            fake_scores.float(),
            label_smoothing=self.label_smoothing,
            d_scale=1.0 if self.gan == "wgan-gp" else 0.5,
        )
        if self.gan == "wgan-gp":
            loss = loss + losses.gradient_penalty(d, lum, real, fake.detach())
        if need_r1:
            loss = loss + losses.r1_penalty(real_scores.float(), real_in, self.r1_gamma)
        return loss

    def train_step(
        self, lum: torch.Tensor, ab: torch.Tensor, targets: torch.Tensor, scale: float
    ) -> dict[str, torch.Tensor]:
        real = targets
        fake = self.precision.run(self.g_net, lum)

        # 1. discriminator: real vs generated (generator output detached)
        set_requires_grad(self.discriminator, True)
        loss_d = self._d_loss(lum, real, fake)
        optimizer_step(self.opt_d, self.scaler_d, loss_d, scale, sync=self.discriminator)

        # 2. generator: fool the (frozen) discriminator and stay close to the truth
        set_requires_grad(self.discriminator, False)
        fake_scores = self.precision.run(self.discriminator, lum, fake)
        gan_g = losses.gan_g_loss(self.gan, fake_scores.float())
        l1 = losses.l1_loss(fake.float(), real)
        loss_g = losses.generator_loss(self.lambda_gan, gan_g, self.lambda_l1, l1)
        optimizer_step(self.opt_g, self.scaler_g, loss_g, scale)
        set_requires_grad(self.discriminator, True)
        return {
            "loss": loss_g.detach(),
            "loss_d": loss_d.detach(),
            "gan_g": gan_g.detach(),
            "l1": l1.detach(),
        }

    @torch.no_grad()
    def val_loss(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """The generator's L1 error in unit scale (the GAN terms have no fixed scale)."""
        pred = self.precision.run(self.generator, lum)
        return losses.l1_loss(pred.float(), ab_to_unit(ab)).detach()

    @torch.no_grad()
    def predict_ab(self, lum: torch.Tensor) -> torch.Tensor:
        pred = self.precision.run(self.generator, lum)
        return ab_from_unit(pred.float())

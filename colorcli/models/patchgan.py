"""Discriminators on (L, ab): the pix2pix 70x70 PatchGAN and an EBGAN autoencoder.

Both take L ``(B, 1, H, W)`` in [0, 100] (normalised inside with ``(L - l_center) / l_range``,
by default to [-1, 1]) and ab ``(B, 2, H, W)`` in unit scale [-1, 1] (what the U-Net outputs;
real ab divided by the ab scale), concatenated into 3 channels.

- ``patchgan`` returns raw scores (logits for the vanilla GAN, critic values for WGAN): a map
  ``(B, 1, h, w)`` (30x30 on 256x256 input), each value judging one 70x70 patch; with
  ``global_pool=True`` the mean of that map, ``(B,)`` (a single realism score per image).
- ``ebgan-ae`` is the energy-based GAN discriminator (Zhao et al. 2017): an autoencoder whose
  energy is the per-sample reconstruction error ``mean((AE(x) - x)^2)``, ``(B,)``; low energy
  means "looks real". The EBGAN losses in ``colorcli.losses`` take these energies as scores.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from colorcli import choices
from colorcli.models.registry import register_model

NormKind = str  # a value of choices.CriticNorm
NORMS: tuple[str, ...] = choices.values(choices.CriticNorm)


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels)
    return nn.Identity()


def _conv(norm: str, c_in: int, c_out: int, stride: int, transpose: bool = False) -> nn.Module:
    """4x4 conv (padding 1); no bias before BatchNorm; spectral normalisation if asked."""
    cls = nn.ConvTranspose2d if transpose else nn.Conv2d
    conv = cls(c_in, c_out, kernel_size=4, stride=stride, padding=1, bias=norm != "batch")
    return spectral_norm(conv) if norm == "spectral" else conv


def _check_inputs(lum: torch.Tensor, ab: torch.Tensor) -> None:
    if lum.dim() != 4 or lum.shape[1] != 1:
        raise ValueError(f"L must have shape (B, 1, H, W), got {tuple(lum.shape)}")
    if ab.dim() != 4 or ab.shape[1] != 2 or ab.shape[-2:] != lum.shape[-2:]:
        raise ValueError(f"ab must have shape (B, 2, H, W) like L, got {tuple(ab.shape)}")


class _Conditional(nn.Module):
    def __init__(self, norm: str, l_center: float, l_range: float) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if l_range == 0:
            raise ValueError("l_range must be non-zero")
        self.norm = norm
        self.l_center = float(l_center)
        self.l_range = float(l_range)

    def joined(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """The 3-channel network input: normalised L and unit-scale ab."""
        _check_inputs(lum, ab)
        return torch.cat([(lum - self.l_center) / self.l_range, ab.to(lum.dtype)], dim=1)


@register_model("patchgan")
class PatchGAN(_Conditional):
    """pix2pix 70x70 PatchGAN: C64 (no norm) - C128 - C256 - C512 (stride 1) - conv to 1.

    Args:
        width: channels of the first layer (64); doubling per layer, capped at ``8 * width``.
        n_layers: stride-2 layers (3 gives the 70x70 receptive field).
        norm: "batch" (pix2pix), "instance", "none" or "spectral" (use "none"/"spectral"/
            "instance" for WGAN-GP, whose penalty assumes per-sample critics).
        global_pool: return the mean score per image ``(B,)`` instead of the patch map.
        l_center, l_range: L normalisation (defaults map [0, 100] to [-1, 1]).

    ``forward(L, ab)`` -> ``(B, 1, h, w)`` raw scores, or ``(B,)`` with ``global_pool``.
    """

    kind = "discriminator"

    def __init__(
        self,
        width: int = 64,
        n_layers: int = 3,
        norm: NormKind = "batch",
        global_pool: bool = False,
        l_center: float = 50.0,
        l_range: float = 50.0,
    ) -> None:
        super().__init__(norm, l_center, l_range)
        if width < 1 or n_layers < 1:
            raise ValueError(f"width and n_layers must be >= 1, got {width}, {n_layers}")
        self.global_pool = bool(global_pool)
        conv_norm = "spectral" if norm == "spectral" else "none"
        layers: list[nn.Module] = [_conv(conv_norm, 3, width, 2), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n_layers + 1):
            c_out = width * 2 ** min(i, 3)
            stride = 2 if i < n_layers else 1
            layers += [_conv(norm, c, c_out, stride), _norm_layer(norm, c_out), nn.LeakyReLU(0.2)]
            c = c_out
        layers.append(_conv(conv_norm, c, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.net(self.joined(lum, ab))
        return scores.mean(dim=(1, 2, 3)) if self.global_pool else scores


@register_model("ebgan-ae")
class EBGANAutoencoder(_Conditional):
    """EBGAN discriminator: a 3-level conv autoencoder; ``forward(L, ab)`` -> energy ``(B,)``.

    Encoder 4x4 stride-2 convs ``width``, ``2 width``, ``4 width`` with LeakyReLU(0.2) (norm after
    all but the first); decoder mirrors it with transposed convs and ReLU, ending linear to 3
    channels. Energy = mean squared reconstruction error of the normalised (L, ab) input.
    Sides must be multiples of 8.
    """

    kind = "discriminator"
    size_multiple = 8

    def __init__(
        self,
        width: int = 64,
        norm: NormKind = "batch",
        l_center: float = 50.0,
        l_range: float = 50.0,
    ) -> None:
        super().__init__(norm, l_center, l_range)
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        conv_norm = "spectral" if norm == "spectral" else "none"
        w1, w2, w3 = width, 2 * width, 4 * width
        self.encoder = nn.Sequential(
            _conv(conv_norm, 3, w1, 2),
            nn.LeakyReLU(0.2),
            _conv(norm, w1, w2, 2),
            _norm_layer(norm, w2),
            nn.LeakyReLU(0.2),
            _conv(norm, w2, w3, 2),
            _norm_layer(norm, w3),
            nn.LeakyReLU(0.2),
        )
        self.decoder = nn.Sequential(
            _conv(norm, w3, w2, 2, transpose=True),
            _norm_layer(norm, w2),
            nn.ReLU(),
            _conv(norm, w2, w1, 2, transpose=True),
            _norm_layer(norm, w1),
            nn.ReLU(),
            _conv(conv_norm, w1, 3, 2, transpose=True),
        )

    def reconstruct(self, lum: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(network input, its reconstruction), both ``(B, 3, H, W)``."""
        x = self.joined(lum, ab)
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"input size {tuple(x.shape[-2:])} is not a multiple of 8")
        return x, self.decoder(self.encoder(x))

    def forward(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        x, rec = self.reconstruct(lum, ab)
        return (rec - x).square().mean(dim=(1, 2, 3))

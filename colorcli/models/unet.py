"""The pix2pix U-Net generator (Isola et al. 2017) as a colorizer: L -> ab through tanh.

Encoder: ``depth`` 4x4 stride-2 convs, each followed by BatchNorm and LeakyReLU(0.2) (the first
without BatchNorm; the innermost without BatchNorm, as in pix2pix, so a 1x1 bottleneck never
meets a batch statistic of one value). Channels: ``width`` doubling per level, capped at
``8 * width``. Decoder: 4x4 stride-2 transposed convs with ReLU before them, BatchNorm after them,
and skip concatenations with the mirrored encoder level; dropout 0.5 in the first three decoder
layers (the paper's "CD512" layers); the outermost transposed conv goes to 2 channels and tanh.

Convs followed by BatchNorm carry no bias; the others do.

Input sizes must be multiples of ``2 ** depth`` (``size_multiple``); ``LoadedModel`` pads and
crops other sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colorcli.models.registry import Family, register_family, register_model

DROPOUT_LAYERS = 3
DROPOUT_P = 0.5


def unet_size_multiple(depth: int = 8, **_: Any) -> int:
    """Input sides of a U-Net with ``depth`` downsamplings must be multiples of this."""
    return int(2 ** max(depth, 0))  # a depth below 2 fails in the constructor, not here


@register_model("unet", size_multiple=unet_size_multiple)
class UNet(nn.Module):
    """pix2pix U-Net generator.

    Args:
        depth: number of stride-2 downsamplings (8 in pix2pix: 256 -> 1).
        width: channels of the first level (64 in pix2pix); level i has
            ``width * 2 ** min(i, 3)`` channels.
        dropout_at_test: keep the decoder dropout active in eval mode (seed 002 used it as the
            noise source); off by default so colorization is deterministic. May be changed on a
            built model by setting the attribute.
        l_center, l_range: input normalisation ``(L - l_center) / l_range`` (defaults map
            [0, 100] to [-1, 1]; the checkpoint passes the values of ``colorcli.color.lab``).

    ``forward(L)``: L ``(B, 1, H, W)`` in [0, 100], H and W multiples of ``2 ** depth`` ->
    ab ``(B, 2, H, W)`` in unit scale [-1, 1].
    """

    kind = "regression"
    output_stride = 1

    def __init__(
        self,
        depth: int = 8,
        width: int = 64,
        dropout_at_test: bool = False,
        l_center: float = 50.0,
        l_range: float = 50.0,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        if l_range == 0:
            raise ValueError("l_range must be non-zero")
        self.depth = int(depth)
        self.width = int(width)
        self.dropout_at_test = bool(dropout_at_test)
        self.l_center = float(l_center)
        self.l_range = float(l_range)
        ch = [width * 2 ** min(i, 3) for i in range(depth)]

        self.down = nn.ModuleList()
        for i in range(depth):
            c_in = 1 if i == 0 else ch[i - 1]
            norm = 0 < i < depth - 1
            layers: list[nn.Module] = [
                nn.Conv2d(c_in, ch[i], kernel_size=4, stride=2, padding=1, bias=not norm)
            ]
            if norm:
                layers.append(nn.BatchNorm2d(ch[i]))
            self.down.append(nn.Sequential(*layers))

        # up[j] undoes down[depth - 1 - j]; its input is the previous decoder output
        # concatenated with the mirrored encoder output (only the bottleneck for j = 0).
        self.up = nn.ModuleList()
        for j in range(depth):
            i = depth - 1 - j
            c_in = ch[i] if j == 0 else 2 * ch[i]
            outermost = i == 0
            c_out = 2 if outermost else ch[i - 1]
            layers = [
                nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=outermost)
            ]
            if not outermost:
                layers.append(nn.BatchNorm2d(c_out))
            self.up.append(nn.Sequential(*layers))
        self.n_dropout = min(DROPOUT_LAYERS, depth - 1)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return unet_size_multiple(self.depth)

    def forward(self, lum: torch.Tensor) -> torch.Tensor:
        if lum.dim() != 4 or lum.shape[1] != 1:
            raise ValueError(f"input must be L with shape (B, 1, H, W), got {tuple(lum.shape)}")
        m = self.size_multiple
        if lum.shape[-2] % m or lum.shape[-1] % m:
            raise ValueError(
                f"input size {tuple(lum.shape[-2:])} is not a multiple of {m} (depth {self.depth})"
            )
        x = (lum - self.l_center) / self.l_range
        skips: list[torch.Tensor] = []
        for i, layer in enumerate(self.down):
            x = layer(x if i == 0 else F.leaky_relu(x, 0.2))
            skips.append(x)
        drop = self.training or self.dropout_at_test
        for j, layer in enumerate(self.up):
            if j > 0:
                x = torch.cat([x, skips[self.depth - 1 - j]], dim=1)
            x = layer(torch.relu(x))
            if j < self.n_dropout:
                x = F.dropout(x, DROPOUT_P, training=drop)
        return torch.tanh(x)


# --- training: the ``--arch unet`` family ------------------------------------------------------


def _arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    # --width multiplies pix2pix's 64 first-level channels
    return {"depth": options["depth"], "width": max(1, round(64 * options["width"]))}


def _describe(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "width": float(arguments.get("width", 64)) / 64.0,
        "depth": int(arguments.get("depth", 8)),
    }


def _crop_note(options: Mapping[str, Any]) -> str:
    return f" of depth {options['depth']}"


register_family(
    Family(
        "unet",
        models={"regression": "unet", "cgan": "unet"},
        arguments=_arguments,
        describe=_describe,
        quick={"width": 0.25},  # quick preset: a quarter of pix2pix's width
        crop_note=_crop_note,
    )
)

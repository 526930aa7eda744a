"""Zhang et al. (ECCV 2016) classification colorizer, built from named blocks.

Layout (checked against the authors' released PyTorch code): blocks 1-7 are 2-3 ``conv 3x3 +
ReLU`` followed by one BatchNorm; the last conv of blocks 1-3 has stride 2 (256 -> 32 feature
map); blocks 5-6 use dilation 2 (padding 2); every conv has a bias. Block 8 is a 4x4 stride-2
transposed conv (32 -> 64) and two 3x3 convs, each followed by ReLU, without BatchNorm; a 1x1 conv
(the head) gives the Q bin logits at a quarter of the input size.

The released network ends in softmax and a fixed 1x1 conv Q -> 2 (``model_out``: an expectation
over the bin centres); here the head's logits are the output and decoding happens outside the
model (annealed mean, mean or mode). ``convert_released_eccv16`` maps the released key names
(``model1.0.weight`` ... ``model8.6.bias``) onto this module's names.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from colorcli.models.registry import Family, register_family, register_model

# (channels at width 1.0, number of 3x3 convs, dilation, stride of the last conv) for blocks 1-7.
TRUNK_SPEC: tuple[tuple[int, int, int, int], ...] = (
    (64, 2, 1, 2),
    (128, 2, 1, 2),
    (256, 3, 1, 2),
    (512, 3, 1, 1),
    (512, 3, 2, 1),
    (512, 3, 2, 1),
    (512, 3, 1, 1),
)
# Block 8: channels and number of 3x3 convs after the transposed conv.
UP_CHANNELS = 256
UP_CONVS = 2


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


class ConvBlock(nn.Module):
    """``n`` x (conv 3x3 + ReLU), the last conv with ``stride``, then BatchNorm."""

    def __init__(self, c_in: int, c_out: int, n: int, dilation: int, stride: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(
                c_in if i == 0 else c_out,
                c_out,
                kernel_size=3,
                stride=stride if i == n - 1 else 1,
                padding=dilation,
                dilation=dilation,
                bias=True,
            )
            for i in range(n)
        )
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.norm(x)


class UpBlock(nn.Module):
    """Transposed conv 4x4 stride 2 (x2 upsampling) + ReLU, then ``n`` x (conv 3x3 + ReLU)."""

    def __init__(self, c_in: int, c_out: int, n: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=True)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_out, c_out, kernel_size=3, padding=1, bias=True) for _ in range(n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.up(x))
        for conv in self.convs:
            x = torch.relu(conv(x))
        return x


class _ECCV16Body(nn.Module):
    """The shared trunk (blocks 1-8) and input normalisation; subclasses add the head."""

    #: the input height/width must be a multiple of this (three stride-2 convs, one x2 up).
    size_multiple = 8
    #: output resolution = input resolution / output_stride.
    output_stride = 4

    def __init__(self, width: float, l_center: float, l_range: float) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        if l_range == 0:
            raise ValueError("l_range must be non-zero")
        self.width = float(width)
        self.l_center = float(l_center)
        self.l_range = float(l_range)
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = 1
        for i, (c, n, dilation, stride) in enumerate(TRUNK_SPEC, start=1):
            c_out = _scaled(c, width)
            blocks[f"block{i}"] = ConvBlock(c_in, c_out, n, dilation, stride)
            c_in = c_out
        self.up_channels = _scaled(UP_CHANNELS, width)
        blocks[f"block{len(TRUNK_SPEC) + 1}"] = UpBlock(c_in, self.up_channels, UP_CONVS)
        self.trunk = nn.Sequential(blocks)

    def features(self, lum: torch.Tensor) -> torch.Tensor:
        """L ``(B, 1, H, W)`` in [0, 100] -> block-8 features ``(B, C, H/4, W/4)``."""
        if lum.dim() != 4 or lum.shape[1] != 1:
            raise ValueError(f"input must be L with shape (B, 1, H, W), got {tuple(lum.shape)}")
        out: torch.Tensor = self.trunk((lum - self.l_center) / self.l_range)
        return out


@register_model("eccv16")
class ECCV16(_ECCV16Body):
    """Zhang et al.'s classification colorizer: L -> Q bin logits at a quarter resolution.

    Args:
        q: number of ab bins (313 for the reference gamut).
        width: channel multiplier; 1.0 is the published ~32.2 M-parameter network.
        l_center, l_range: input normalisation ``(L - l_center) / l_range`` (the checkpoint
            passes the values of ``colorcli.color.lab``; the defaults equal them).

    ``forward(L)``: L ``(B, 1, H, W)`` in [0, 100], H and W multiples of 8 ->
    logits ``(B, q, H/4, W/4)``.
    """

    kind = "classification"

    def __init__(
        self, q: int = 313, width: float = 1.0, l_center: float = 50.0, l_range: float = 100.0
    ) -> None:
        super().__init__(width, l_center, l_range)
        if q < 2:
            raise ValueError(f"q must be >= 2, got {q}")
        self.q = int(q)
        self.head = nn.Conv2d(self.up_channels, self.q, kernel_size=1, bias=True)

    def forward(self, lum: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(lum))
        return out


@register_model("eccv16-regression")
class ECCV16Regression(_ECCV16Body):
    """The eccv16 trunk with a regression head: L -> ab in unit scale (tanh), quarter resolution.

    This is the "L2 regression" baseline of Zhang et al. (Table 1): the same network with a
    2-channel output trained with an L2 loss. ``forward(L)``: ``(B, 1, H, W)`` in [0, 100] ->
    ``(B, 2, H/4, W/4)`` in [-1, 1] (multiply by the ab scale to get Lab units).
    """

    kind = "regression"

    def __init__(self, width: float = 1.0, l_center: float = 50.0, l_range: float = 100.0) -> None:
        super().__init__(width, l_center, l_range)
        self.head = nn.Conv2d(self.up_channels, 2, kernel_size=1, bias=True)

    def forward(self, lum: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.features(lum)))


# --- training: the ``--arch eccv16`` family ------------------------------------------------------


def _arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"width": options["width"]}


def _describe(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"width": float(arguments.get("width", 1.0))}


register_family(
    Family(
        "eccv16",
        models={"classification": "eccv16", "regression": "eccv16-regression"},
        arguments=_arguments,
        describe=_describe,
        # quick preset: a quarter of the published width trains on a CPU (training.config)
        quick={"width": 0.25, "batch_size": 16, "lr": 1e-3},
    )
)


_RELEASED_KEY = re.compile(r"^model(\d)\.(\d+)\.(.+)$")


def is_released_eccv16(state_dict: Mapping[str, object]) -> bool:
    """True when ``state_dict`` looks like the released eccv16 (``model1.0.weight`` ...)."""
    return "model1.0.weight" in state_dict and "model8.6.weight" in state_dict


def convert_released_eccv16(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the authors' released eccv16 state dict onto ``ECCV16`` key names.

    Released layout (``nn.Sequential`` indices, ReLUs at odd indices): in blocks 1-7 the convs sit
    at 0, 2(, 4) and the BatchNorm right after the last ReLU; block 8 has the transposed conv at
    0, convs at 2 and 4, and the 1x1 conv to the logits at 6 (our ``head``). ``model_out`` (the
    fixed softmax-expectation projection Q -> 2) is dropped: decoding is done outside the model.
    Raises ValueError on a key that fits no layer.
    """
    out: dict[str, torch.Tensor] = {}
    n_blocks = len(TRUNK_SPEC)
    for key, value in state_dict.items():
        if key.startswith("model_out."):
            continue
        m = _RELEASED_KEY.match(key)
        if m is None:
            raise ValueError(f"unexpected key {key!r} in a released eccv16 state dict")
        block, index, param = int(m.group(1)), int(m.group(2)), m.group(3)
        if 1 <= block <= n_blocks:
            n_convs = TRUNK_SPEC[block - 1][1]
            if index % 2 == 0 and index // 2 < n_convs:
                new = f"trunk.block{block}.convs.{index // 2}.{param}"
            elif index == 2 * n_convs:
                new = f"trunk.block{block}.norm.{param}"
            else:
                raise ValueError(f"unexpected key {key!r} in a released eccv16 state dict")
        elif block == n_blocks + 1:
            if index == 0:
                new = f"trunk.block{block}.up.{param}"
            elif index % 2 == 0 and 1 <= index // 2 <= UP_CONVS:
                new = f"trunk.block{block}.convs.{index // 2 - 1}.{param}"
            elif index == 2 * (UP_CONVS + 1):
                new = f"head.{param}"
            else:
                raise ValueError(f"unexpected key {key!r} in a released eccv16 state dict")
        else:
            raise ValueError(f"unexpected key {key!r} in a released eccv16 state dict")
        out[new] = value
    return out

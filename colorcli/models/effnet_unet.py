"""A U-Net colorizer on an ImageNet-pretrained EfficientNet-Lite encoder (the way every
colorizer users choose starts: DeOldify, DDColor, ChromaGAN), with Zhang et al.'s 313-bin head
(``effnet-unet``, classification) or a 2-channel ab head (``effnet-unet-regression``, for the
L1/L2 and cGAN objectives).

Encoder: ``EfficientNetLite`` (``encoder`` = "lite0" or "lite2") fed the gray sRGB value of L
through a folded 1-channel stem (see ``efficientnet_lite``). Decoder: from the stride-32 features,
``n`` up-stages, each a bilinear x2 upsampling, concatenation with the encoder's features at that
stride (16, 8, 4 and, for ``head_stride`` 2, 2) and two conv 3x3 + BatchNorm + ReLU. The head is a
1x1 conv: Q bin logits at ``head_stride`` (classification), or 2 channels through tanh, upsampled
bilinearly to the input size (regression).

``pretrained=True`` loads the ImageNet weights into the encoder in the constructor (the
``colorcli[pretrained]`` extra); a saved model file holds the whole state and is rebuilt with
``pretrained=False``. ``parameter_groups`` splits encoder and decoder so that training can give the
encoder a smaller learning rate; ``freeze_encoder_bn`` keeps the encoder's BatchNorm layers in
eval mode during training (their ImageNet statistics; batches of 16 on a CPU are too small to
re-estimate them well), while their affine parameters still learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from colorcli.models.efficientnet_lite import (
    EfficientNetLite,
    gray_srgb,
    load_pretrained,
    normalize,
)
from colorcli.models.registry import Family, register_family, register_model

#: decoder channels of the up-stages to strides 16, 8, 4, 2 at ``decoder_width`` 1.0.
DECODER_CHANNELS: tuple[int, ...] = (192, 128, 128, 64)
HEAD_STRIDES = (2, 4)


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]  # fmt: skip


class UpStage(nn.Module):
    """x2 bilinear upsampling, concatenation with the skip, two conv-BN-ReLU."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *_conv_bn_relu(c_in + c_skip, c_out), *_conv_bn_relu(c_out, c_out)
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        out: torch.Tensor = self.convs(torch.cat([x, skip], dim=1))
        return out


class _EffNetUNet(nn.Module):
    """Shared body; see the module docstring. ``forward(L)``: L ``(B, 1, H, W)`` in [0, 100], H
    and W multiples of 32 -> the head's output."""

    size_multiple = 32
    output_stride = 4

    def __init__(
        self,
        out_channels: int,
        encoder: str = "lite0",
        head_stride: int = 4,
        decoder_width: float = 1.0,
        pretrained: bool = False,
        freeze_encoder_bn: bool = True,
    ) -> None:
        super().__init__()
        if head_stride not in HEAD_STRIDES:
            raise ValueError(f"head_stride must be 2 or 4, got {head_stride}")
        if decoder_width <= 0:
            raise ValueError(f"decoder_width must be > 0, got {decoder_width}")
        self.encoder_name = encoder
        self.head_stride = int(head_stride)
        self.output_stride = self.head_stride
        self.freeze_encoder_bn = bool(freeze_encoder_bn)
        self.encoder = EfficientNetLite(encoder, in_channels=1, classifier=False)
        if pretrained:
            load_pretrained(self.encoder)
        taps = self.encoder.tap_channels  # strides 2, 4, 8, 16, 32
        n_up = 4 if head_stride == 2 else 3
        channels = [max(8, round(c * decoder_width)) for c in DECODER_CHANNELS[:n_up]]
        skips = [taps[3], taps[2], taps[1], taps[0]][:n_up]
        self.decoder = nn.ModuleList()
        c = taps[4]
        for c_skip, c_out in zip(skips, channels, strict=True):
            self.decoder.append(UpStage(c, c_skip, c_out))
            c = c_out
        self.head = nn.Conv2d(c, out_channels, 1)

    def train(self, mode: bool = True) -> _EffNetUNet:
        super().train(mode)
        if mode and self.freeze_encoder_bn:
            for m in self.encoder.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{"encoder": [...], "decoder": [...]}``: the pretrained part and the rest."""
        enc = list(self.encoder.parameters())
        ids = {id(p) for p in enc}
        return {"encoder": enc, "decoder": [p for p in self.parameters() if id(p) not in ids]}

    def _features(self, lum: torch.Tensor) -> torch.Tensor:
        if lum.dim() != 4 or lum.shape[1] != 1:
            raise ValueError(f"input must be L with shape (B, 1, H, W), got {tuple(lum.shape)}")
        if lum.shape[-2] % 32 or lum.shape[-1] % 32:
            raise ValueError(f"input size {tuple(lum.shape[-2:])} is not a multiple of 32")
        taps = self.encoder.features(normalize(gray_srgb(lum)))
        y = taps[4]
        for stage, skip in zip(self.decoder, [taps[3], taps[2], taps[1], taps[0]], strict=False):
            y = stage(y, skip)
        return y


@register_model("effnet-unet")
class EffNetUNet(_EffNetUNet):
    """Classification: ``forward(L)`` -> bin logits ``(B, q, H / head_stride, W / head_stride)``.

    Args: ``q`` bins (313); ``encoder`` "lite0" (default) or "lite2"; ``head_stride`` 4 or 2;
    ``decoder_width`` multiplies ``DECODER_CHANNELS``; ``pretrained`` loads the ImageNet encoder;
    ``freeze_encoder_bn`` (see the module docstring).
    """

    kind = "classification"

    def __init__(self, q: int = 313, **kwargs: Any) -> None:
        super().__init__(out_channels=q, **kwargs)
        self.q = int(q)

    def forward(self, lum: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self._features(lum))
        return out


@register_model("effnet-unet-regression")
class EffNetUNetRegression(_EffNetUNet):
    """Regression: ``forward(L)`` -> ab ``(B, 2, H, W)`` in unit scale (tanh), the head's
    stride-``head_stride`` output upsampled bilinearly to the input size. Arguments as
    ``effnet-unet`` without ``q``."""

    kind = "regression"
    output_stride = 1

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(out_channels=2, **kwargs)
        self.output_stride = 1

    def forward(self, lum: torch.Tensor) -> torch.Tensor:
        y = self.head(self._features(lum))
        y = F.interpolate(y, size=lum.shape[-2:], mode="bilinear", align_corners=False)
        return torch.tanh(y)


# --- training: the ``--arch effnet-unet`` family -----------------------------------------------


def _arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "encoder": options["encoder"],
        "head_stride": options["head_stride"],
        "decoder_width": options["width"],  # --width scales the decoder; the encoder is fixed
    }


def _describe(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "width": float(arguments.get("decoder_width", 1.0)),
        "encoder": str(arguments.get("encoder", "lite0")),
        "head_stride": int(arguments.get("head_stride", 4)),
    }


def _fresh_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"pretrained": True} if options["pretrained"] else {}


register_family(
    Family(
        "effnet-unet",
        models={
            "classification": "effnet-unet",
            "regression": "effnet-unet-regression",
            "cgan": "effnet-unet-regression",
        },
        arguments=_arguments,
        describe=_describe,
        fresh_arguments=_fresh_arguments,
        # measured on 2 CPU cores (weights/MODEL_CARD.md): a larger learning rate for the new
        # decoder, light weight decay, batch 16 and 160 px crops (multiples of 32; 192 px costs
        # 1.75x the time per step), the recipe of scripts/train_pretrained.sh
        defaults={"lr": 1e-3, "weight_decay": 1e-4, "batch_size": 16, "crop": 160},
    )
)

"""Every user-facing choice, once: str Enums that the CLI offers (``--help`` lists their values in
this order) and the core checks against (``values(Gan)`` is the tuple of accepted strings).

Imports nothing but the standard library, so that the CLI and the config modules stay torch-free.
A new model family is one entry in ``Arch`` (and its registration in ``colorcli.models``).
"""

from __future__ import annotations

from enum import Enum


class Objective(str, Enum):
    """``train --objective``: what the colorizer learns."""

    classification = "classification"
    regression = "regression"
    cgan = "cgan"


class Targets(str, Enum):
    """``train --targets``: classification targets (k nearest bins, or the nearest one)."""

    soft = "soft"
    onehot = "onehot"


class RegressionLoss(str, Enum):
    """``train --loss``: the regression loss."""

    l1 = "l1"
    l2 = "l2"


class Gan(str, Enum):
    """``train --gan``: the GAN objective of ``--objective cgan``."""

    vanilla = "vanilla"
    lsgan = "lsgan"
    wgan_gp = "wgan-gp"
    hinge = "hinge"
    ebgan = "ebgan"


class Arch(str, Enum):
    """``train --arch``: the colorizer families (auto: the preset's choice)."""

    auto = "auto"
    eccv16 = "eccv16"
    unet = "unet"
    effnet_unet = "effnet-unet"


class Encoder(str, Enum):
    """``train --encoder``: the EfficientNet-Lite variant of effnet-unet's encoder."""

    lite0 = "lite0"
    lite2 = "lite2"


class Preset(str, Enum):
    """``train --preset``: quick (CPU-sized defaults) or paper (the published schedules)."""

    quick = "quick"
    paper = "paper"


class Device(str, Enum):
    """``--device`` (auto: cuda > mps > cpu)."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Backend(str, Enum):
    """``colorize --backend``: the inference engine (``Colorizer.load``'s ``backend``)."""

    auto = "auto"
    onnx = "onnx"
    torch = "torch"


class OutputFormat(str, Enum):
    """``colorize --format`` (keep: the input's own format)."""

    keep = "keep"
    jpeg = "jpeg"
    png = "png"
    tiff = "tiff"
    webp = "webp"
    bmp = "bmp"


class EvalMetric(str, Enum):
    """``eval --metric`` (all: the metrics that need nothing but the photos)."""

    auc = "auc"
    psnr = "psnr"
    ssim = "ssim"
    colorfulness = "colorfulness"
    realism = "realism"
    interpretability = "interpretability"
    all = "all"


class CriticNorm(str, Enum):
    """``train-critic --norm``: the PatchGAN's normalisation."""

    instance = "instance"
    batch = "batch"
    none = "none"
    spectral = "spectral"


class QMode(str, Enum):
    """``rebalance --q-mode``: Q in lambda/Q, all bins or those with a non-zero prior."""

    all = "all"
    nonzero = "nonzero"


class Assignment(str, Enum):
    """``rebalance --assign``: a pixel counts for its nearest bin (hard) or its soft encoding."""

    hard = "hard"
    soft = "soft"


def values(choice: type[Enum], *, without: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The accepted strings of ``choice`` in their order, less ``without``:
    ``values(Arch, without=("auto",)) == ("eccv16", "unet", "effnet-unet")``."""
    return tuple(m.value for m in choice if m.value not in without)

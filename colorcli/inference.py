"""The in-memory colorization engine: ``Colorizer`` (a loaded model plus the full-resolution
pipeline around it), its ``ColorSettings``, and ``Prepared`` images between its stages.

The data path for one image::

    DecodedImage (imageio: upright, native 8/16-bit, alpha and metadata split off)
         -> L of the ORIGINAL pixels, full size, float32        (color.lab_np.luminance)
         -> [legacy scans only, on request: denoise, CLAHE]      (color.legacy.restore_luminance)
         -> L resized, long side = size, aspect kept (area average) -> model -> ab
         -> ab x saturation, upsampled bilinearly to the full size
         -> joined with the full-size L -> sRGB at the input's bit depth (lab_to_rgb_image)

Only the small L (long side ``size``) goes through the network; the full-size work is done on
float32 row strips with numpy/OpenCV (``color.lab_np``), so memory stays at a few copies of one
channel: a 24-megapixel scan needs well under 2 GB.

The network sees the photo at its own aspect ratio (``network_size``: the long side is the model's
input size, or ``size``), not squashed to a square as the reference eccv16 pipeline does, so a
face or a horizon keeps the proportions the network learned on (unstretched) crops; the model pads
the sides to its size multiple, and the ab it predicts is upsampled to the original size.
Images of one shape share a forward pass in a batch (``predict_by_shape``).

The three stages (``prepare``, ``predict_ab``, ``finish``) are separate so that a batch can run
them on different threads (``colorcli.colorize``). Torch is imported only by the torch backend:
on the onnx one (``colorcli.onnx``) the whole path is numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np

from colorcli import imageio
from colorcli.color.lab_np import lab_to_rgb_image, luminance
from colorcli.color.legacy import detect_legacy, restore_luminance, thumbnail
from colorcli.errors import UsageError

if TYPE_CHECKING:
    import torch
    from PIL import Image

LegacyMode = Literal["auto", "on", "off"]

#: The side-by-side comparison image is scaled so that its longer side is at most this.
COMPARE_MAX_SIDE = 2048


@dataclass(frozen=True)
class ColorSettings:
    """How each image is colorized (independent of where files go).

    size: long side of the network input (None: the model's own). temperature: annealed-mean T
    (None: the model file's). saturation: factor on the predicted ab (0 gives gray, 1 as predicted).
    legacy: "auto" detects monochrome/tinted scans, "on" treats every input as one, "off" none.
    Restoration (clahe, denoise) applies only to images treated as legacy scans.
    """

    size: int | None = None
    temperature: float | None = None
    saturation: float = 1.0
    legacy: LegacyMode = "auto"
    clahe: bool = False
    clahe_clip: float = 2.0
    denoise: bool = False
    denoise_strength: float = 7.0

    def __post_init__(self) -> None:
        if self.size is not None and not 16 <= self.size <= 4096:
            raise UsageError(f"--size must be between 16 and 4096, got {self.size}")
        if self.saturation < 0:
            raise UsageError(f"--saturation must be >= 0, got {self.saturation}")
        if self.temperature is not None and self.temperature <= 0:
            raise UsageError(f"--temperature must be > 0, got {self.temperature}")
        if self.legacy not in ("auto", "on", "off"):
            raise UsageError(f"legacy must be auto, on or off, got {self.legacy!r}")
        if self.clahe_clip <= 0 or self.denoise_strength <= 0:
            raise UsageError("--clahe-clip and --denoise-strength must be > 0")
        if self.legacy == "off" and (self.clahe or self.denoise):
            raise UsageError(
                "--clahe and --denoise restore old scans: they cannot be combined with --no-legacy"
            )


@dataclass
class Prepared:
    """An image ready for the network: its full-size L, the small network input, and what the
    writer needs (alpha, metadata, a comparison thumbnail)."""

    lum: np.ndarray  # (H, W) float32, [0, 100]
    l_small: np.ndarray  # (h, w) float32, long side = the network size
    decoded: imageio.DecodedImage  # pixels dropped (set to an empty array) once L is computed
    bit_depth: int
    legacy: str | None
    compare_left: np.ndarray | None = None  # (h, w, 3) uint8


#: ``predict(L (B, 1, S, S) float32 in [0, 100], temperature) -> ab (B, 2, S, S)``: torch
#: tensors on the torch backend, numpy arrays on the onnx one.
Predictor = Callable[[Any, "float | None"], Any]


class Colorizer:
    """A loaded model plus the full-resolution pipeline around it.

    ``Colorizer.load(spec, device).colorize(image)`` colorizes a PIL image or a numpy array
    (``(H, W)`` or ``(H, W, 3|4)``, uint8, uint16 or float in [0, 1]) and returns a PIL image of
    the same size (RGB, or RGBA when the input had alpha). ``colorize_array`` keeps the input's
    dtype (16-bit stays 16-bit). Colour inputs are recolorized from their L: their own colours
    are discarded.
    """

    def __init__(
        self,
        predict: Predictor,
        input_size: int,
        device: torch.device | str = "cpu",
        settings: ColorSettings | None = None,
        *,
        half: bool = False,
        name: str = "",
        backend: Literal["torch", "onnx"] = "torch",
    ) -> None:
        self._predict = predict
        self.input_size = int(input_size)
        self.backend = backend
        # onnx: ``predict`` takes and returns numpy arrays, and torch is never imported
        self.device: torch.device | str = "cpu"
        if backend == "torch":
            import torch

            self.device = torch.device(device)
        self.settings = settings or ColorSettings()
        self.half = bool(half)
        self.name = name

    @classmethod
    def load(
        cls,
        spec: str | os.PathLike[str] | None = None,
        device: str | None = None,
        settings: ColorSettings | None = None,
        *,
        half: bool | None = None,
        channels_last: bool | None = None,
        backend: str = "auto",
        **setting_kwargs: Any,
    ) -> Colorizer:
        """Load a model (path, ``hf://owner/repo[@rev]/file``, or None for the shipped default).

        ``device``: "auto"/None (cuda > mps > cpu), "cpu", "cuda:1"... ``half``: float16/bf16
        autocast (default: on for CUDA). ``channels_last``: NHWC memory format for the
        convolutions (default on: on CPU it measured 10-30 % faster for eccv16 with oneDNN, see
        benchmarks/bench_colorize.py; on CUDA it is what tensor cores want). Extra keyword
        arguments are ``ColorSettings`` fields (``saturation=1.2``, ``legacy="on"``...).
        ``backend``: "torch", "onnx" (ONNX Runtime on the CPU, without importing torch; the
        ``onnx`` extra) or "auto": onnx when onnxruntime is installed, the device is the CPU and
        the model's ``.onnx`` twin exists beside it or in the user cache or can be exported
        there once (``colorcli.onnx.backend.choose``), else torch.
        """
        from colorcli.onnx.backend import choose

        onnx_model = choose(spec, device, backend, half)
        if onnx_model is not None:
            name = str(spec) if spec is not None else "default"
            return cls(
                onnx_model.predict_ab,
                onnx_model.input_size,
                "cpu",
                replace(settings or ColorSettings(), **setting_kwargs),
                name=name,
                backend="onnx",
            )
        import torch

        from colorcli.checkpoint import load_model
        from colorcli.device import check_half, pick_device

        settings = replace(settings or ColorSettings(), **setting_kwargs)
        dev = pick_device(device)
        check_half(dev, half)
        loaded = load_model(spec, dev)
        on_cuda = dev.type == "cuda"
        nhwc = True if channels_last is None else channels_last
        if nhwc:
            loaded.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

        def predict(lum: torch.Tensor, temperature: float | None) -> torch.Tensor:
            if nhwc:
                lum = lum.contiguous(memory_format=torch.channels_last)
            return loaded.predict_ab(lum, temperature=temperature)

        name = str(spec) if spec is not None else "default"
        return cls(
            predict,
            loaded.input_size,
            dev,
            settings,
            half=on_cuda if half is None else half,
            name=name,
        )

    @property
    def size(self) -> int:
        """The long side of the network input."""
        return self.settings.size or self.input_size

    def with_settings(self, **changes: Any) -> Colorizer:
        """The same model with some ``ColorSettings`` changed."""
        return Colorizer(
            self._predict,
            self.input_size,
            self.device,
            replace(self.settings, **changes),
            half=self.half,
            name=self.name,
            backend=self.backend,
        )

    # -- the three stages -------------------------------------------------------------------

    def prepare(self, decoded: imageio.DecodedImage, compare: bool = False) -> Prepared:
        """Stage 1 (any thread): full-size L, legacy restoration, the small network input."""
        s = self.settings
        pixels = decoded.pixels
        if s.legacy == "on":
            legacy: str | None = "forced"
        elif s.legacy == "off":
            legacy = None
        else:
            legacy = detect_legacy(pixels)
        lum = luminance(pixels)
        if legacy and (s.clahe or s.denoise):
            lum = restore_luminance(
                lum,
                clahe=s.clahe,
                clahe_clip=s.clahe_clip,
                denoise=s.denoise,
                denoise_strength=s.denoise_strength,
            )
        left = None
        if compare:
            left = imageio.to_uint8(thumbnail(pixels, COMPARE_MAX_SIDE // 2))
            if left.ndim == 2:
                left = np.repeat(left[..., None], 3, axis=2)
        l_small = cv2.resize(lum, network_size(lum.shape, self.size), interpolation=cv2.INTER_AREA)
        bit_depth = decoded.bit_depth
        decoded.pixels = np.empty((0, 0), dtype=pixels.dtype)  # free the full-size pixels
        return Prepared(lum, l_small, decoded, bit_depth, legacy, left)

    def predict_ab(self, l_small: np.ndarray) -> np.ndarray:
        """Stage 2 (one thread): L ``(B, S, S)`` float32 -> ab ``(B, 2, S, S)`` float32."""
        if self.backend == "onnx":
            lum = np.ascontiguousarray(l_small, dtype=np.float32)[:, None]
            ab_np: np.ndarray = self._predict(lum, self.settings.temperature)
            return ab_np
        import torch

        from colorcli.device import autocast_dtype

        x = torch.from_numpy(np.ascontiguousarray(l_small, dtype=np.float32))[:, None]
        device = torch.device(self.device)
        dtype = autocast_dtype(device) if self.half else None
        with torch.inference_mode():
            x = x.to(device, non_blocking=True)
            if dtype is not None:
                with torch.autocast(device.type, dtype=dtype):
                    ab = self._predict(x, self.settings.temperature)
            else:
                ab = self._predict(x, self.settings.temperature)
            return ab.float().cpu().numpy()

    def finish(self, prepared: Prepared, ab_small: np.ndarray) -> np.ndarray:
        """Stage 3 (any thread): ab ``(2, S, S)`` -> full-size sRGB ``(H, W, 3)`` joined with
        the full-size L, at the input's bit depth."""
        h, w = prepared.lum.shape
        ab = np.ascontiguousarray(ab_small.transpose(1, 2, 0), dtype=np.float32)
        if self.settings.saturation != 1.0:
            ab *= np.float32(self.settings.saturation)
        ab_full = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
        if ab_full.ndim == 2:  # cv2 drops a trailing channel dim of 1 only; keep (H, W, 2)
            ab_full = ab_full[..., None]
        return lab_to_rgb_image(prepared.lum, ab_full, prepared.bit_depth)

    # -- in-memory API ------------------------------------------------------------------------

    def colorize_array(self, array: np.ndarray) -> np.ndarray:
        """``(H, W)`` / ``(H, W, 3)`` / ``(H, W, 4)`` uint8, uint16 or float [0, 1] -> colorized
        ``(H, W, 3)`` (or ``(H, W, 4)`` with the alpha passed through) of the same dtype."""
        decoded = imageio.decoded_from_array(array)
        rgb = self._colorize_decoded(decoded)
        out = rgb if decoded.alpha is None else np.dstack([rgb, decoded.alpha])
        if np.issubdtype(array.dtype, np.floating):
            return out.astype(np.float32) / np.float32(65535.0)
        return out

    def colorize(self, image: Image.Image | np.ndarray) -> Image.Image:
        """Colorize a PIL image (EXIF orientation applied) or an array; returns an 8-bit PIL
        image of the same (upright) size: RGB, or RGBA when the input has alpha."""
        from PIL import Image as PILImage

        decoded = (
            imageio.decoded_from_array(image)
            if isinstance(image, np.ndarray)
            else imageio.decoded_from_pil(image)
        )
        rgb = imageio.to_uint8(self._colorize_decoded(decoded))
        if decoded.alpha is None:
            return PILImage.fromarray(rgb, "RGB")
        return PILImage.fromarray(np.dstack([rgb, imageio.to_uint8(decoded.alpha)]), "RGBA")

    def _colorize_decoded(self, decoded: imageio.DecodedImage) -> np.ndarray:
        prepared = self.prepare(decoded)
        ab = self.predict_ab(prepared.l_small[None])[0]
        return self.finish(prepared, ab)


def network_size(shape: tuple[int, ...], side: int) -> tuple[int, int]:
    """(width, height) of the network input for an image of ``shape`` (H, W, ...): the long
    side is ``side``, the short side keeps the aspect ratio (at least 8 px); the model pads
    to its size multiple."""
    h, w = int(shape[0]), int(shape[1])
    scale = side / max(h, w)
    return max(8, round(w * scale)), max(8, round(h * scale))


def predict_by_shape(colorizer: Colorizer, smalls: list[np.ndarray]) -> list[np.ndarray]:
    """ab of each network input, one forward per group of equal shapes (in input order)."""
    out: list[np.ndarray | None] = [None] * len(smalls)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(smalls):
        groups.setdefault(x.shape, []).append(i)
    for idx in groups.values():
        abs_ = colorizer.predict_ab(np.stack([smalls[i] for i in idx]))
        for i, ab in zip(idx, abs_, strict=True):
            out[i] = ab
    return [a for a in out if a is not None]


__all__ = [
    "COMPARE_MAX_SIDE",
    "ColorSettings",
    "Colorizer",
    "LegacyMode",
    "Prepared",
    "network_size",
    "predict_by_shape",
]

"""Colorizer model files: save, copy, read, load for inference (``LoadedModel``).

A colorcli model file is a safetensors file (``colorcli.modelfile``): its tensors are the state
dict (float16 when saved with half=True), its header's metadata the self-description as JSON::

    format: "colorcli-model", version: 1,
    arch: registry name, arch_kwargs: constructor arguments (including the L normalisation),
    bins: (Q, 2) list of ab centres or None (regression / discriminator),
    decode: {"method": "annealed" | "mean" | "mode", "temperature": float},
    input_size: the network side used in training (e.g. 256),
    train_config: dict, metrics: dict, step: int, half: bool

Files written before (``torch.save`` of the same dict with the state dict and bins as tensors)
load through the same entry point with ``torch.load(weights_only=True)``; nothing is ever
unpickled and no code in a file runs. The file's content decides how it is read, not its name:
run folders keep calling theirs ``model.pt``.

``load_model`` also accepts the authors' released eccv16 state dict (``checkpoint.released``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from colorcli import modelfile
from colorcli.checkpoint.common import (
    CRITIC_FORMAT,
    DECODE_METHODS,
    DEFAULT_INPUT_SIZE,
    FORMAT,
    RESUME_FORMAT,
    VERSION,
    check_file_header,
    load_state,
    plain,
    read_content,
    unwrap_model,
)
from colorcli.checkpoint.locate import resolve_model_spec
from colorcli.checkpoint.released import from_released_eccv16
from colorcli.color.encode import DEFAULT_TEMPERATURE, DecodeMethod, decode
from colorcli.color.lab import ab_from_unit
from colorcli.device import pick_device
from colorcli.errors import BadWeights, ColorcliError, UsageError
from colorcli.models import create_model, list_models
from colorcli.models.eccv16 import is_released_eccv16

# ----------------------------------------------------------------------------- saving


def save_model(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    arch: str,
    arch_kwargs: Mapping[str, Any],
    bins: np.ndarray | torch.Tensor | None,
    decode: Mapping[str, Any] | None = None,
    input_size: int = DEFAULT_INPUT_SIZE,
    train_config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    step: int = 0,
    half: bool = False,
) -> Path:
    """Write a self-describing safetensors model file atomically (temp file + ``os.replace``),
    whatever the suffix of ``path``; returns its path.

    ``arch_kwargs`` must rebuild ``model`` through ``create_model(arch, **arch_kwargs)``; the
    model's input normalisation (``l_center``, ``l_range``) is added to them. ``decode`` is
    ``{"method": ..., "temperature": ...}`` (default annealed mean, T = 0.38). ``half`` stores
    floating tensors as float16 (about half the size; loaded back as float32).
    """
    model = unwrap_model(model)
    kwargs = dict(plain(dict(arch_kwargs), "arch_kwargs"))
    for name in ("l_center", "l_range"):
        if hasattr(model, name):
            kwargs.setdefault(name, float(getattr(model, name)))
    dec = {"method": "annealed", "temperature": DEFAULT_TEMPERATURE, **dict(decode or {})}
    if dec["method"] not in DECODE_METHODS:
        raise ValueError(f"decode method must be one of {DECODE_METHODS}, got {dec['method']!r}")
    bins_t = None
    if bins is not None:
        bins_t = torch.as_tensor(np.asarray(torch.as_tensor(bins).cpu(), dtype=np.float64))
        q = getattr(model, "q", None)
        if bins_t.dim() != 2 or bins_t.shape[1] != 2 or (q is not None and bins_t.shape[0] != q):
            raise ValueError(f"bins of shape {tuple(bins_t.shape)} do not fit the model (Q={q})")
    elif getattr(model, "kind", None) == "classification":
        raise ValueError("a classification model needs its bins")

    state = {}
    for k, v in model.state_dict().items():
        t = v.detach().to("cpu").clone()
        if half and t.is_floating_point():
            t = t.half()
        state[k] = t
    description = {
        "format": FORMAT,
        "version": VERSION,
        "arch": str(arch),
        "arch_kwargs": kwargs,
        "bins": None if bins_t is None else bins_t.tolist(),
        "decode": plain(dec, "decode"),
        "input_size": int(input_size),
        "train_config": plain(dict(train_config or {}), "train_config"),
        "metrics": plain(dict(metrics or {}), "metrics"),
        "step": int(step),
        "half": bool(half),
    }
    return modelfile.write_safetensors(path, state, description)


def copy_model(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    half: bool = True,
    decode: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    input_size: int | None = None,
) -> Path:
    """Rewrite the colorcli model file ``src`` (a path, ``hf://...`` or ``default``) as the
    safetensors file ``dst`` (atomically): ``half`` storage, ``decode``
    settings merged over the file's own, ``metrics`` in place of its metrics and ``input_size`` in
    place of its input size when given. Every other field (architecture, bins, training config,
    step) is kept."""
    path = resolve_model_spec(src)  # a path, hf://... or "default"
    loaded = load_model(path, device="cpu")
    raw = read_model_file(path)
    return save_model(
        dst,
        loaded.model,
        arch=raw["arch"],
        arch_kwargs=raw["arch_kwargs"],
        bins=raw["bins"],
        decode={**raw["decode"], **dict(decode or {})},
        input_size=raw["input_size"] if input_size is None else int(input_size),
        train_config=raw["train_config"],
        metrics=(raw.get("metrics") or {}) if metrics is None else metrics,
        step=raw["step"],
        half=half,
    )


# ----------------------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    """A model ready for inference, with everything needed to turn its output into ab.

    ``model`` is in eval mode on ``device``. ``bins`` is ``(Q, 2)`` float32 on ``device`` for
    classification models, None otherwise. ``meta`` holds ``train_config``, ``metrics``, ``step``
    and ``source`` (where the file came from).
    """

    model: nn.Module
    arch: str
    kind: str
    bins: torch.Tensor | None
    decode_method: DecodeMethod
    temperature: float
    input_size: int
    meta: dict[str, Any]
    device: torch.device
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def size_multiple(self) -> int:
        """Inputs to ``model`` must have sides that are multiples of this (predict_ab pads)."""
        return int(getattr(self.model, "size_multiple", 1))

    def _prepare(self, lum: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        if lum.dim() != 4 or lum.shape[1] != 1:
            raise ValueError(f"L must have shape (B, 1, H, W), got {tuple(lum.shape)}")
        h, w = int(lum.shape[-2]), int(lum.shape[-1])
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        x = lum.to(device=self.device, dtype=torch.float32)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return x, h, w

    @torch.inference_mode()
    def logits(self, lum: torch.Tensor) -> torch.Tensor:
        """Bin logits ``(B, Q, ceil(H/4), ceil(W/4))`` for L ``(B, 1, H, W)`` in [0, 100].

        Classification models only; sides that are not multiples of ``size_multiple`` are padded
        (edge replication) and the logits cropped back.
        """
        if self.kind != "classification":
            raise UsageError(f"{self.arch} is a {self.kind} model: it has no bin logits")
        x, h, w = self._prepare(lum)
        out: torch.Tensor = self.model(x)
        stride = x.shape[-2] // out.shape[-2]
        return out[..., : -(-h // stride), : -(-w // stride)]

    @torch.inference_mode()
    def predict_ab(
        self,
        lum: torch.Tensor,
        temperature: float | None = None,
        method: DecodeMethod | None = None,
    ) -> torch.Tensor:
        """L ``(B, 1, H, W)`` in [0, 100] -> ab ``(B, 2, H, W)`` in Lab units, at the input size.

        Classification: logits -> ``color.encode.decode`` (the file's method and temperature
        unless given) -> bilinear upsampling to the input size. Regression: tanh output x the ab
        scale (upsampled when the network works at a lower resolution). Inputs whose sides are
        not multiples of ``size_multiple`` are padded by edge replication and cropped back.
        """
        if self.kind == "discriminator":
            raise UsageError(f"{self.arch} is a discriminator: it cannot colorize")
        x, h, w = self._prepare(lum)
        out = self.model(x).float()
        if self.kind == "classification":
            assert self.bins is not None
            ab = decode(
                out,
                self.bins,
                method=method or self.decode_method,
                temperature=self.temperature if temperature is None else temperature,
            )
        else:
            ab = ab_from_unit(out)
        if ab.shape[-2:] != x.shape[-2:]:
            ab = F.interpolate(ab, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return ab[..., :h, :w].contiguous()


def read_model_file(spec: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The raw self-description of a colorcli model file (path, ``hf://...`` or the default):
    every field of the module docstring, ``state_dict`` and ``bins`` as tensors. BadWeights when
    it is not a colorcli model file (the released eccv16 included: it has no description)."""
    path = resolve_model_spec(spec)
    obj = read_content(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        _wrong_file(path, obj)
    return cast(dict[str, Any], obj)


def _wrong_file(path: Path, obj: Any) -> None:
    fmt = obj.get("format") if isinstance(obj, Mapping) else None
    if fmt == RESUME_FORMAT:
        raise BadWeights(
            f"{path}: a training resume file (optimizer state), not a model file: "
            f"use {path.with_name('model.pt')}"
        )
    if fmt == CRITIC_FORMAT:
        raise BadWeights(
            f"{path}: a critic file, not a colorizer (critics go to --critic or --hard-mining)"
        )
    raise BadWeights(
        f"{path}: not a colorcli model file (no {FORMAT!r} format tag) "
        "nor the authors' released eccv16 state dict"
    )


def _from_colorcli_file(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    version = check_file_header(path, obj, reads=VERSION)
    arch = obj["arch"]
    if not isinstance(arch, str) or arch not in list_models():
        raise BadWeights(
            f"{path}: unknown architecture {arch!r} (known: {', '.join(list_models())})"
        )
    kwargs = obj["arch_kwargs"]
    if not isinstance(kwargs, dict):
        raise BadWeights(f"{path}: arch_kwargs is not a dict")
    try:
        model = create_model(arch, **kwargs)
    except (ColorcliError, ValueError, TypeError) as exc:
        raise BadWeights(f"{path}: cannot build {arch} from its arguments ({exc})") from exc
    load_state(path, model, obj["state_dict"], arch)
    kind = str(cast(Any, model).kind)
    bins = obj.get("bins")
    if kind == "classification":
        if not isinstance(bins, torch.Tensor):
            raise BadWeights(f"{path}: classification model file without bins")
        q = int(cast(Any, model).q)
        if bins.dim() != 2 or tuple(bins.shape) != (q, 2):
            raise BadWeights(f"{path}: bins {tuple(bins.shape)} do not fit Q = {q}")
    else:
        bins = None
    dec = obj.get("decode") or {}
    method = dec.get("method", "annealed")
    if method not in DECODE_METHODS:
        raise BadWeights(f"{path}: unknown decode method {method!r}")
    return {
        "model": model,
        "arch": arch,
        "kind": kind,
        "bins": bins,
        "decode_method": method,
        "temperature": float(dec.get("temperature", DEFAULT_TEMPERATURE)),
        "input_size": int(obj.get("input_size", DEFAULT_INPUT_SIZE)),
        "meta": {
            "train_config": obj.get("train_config", {}),
            "metrics": obj.get("metrics", {}),
            "step": obj.get("step"),
            "format_version": version,
        },
        "arch_kwargs": dict(kwargs),
    }


def load_model(
    spec: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> LoadedModel:
    """Load a model for inference from a path, ``hf://owner/repo[@rev]/file`` or the default.

    ``spec`` None or ``"default"``: the shipped default (``default_model_path``). Accepts
    colorcli model files (safetensors or PyTorch) and the authors' released eccv16 state dict.
    Every problem with the file raises BadWeights with a one-line message naming it (a missing
    path: MissingFile, a usage error).
    ``cache_dir`` overrides the Hugging Face cache folder.
    """
    path = resolve_model_spec(spec, cache_dir)
    obj = read_content(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        parts = _from_colorcli_file(path, obj)
    elif isinstance(obj, Mapping) and is_released_eccv16(obj):
        parts = from_released_eccv16(path, obj)
    else:
        _wrong_file(path, obj)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model = parts.pop("model").to(dev).float().eval()
    bins = parts.pop("bins")
    if bins is not None:
        bins = bins.to(device=dev, dtype=torch.float32)
    parts["meta"]["source"] = str(spec) if spec is not None else str(path)
    return LoadedModel(model=model, bins=bins, device=dev, **parts)

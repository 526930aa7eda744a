"""Self-describing model files: save, load (local path, Hugging Face Hub, shipped default).

Every model file colorcli reads or writes has its format here: colorizer model files (below)
and critic files (``save_critic`` / ``read_critic``, at the end; scoring with a critic is
``colorcli.critic``). At about 680 lines this module is over the 500-line target on purpose:
it is the one home of every file format; a ``checkpoint/`` package (colorizer files, critic
files, locating files: Hub and shipped default) is the natural split.

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

``load_model`` also accepts the authors' released eccv16 state dict (``model1.0.weight`` ...,
``model_out.weight``; e.g. ``colorization_release_v2-9b330a0b.pth``): keys are mapped onto the
``eccv16`` module, the bins are the 313 reference centres.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from colorcli import modelfile
from colorcli.color.bins import reference_bins
from colorcli.color.encode import DEFAULT_TEMPERATURE, DecodeMethod, decode
from colorcli.color.lab import AB_SCALE, L_CENTER, L_RANGE, ab_from_unit
from colorcli.device import pick_device
from colorcli.errors import BadWeights, ColorcliError, UsageError
from colorcli.fsutil import atomic_torch_save
from colorcli.models import create_model, list_models
from colorcli.models.eccv16 import ECCV16, convert_released_eccv16, is_released_eccv16
from colorcli.weights import (  # the torch-free home of these; re-exported here
    DEFAULT_WEIGHTS_NAME as DEFAULT_WEIGHTS_NAME,
)
from colorcli.weights import LEGACY_WEIGHTS_NAME as LEGACY_WEIGHTS_NAME
from colorcli.weights import PACKAGED_WEIGHTS_DIR as PACKAGED_WEIGHTS_DIR
from colorcli.weights import WEIGHTS_ENV as WEIGHTS_ENV
from colorcli.weights import default_model_path as default_model_path
from colorcli.weights import repo_root as repo_root
from colorcli.weights import weights_dirs as weights_dirs

FORMAT = "colorcli-model"
VERSION = 1
DEFAULT_INPUT_SIZE = 256
RESUME_FORMAT = "colorcli-resume"  # training.saving.RESUME_FORMAT, named in a wrong-file hint
CRITIC_FORMAT = "colorcli-critic"
CRITIC_VERSION = 1
CRITIC_KIND = "critic"
CRITIC_ARCHS: tuple[str, ...] = ("patchgan",)
DECODE_METHODS: tuple[str, ...] = ("annealed", "mean", "mode")

_HF_SPEC = re.compile(r"^hf://([^/@\s]+)/([^/@\s]+)(?:@([^/\s]+))?/(.+)$")


# ----------------------------------------------------------------------------- saving


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain data storable under weights_only (paths and enums become strings)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return _plain(value.value, where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: cannot store a {type(value).__name__} in a model file")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


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
    kwargs = dict(_plain(dict(arch_kwargs), "arch_kwargs"))
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
        "decode": _plain(dec, "decode"),
        "input_size": int(input_size),
        "train_config": _plain(dict(train_config or {}), "train_config"),
        "metrics": _plain(dict(metrics or {}), "metrics"),
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


def parse_hf_spec(spec: str) -> tuple[str, str, str | None]:
    """``hf://owner/repo[@revision]/path/in/repo`` -> (repo_id, filename, revision or None)."""
    m = _HF_SPEC.match(spec)
    if m is None:
        raise UsageError(
            f"bad Hugging Face model spec {spec!r} (expected hf://owner/repo[@revision]/file)"
        )
    owner, name, revision, filename = m.groups()
    return f"{owner}/{name}", filename, revision


HF_PROBE_TIMEOUT_S = 3.0
"""How long ``hf_download`` waits for a TCP connection to the Hub before calling it offline
(huggingface_hub itself retries for about 25 s)."""


def _hub_unreachable(endpoint: str, timeout: float = HF_PROBE_TIMEOUT_S) -> str | None:
    """None when a TCP connection to ``endpoint`` (the Hub's URL) opens within ``timeout``
    seconds, else the reason. Skipped (None) when a proxy is configured: only the proxy knows."""
    import socket
    from urllib.parse import urlsplit

    proxies = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY")
    if any(os.environ.get(v) or os.environ.get(v.lower()) for v in proxies):
        return None
    url = urlsplit(endpoint)
    if not url.hostname:
        return None
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def hf_download(spec: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Fetch the file named by an ``hf://`` spec into the Hugging Face cache; returns its path.

    Honours ``HF_HUB_OFFLINE`` / ``HF_HUB_CACHE`` like every huggingface_hub download. Without
    a network (the Hub unreachable within ``HF_PROBE_TIMEOUT_S``) it fails at once, or returns
    the cached copy when there is one, instead of huggingface_hub's 25 s of retries.
    """
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    repo_id, filename, revision = parse_hf_spec(spec)
    cache = None if cache_dir is None else os.fspath(cache_dir)
    offline = constants.HF_HUB_OFFLINE
    reason = None if offline else _hub_unreachable(constants.ENDPOINT)
    if reason is not None:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache, revision=revision)
        if isinstance(cached, str):
            return Path(cached)
        raise BadWeights(
            f"{spec}: cannot reach {constants.ENDPOINT} ({reason}) and the file is not in the "
            "Hugging Face cache: connect once to download it (then HF_HUB_OFFLINE=1 uses the "
            "cached copy without the network)"
        )
    try:
        local = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache,
        )
    except Exception as exc:  # network, auth, missing repo/file, offline without a cached copy
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadWeights(f"{spec}: cannot download ({type(exc).__name__}: {reason})") from exc
    return Path(cast(str, local))


def resolve_model_spec(
    spec: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Turn a model spec (path, ``hf://...``, None or ``"default"``) into a local file path."""
    if spec is None or (isinstance(spec, str) and spec == "default"):
        path = default_model_path()
        if not path.is_file():
            raise BadWeights(
                f"no default model is shipped yet ({path} does not exist): pass a model file "
                f"with --model PATH or --model hf://owner/repo/file, or set {WEIGHTS_ENV}"
            )
        return path
    if isinstance(spec, str) and spec.startswith("hf://"):
        return hf_download(spec, cache_dir)
    return Path(spec).expanduser()


def _read(path: Path, what: str = "model file") -> Any:
    """The content of a model (or critic) file in either container (``colorcli.modelfile``), in
    the shape ``torch.save`` gave it: a colorcli model's bins as a float64 tensor."""
    obj = modelfile.read_file(path, what)
    if isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("bins"), list):
        try:
            obj["bins"] = torch.tensor(obj["bins"], dtype=torch.float64)
        except (TypeError, ValueError) as exc:
            raise BadWeights(f"{path}: bad bins in the model file ({exc})") from exc
    return obj


def read_model_file(spec: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The raw self-description of a colorcli model file (path, ``hf://...`` or the default):
    every field of the module docstring, ``state_dict`` and ``bins`` as tensors. BadWeights when
    it is not a colorcli model file (the released eccv16 included: it has no description)."""
    path = resolve_model_spec(spec)
    obj = _read(path)
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


def _load_state(path: Path, model: nn.Module, state: Mapping[str, Any], what: str) -> None:
    """Load ``state`` into ``model`` after checking names and shapes; one-line BadWeights."""
    own = model.state_dict()
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadWeights(f"{path}: state_dict holds values that are not tensors")
    state = dict(state)
    for k, v in own.items():  # files from older torch versions lack BatchNorm counters
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = v
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} "
                f"vs model {tuple(own[k].shape)}"
            )
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]}")
        raise BadWeights(f"{path}: weights do not fit {what}: {'; '.join(parts)}")
    model.load_state_dict(state)


def check_file_header(
    path: Path,
    obj: Mapping[str, Any],
    *,
    reads: int,
    format_name: str = "format",
    file_name: str = "model file",
) -> int:
    """The checks every self-describing colorcli file shares: a format ``version`` this code
    reads (1..``reads``) and the ``arch``, ``arch_kwargs`` and ``state_dict`` fields; a
    one-line ``BadWeights`` naming the file otherwise. Returns the version."""
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise BadWeights(f"{path}: bad {format_name} version {version!r}")
    if version > reads:
        raise BadWeights(
            f"{path}: written by a newer colorcli ({format_name} version {version}; "
            f"this version reads {reads})"
        )
    for key in ("arch", "arch_kwargs", "state_dict"):
        if key not in obj:
            raise BadWeights(f"{path}: {file_name} lacks its {key!r} field")
    return version


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
    _load_state(path, model, obj["state_dict"], arch)
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


def _from_released_eccv16(path: Path, obj: Mapping[str, Any]) -> dict[str, Any]:
    try:
        state = convert_released_eccv16(obj)
    except ValueError as exc:
        raise BadWeights(f"{path}: {exc}") from exc
    kwargs = {"q": 313, "width": 1.0, "l_center": L_CENTER, "l_range": L_RANGE}
    model = ECCV16(**kwargs)  # type: ignore[arg-type]
    _load_state(path, model, state, "the released eccv16 (Q = 313)")
    return {
        "model": model,
        "arch": "eccv16",
        "kind": "classification",
        "bins": torch.as_tensor(reference_bins()),
        "decode_method": "annealed",
        "temperature": DEFAULT_TEMPERATURE,
        "input_size": DEFAULT_INPUT_SIZE,
        "meta": {
            "train_config": {},
            "metrics": {},
            "step": None,
            "released": "Zhang et al. eccv16 state dict (keys mapped)",
        },
        "arch_kwargs": kwargs,
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
    obj = _read(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        parts = _from_colorcli_file(path, obj)
    elif isinstance(obj, Mapping) and is_released_eccv16(obj):
        parts = _from_released_eccv16(path, obj)
    else:
        _wrong_file(path, obj)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    model = parts.pop("model").to(dev).float().eval()
    bins = parts.pop("bins")
    if bins is not None:
        bins = bins.to(device=dev, dtype=torch.float32)
    parts["meta"]["source"] = str(spec) if spec is not None else str(path)
    return LoadedModel(model=model, bins=bins, device=dev, **parts)


# ----------------------------------------------------------------------------- critic files
#
# A critic file is ``torch.save`` of a dict of tensors and plain values (loads with
# ``torch.load(weights_only=True)``)::
#
#     format: "colorcli-critic", version: 1, kind: "critic",
#     arch: "patchgan", arch_kwargs: constructor arguments, state_dict: {name: tensor},
#     ab_scale: 110.0, input_size: the crop side used in training,
#     meta: {colorizer: {spec, path, name, sha256, arch, kind}, data_dirs, n_files, n_train,
#            n_val, steps, accuracy: {real, colorized, balanced, n, gray_skipped, on},
#            train_loss, train_accuracy, timing, bad_files, config}


def save_critic(
    path: str | os.PathLike[str],
    module: nn.Module,
    *,
    arch: str,
    arch_kwargs: Mapping[str, Any],
    input_size: int,
    meta: Mapping[str, Any],
    ab_scale: float = AB_SCALE,
) -> Path:
    """Write a self-describing critic file atomically; returns its path.

    ``arch_kwargs`` must rebuild ``module`` through ``create_model(arch, **arch_kwargs)``;
    ``meta`` must be plain data (strings, numbers, lists, dicts; paths and enums are turned into
    strings).
    """
    if arch not in CRITIC_ARCHS:
        raise ValueError(f"critic arch must be one of {CRITIC_ARCHS}, got {arch!r}")
    module = unwrap_model(module)
    payload = {
        "format": CRITIC_FORMAT,
        "version": CRITIC_VERSION,
        "kind": CRITIC_KIND,
        "arch": str(arch),
        "arch_kwargs": _plain(dict(arch_kwargs), "arch_kwargs"),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()},
        "ab_scale": float(ab_scale),
        "input_size": int(input_size),
        "meta": _plain(dict(meta), "meta"),
    }
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    return atomic_torch_save(payload, final)


def read_critic(
    spec: str | os.PathLike[str], device: str | torch.device | None = None
) -> dict[str, Any]:
    """The parts of a critic file (a path or ``hf://owner/repo[@rev]/file``): ``module`` (in
    eval mode on ``device``, parameters keeping ``requires_grad``), ``arch``, ``arch_kwargs``,
    ``input_size``, ``meta`` (with ``format_version``), ``path``, ``device`` and ``ab_scale``:
    the fields of ``colorcli.critic.LoadedCritic``.

    Every problem (missing, corrupt, a colorizer model file, a newer format) raises BadWeights
    with a one-line message naming the file.
    """
    if isinstance(spec, str) and spec in ("", "default"):
        raise UsageError("a critic must be given as a file (there is no default critic)")
    path = resolve_model_spec(spec)
    obj = _read(path)
    if not isinstance(obj, dict) or obj.get("format") != CRITIC_FORMAT:
        if isinstance(obj, dict) and obj.get("format") == FORMAT:
            raise BadWeights(
                f"{path}: is a colorcli model (colorizer) file, not a critic "
                "(train one with 'colorcli train-critic')"
            )
        raise BadWeights(f"{path}: not a colorcli critic file (no {CRITIC_FORMAT!r} format tag)")
    version = check_file_header(
        path, obj, reads=CRITIC_VERSION, format_name="critic format", file_name="critic file"
    )
    arch, kwargs = obj["arch"], obj["arch_kwargs"]
    if arch not in CRITIC_ARCHS:
        raise BadWeights(
            f"{path}: unknown critic architecture {arch!r} (known: {', '.join(CRITIC_ARCHS)})"
        )
    if not isinstance(kwargs, dict):
        raise BadWeights(f"{path}: arch_kwargs is not a dict")
    if not isinstance(obj["state_dict"], Mapping):
        raise BadWeights(f"{path}: state_dict is not a mapping")
    try:
        module = create_model(arch, **kwargs)
    except (ColorcliError, ValueError, TypeError) as exc:
        raise BadWeights(f"{path}: cannot build {arch} from its arguments ({exc})") from exc
    _load_state(path, module, obj["state_dict"], f"the critic {arch}")
    ab_scale = obj.get("ab_scale", AB_SCALE)
    if not isinstance(ab_scale, int | float) or not math.isfinite(ab_scale) or ab_scale <= 0:
        raise BadWeights(f"{path}: bad ab_scale {ab_scale!r}")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise BadWeights(f"{path}: meta is not a dict")
    dev = device if isinstance(device, torch.device) else pick_device(device)
    # parameters keep requires_grad: a fine-tuning run may go on training the critic
    module = module.to(dev).float().eval()
    return {
        "module": module,
        "arch": arch,
        "arch_kwargs": dict(kwargs),
        "input_size": int(obj.get("input_size", 256)),
        "meta": {**meta, "format_version": version},
        "path": path,
        "device": dev,
        "ab_scale": float(ab_scale),
    }

"""What every colorcli file shares: the format tags, plain-data fields, the state-dict check.

The tags of every self-describing file colorcli writes live here (colorizer model files, critic
files, and the training resume file, which is only named in a wrong-file hint), so that each
reader can tell the user which file it was given instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from colorcli import modelfile
from colorcli.errors import BadWeights

FORMAT = "colorcli-model"
VERSION = 1
DEFAULT_INPUT_SIZE = 256
RESUME_FORMAT = "colorcli-resume"  # the training resume file (training.saving writes it)
CRITIC_FORMAT = "colorcli-critic"
CRITIC_VERSION = 1
CRITIC_KIND = "critic"
CRITIC_ARCHS: tuple[str, ...] = ("patchgan",)
DECODE_METHODS: tuple[str, ...] = ("annealed", "mean", "mode")


def plain(value: Any, where: str) -> Any:
    """``value`` as plain data storable under weights_only (paths and enums become strings)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return plain(value.value, where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be strings, got {k!r}")
            out[k] = plain(v, f"{where}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{where}: cannot store a {type(value).__name__} in a model file")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def read_content(path: Path, what: str = "model file") -> Any:
    """The content of a model (or critic) file in either container (``colorcli.modelfile``), in
    the shape ``torch.save`` gave it: a colorcli model's bins as a float64 tensor."""
    obj = modelfile.read_file(path, what)
    if isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("bins"), list):
        try:
            obj["bins"] = torch.tensor(obj["bins"], dtype=torch.float64)
        except (TypeError, ValueError) as exc:
            raise BadWeights(f"{path}: bad bins in the model file ({exc})") from exc
    return obj


def load_state(path: Path, model: nn.Module, state: Mapping[str, Any], what: str) -> None:
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

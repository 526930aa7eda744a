"""Critic files: ``save_critic`` writes, ``read_critic`` reads (scoring with a critic is
``colorcli.critic``, training one ``colorcli.training.critic``).

A critic file is ``torch.save`` of a dict of tensors and plain values (loads with
``torch.load(weights_only=True)``)::

    format: "colorcli-critic", version: 1, kind: "critic",
    arch: "patchgan", arch_kwargs: constructor arguments, state_dict: {name: tensor},
    ab_scale: 110.0, input_size: the crop side used in training,
    meta: {colorizer: {spec, path, name, sha256, arch, kind}, data_dirs, n_files, n_train,
           n_val, steps, accuracy: {real, colorized, balanced, n, gray_skipped, on},
           train_loss, train_accuracy, timing, bad_files, config}
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colorcli.checkpoint.common import (
    CRITIC_ARCHS,
    CRITIC_FORMAT,
    CRITIC_KIND,
    CRITIC_VERSION,
    FORMAT,
    check_file_header,
    load_state,
    plain,
    read_content,
    unwrap_model,
)
from colorcli.checkpoint.locate import resolve_model_spec
from colorcli.color.lab import AB_SCALE
from colorcli.device import pick_device
from colorcli.errors import BadWeights, ColorcliError, UsageError
from colorcli.fsutil import atomic_torch_save
from colorcli.models import create_model


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
        "arch_kwargs": plain(dict(arch_kwargs), "arch_kwargs"),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()},
        "ab_scale": float(ab_scale),
        "input_size": int(input_size),
        "meta": plain(dict(meta), "meta"),
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
    obj = read_content(path)
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
    load_state(path, module, obj["state_dict"], f"the critic {arch}")
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

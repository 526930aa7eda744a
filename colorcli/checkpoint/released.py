"""The authors' released eccv16 state dict (``model1.0.weight`` ... ``model_out.weight``; e.g.
``colorization_release_v2-9b330a0b.pth``) read as a colorcli model: keys mapped onto the
``eccv16`` module (``models.eccv16.convert_released_eccv16``), the 313 reference bins, the
default decode settings. ``load_model`` takes it through the same entry point as its own files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from colorcli.checkpoint.common import DEFAULT_INPUT_SIZE, load_state
from colorcli.color.bins import reference_bins
from colorcli.color.encode import DEFAULT_TEMPERATURE
from colorcli.color.lab import L_CENTER, L_RANGE
from colorcli.errors import BadWeights
from colorcli.models.eccv16 import ECCV16, convert_released_eccv16


def from_released_eccv16(path: Path, obj: Mapping[str, Any]) -> dict[str, Any]:
    try:
        state = convert_released_eccv16(obj)
    except ValueError as exc:
        raise BadWeights(f"{path}: {exc}") from exc
    kwargs = {"q": 313, "width": 1.0, "l_center": L_CENTER, "l_range": L_RANGE}
    model = ECCV16(**kwargs)  # type: ignore[arg-type]
    load_state(path, model, state, "the released eccv16 (Q = 313)")
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

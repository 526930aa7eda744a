"""Device choice (cuda > mps > cpu) and the autocast policy."""

from __future__ import annotations

import torch

from colorcli.errors import UsageError


def pick_device(name: str | None = None) -> torch.device:
    """Return the requested device, or the best available one when ``name`` is None/"auto"."""
    if name is None or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} requested but CUDA is not available on this machine")
    return dev


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype: bf16 where CUDA supports it, else fp16; None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

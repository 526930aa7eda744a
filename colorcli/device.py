"""Device choice (cuda > mps > cpu) and the autocast policy."""

from __future__ import annotations

import torch

from colorcli.errors import UsageError

DEVICE_HELP = "use auto, cpu, cuda, cuda:N or mps"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(name: str | None = None) -> torch.device:
    """Return the requested device, or the best available one when ``name`` is None/"auto".

    Every device that this machine does not have is the same UsageError (exit 2): an unknown
    name, CUDA without a GPU or beyond the last GPU, MPS off macOS, other torch device types.
    """
    if name is None or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r} ({DEVICE_HELP})") from None
    missing = None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            missing = "CUDA is not available on this machine"
        elif dev.index is not None and dev.index >= torch.cuda.device_count():
            missing = f"this machine has {torch.cuda.device_count()} CUDA device(s)"
    elif dev.type == "mps":
        if not _mps_available():
            missing = "MPS (Apple silicon GPU) is not available on this machine"
    elif dev.type != "cpu":
        missing = f"colorcli runs on cpu, cuda or mps, not {dev.type}"
    if missing is not None:
        raise UsageError(f"device {name!r} requested but {missing} ({DEVICE_HELP})")
    return dev


def check_half(device: torch.device, half: bool | None) -> None:
    """UsageError for half precision asked for explicitly (``half`` True) off CUDA, where it
    would be silently ignored (the model computes in float32 there)."""
    if half and device.type != "cuda":
        raise UsageError(
            f"--half runs half precision on CUDA only; on {device.type} the model computes in "
            "float32: leave out --half"
        )


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype: bf16 where CUDA supports it, else fp16; None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

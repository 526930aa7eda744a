"""Encoding ab onto bins (soft / one-hot, sparse) and decoding bin distributions to ab."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

DecodeMethod = Literal["annealed", "mean", "mode"]
DEFAULT_TEMPERATURE = 0.38


def as_bins_tensor(bins: np.ndarray | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bins ``(Q, 2)`` as a tensor on ``like``'s device and floating dtype."""
    dtype = like.dtype if like.is_floating_point() else torch.float32
    return torch.as_tensor(bins).to(device=like.device, dtype=dtype)


def decode(
    logits: torch.Tensor,
    bins: np.ndarray | torch.Tensor,
    method: DecodeMethod = "annealed",
    temperature: float = DEFAULT_TEMPERATURE,
) -> torch.Tensor:
    """Bin logits ``(B, Q, H, W)`` -> ab ``(B, 2, H, W)`` in Lab units.

    ``annealed``: expectation of the bin centres under softmax(logits / T) (Zhang et al.,
    T = 0.38; T = 1 is the plain mean, T -> 0 the mode). ``mean``: T = 1. ``mode``: the centre
    of the most probable bin (ties -> lowest index).
    """
    if logits.dim() != 4:
        raise ValueError(f"logits must be (B, Q, H, W), got {tuple(logits.shape)}")
    centres = as_bins_tensor(bins, logits)
    if centres.shape != (logits.shape[1], 2):
        raise ValueError(f"bins {tuple(centres.shape)} do not match Q = {logits.shape[1]}")
    if method == "mode":
        idx = logits.argmax(dim=1)  # (B, H, W)
        return centres[idx].permute(0, 3, 1, 2).contiguous()
    if method == "mean":
        t = 1.0
    elif method == "annealed":
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        t = float(temperature)
    else:
        raise ValueError(f"unknown decode method {method!r} (annealed, mean, mode)")
    probs = torch.softmax(logits.float() / t, dim=1).to(centres.dtype)
    return torch.einsum("bqhw,qc->bchw", probs, centres)

"""Realism: a critic's (``colorcli.critic``) probability that L + a row's ab is a real photo, and
each row's fooling rate and least real-looking images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from colorcli.errors import UsageError
from colorcli.evaluate.config import REALISM_THRESHOLD, EvalConfig
from colorcli.evaluate.contact import ContactKeeper
from colorcli.evaluate.report import ImageResult, RealismSummary
from colorcli.evaluate.samples import Sample


class RealismScorer:
    """Scores predictions with the critic of ``config`` and keeps thumbnails of each row's least
    real-looking images (ground-truth excluded: it is not a colorization)."""

    def __init__(self, config: EvalConfig):
        from colorcli.critic import load_critic, min_input_side

        assert config.critic is not None
        self.critic = load_critic(config.critic, device=config.device)
        side = min_input_side(self.critic)
        if config.size < side:
            raise UsageError(
                f"--size {config.size} is too small for the critic {config.critic} "
                f"(it needs at least {side} px)"
            )
        self.keeper = ContactKeeper(config.worst, keep_best=False)
        meta = self.critic.meta
        self.info: dict[str, Any] = {
            "path": str(self.critic.path),
            "arch": self.critic.arch,
            "arch_kwargs": self.critic.arch_kwargs,
            "input_size": self.critic.input_size,
            "colorizer": meta.get("colorizer"),
            "accuracy": meta.get("accuracy"),
        }

    def score(
        self, model: str, sample: Sample, pred: torch.Tensor, pred_rgb: np.ndarray | None
    ) -> float:
        value = float(self.critic.realism(sample.L, pred)[0])
        if model != "ground-truth":
            self.keeper.offer(model, value, sample, pred, pred_rgb)
        return value


def realism_summary(images: Sequence[ImageResult], model: str, worst: int) -> RealismSummary:
    """The realism figures of ``model``'s row from the per-image values."""
    scored = [(r.values[model]["realism"], i, r.path) for i, r in enumerate(images)]
    judged = sum(1 for v, _, _ in scored if v > REALISM_THRESHOLD)
    lowest = sorted(scored, key=lambda t: (t[0], t[1]))[:worst] if model != "ground-truth" else []
    return RealismSummary(judged, len(scored), [(path, v) for v, _, path in lowest])

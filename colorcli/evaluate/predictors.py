"""The rows of a report: the baselines (``gray``, ``random``, ``ground-truth``) and trained models
(``LoadedPredictor``), each predicting ab from a ``Sample``'s L."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from colorcli.errors import ColorcliError
from colorcli.evaluate.config import EvalConfig
from colorcli.evaluate.samples import Sample, resize_rgb, to_lab
from colorcli.imageio import read_rgb


class Predictor(Protocol):
    name: str
    kind: str
    description: str

    def predict(self, sample: Sample) -> torch.Tensor:
        """ab ``(1, 2, S, S)`` float32 on the CPU, in Lab units, at the evaluation size."""
        ...


class GrayBaseline:
    name, kind, description = "gray", "baseline", "ab = 0 everywhere"

    def predict(self, sample: Sample) -> torch.Tensor:
        return torch.zeros_like(sample.ab)


class GroundTruthBaseline:
    name, kind, description = "ground-truth", "baseline", "the true ab (sanity row)"

    def predict(self, sample: Sample) -> torch.Tensor:
        return sample.ab.clone()


def random_partners(indices: Sequence[int], seed: int) -> dict[int, int]:
    """For each index, another index of ``indices`` drawn uniformly (seeded, reproducible).

    With a single image it is its own partner (the random baseline then equals the truth).
    """
    idx = list(indices)
    rng = np.random.default_rng(seed)
    out: dict[int, int] = {}
    for pos, i in enumerate(idx):
        if len(idx) == 1:
            out[i] = i
            continue
        j = int(rng.integers(len(idx) - 1))
        out[i] = idx[j + 1] if j >= pos else idx[j]  # skip the image itself
    return out


class RandomBaseline:
    name, kind = "random", "baseline"

    def __init__(self, files: Sequence[Path], partners: dict[int, int], size: int, seed: int):
        self.files = list(files)
        self.partners = partners
        self.size = size
        self.description = f"ab of another random image of the set (seed {seed})"

    def partner_ab(self, index: int) -> torch.Tensor:
        j = self.partners[index]
        rgb = resize_rgb(read_rgb(self.files[j]), self.size)
        return to_lab(rgb)[:, 1:]

    def predict(self, sample: Sample) -> torch.Tensor:
        return self.partner_ab(sample.index)


class LoadedPredictor:
    """A trained model from ``colorcli.checkpoint.load_model``."""

    kind = "model"

    def __init__(self, spec: str, device: str | None, temperature: float | None = None):
        from colorcli.checkpoint import load_model
        from colorcli.device import pick_device

        self.device = pick_device(device)
        self.model = load_model(spec, device=self.device)
        self.name = spec
        self.temperature = temperature
        self.description = f"{self.model.arch} ({self.model.kind})"
        if temperature is not None and self.model.kind == "classification":
            self.description += f", T = {temperature:g}"

    def predict(self, sample: Sample) -> torch.Tensor:
        with torch.inference_mode():
            ab = self.model.predict_ab(sample.L.to(self.device), temperature=self.temperature)
        ab = ab.detach().float().cpu()
        if ab.shape != sample.ab.shape:
            raise ColorcliError(
                f"model {self.name}: predicted ab {tuple(ab.shape)} does not match "
                f"{tuple(sample.ab.shape)}"
            )
        return ab


def make_predictors(
    names: Sequence[str], files: Sequence[Path], readable: Sequence[int], config: EvalConfig
) -> list[Any]:
    """One predictor per row name (``check_config``'s order): a baseline or a model spec; the
    random baseline pairs the ``readable`` images of ``files``."""
    predictors: list[Any] = []
    for name in names:
        if name == "gray":
            predictors.append(GrayBaseline())
        elif name == "ground-truth":
            predictors.append(GroundTruthBaseline())
        elif name == "random":
            predictors.append(
                RandomBaseline(
                    files, random_partners(readable, config.seed), config.size, config.seed
                )
            )
        else:
            predictors.append(LoadedPredictor(name, config.device, config.temperature))
    return predictors

"""Per-image scoring: every row's prediction of one sample against the truth (AuC curves, PSNR,
SSIM, colourfulness, realism, top-1 / top-5), at the evaluation size and at full resolution."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from colorcli import metrics as M
from colorcli.evaluate.config import EvalConfig, Metric
from colorcli.evaluate.contact import ContactKeeper
from colorcli.evaluate.interpretability import SemanticScorer
from colorcli.evaluate.prior import Prior, pixel_weights
from colorcli.evaluate.realism import RealismScorer
from colorcli.evaluate.report import ImageResult
from colorcli.evaluate.samples import Sample, join_rgb, upsample_ab


@dataclass
class Accumulator:
    """Sums of per-image AuC curves of one model (the mean curve is their average)."""

    plain: np.ndarray = field(default_factory=lambda: np.zeros(M.MAX_THRESHOLD + 1))
    rebal: np.ndarray = field(default_factory=lambda: np.zeros(M.MAX_THRESHOLD + 1))
    n: int = 0


def image_metrics(
    metric_set: Sequence[Metric],
    L: torch.Tensor,
    pred_ab: torch.Tensor,
    true_ab: torch.Tensor,
    true_rgb: np.ndarray,
    weights: torch.Tensor | None,
    gray: bool,
) -> tuple[dict[str, float], np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Metric values of one prediction, its plain and rebalanced curves (None for a gray image or
    when AuC is not requested) and its RGB ``(H, W, 3)`` float64 (None when not needed)."""
    values: dict[str, float] = {}
    plain = rebal = pred_rgb = None
    if "auc" in metric_set and not gray:
        plain = M.accuracy_curve(pred_ab, true_ab).numpy()
        values["auc"] = M.auc_from_curve(plain)
        if weights is not None:
            rebal = M.accuracy_curve(pred_ab, true_ab, weights).numpy()
            values["auc_rebal"] = M.auc_from_curve(rebal)
    if {"psnr", "ssim", "colorfulness"} & set(metric_set):
        pred_rgb = join_rgb(L, pred_ab)
        if "psnr" in metric_set:
            values["psnr"] = M.psnr(pred_rgb, true_rgb)
        if "ssim" in metric_set:
            values["ssim"] = M.ssim(pred_rgb, true_rgb)
        if "colorfulness" in metric_set:
            values["colorfulness"] = M.colorfulness(pred_rgb)
    return values, plain, rebal, pred_rgb


def evaluate_sample(
    sample: Sample,
    predictors: Sequence[Any],
    metric_set: Sequence[Metric],
    prior: Prior | None,
    config: EvalConfig,
    accs: dict[str, Accumulator],
    keeper: ContactKeeper,
    scorer: RealismScorer | None = None,
    semantic: SemanticScorer | None = None,
    label: int | None = None,
) -> ImageResult:
    """Every row's values for ``sample`` (``ImageResult``); adds each row's AuC curves to
    ``accs`` and offers its prediction to the contact sheet (``keeper``) and to the realism
    scorer's worst list. ``label``: the sample's ImageNet class when ``semantic`` scores it."""
    gray = M.is_grayscale_ab(sample.ab)
    result = ImageResult(sample.path, gray)
    weights = weights_full = None
    if prior is not None and not gray:
        weights = pixel_weights(sample.ab, prior)
        if config.full_res and sample.lab_full is not None:
            weights_full = pixel_weights(sample.lab_full[:, 1:], prior)
    for p in predictors:
        pred = p.predict(sample)
        values, plain, rebal, pred_rgb = image_metrics(
            metric_set, sample.L, pred, sample.ab, sample.rgb, weights, gray
        )
        acc = accs[p.name]
        if plain is not None:
            acc.plain += plain
            acc.n += 1
            if rebal is not None:
                acc.rebal += rebal
        if config.full_res and sample.lab_full is not None and sample.rgb_full is not None:
            lab_full = sample.lab_full
            pred_full = upsample_ab(pred, (lab_full.shape[2], lab_full.shape[3]))
            if p.name == "ground-truth":
                pred_full = lab_full[:, 1:].clone()
            full, _, _, _ = image_metrics(
                metric_set,
                lab_full[:, :1],
                pred_full,
                lab_full[:, 1:],
                sample.rgb_full,
                weights_full,
                gray,
            )
            values.update({f"{k}_full": v for k, v in full.items()})
        if scorer is not None:
            values["realism"] = scorer.score(p.name, sample, pred, pred_rgb)
        if semantic is not None and label is not None:
            rgb = pred_rgb if pred_rgb is not None else join_rgb(sample.L, pred)
            values["top1"], values["top5"] = semantic.score(rgb, label)
        if p.name == "ground-truth":  # identical to the truth by construction: the difference
            for k in ("psnr", "psnr_full"):  # left is float round-off (about 144 dB)
                if k in values:
                    values[k] = math.inf
        result.values[p.name] = values
        if "auc" in values and p.name != "ground-truth":
            keeper.offer(p.name, values["auc"], sample, pred, pred_rgb)
    return result

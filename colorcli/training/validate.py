"""Validation of a run: metrics of the current model on the fixed validation crops, the sample
grid, and the record in the metrics log with its loss curves (``validate_and_log``: one call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from colorcli import metrics
from colorcli.color.encode import nearest_bin
from colorcli.color.lab import lab_to_rgb
from colorcli.plots import training as plots
from colorcli.training.common import Objective, colour_mask, eval_mode, to_lab
from colorcli.training.config import TrainConfig
from colorcli.training.finetune import FinetuneObjective
from colorcli.training.metrics_log import MetricsLog
from colorcli.training.rundir import LOSS_PLOT, SAMPLES_DIR


def mean_colourfulness(lum: torch.Tensor, ab: torch.Tensor) -> float:
    """Mean Hasler-Suesstrunk colourfulness of the images (L ``(N, 1, H, W)``, ab in Lab units)."""
    rgb = lab_to_rgb(torch.cat([lum, ab], dim=1).float()).permute(0, 2, 3, 1).numpy()
    return float(np.mean([metrics.colorfulness(img.astype(np.float64)) for img in rgb]))


@torch.no_grad()
def validate(
    objective: Objective,
    val_rgb: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    stats: dict[str, Any],
    samples: Path,
) -> dict[str, float]:
    """The validation metrics of ``objective`` on the uint8 crops ``val_rgb`` ``(N, 3, c, c)``
    (loss, AuC and rebalanced AuC against gray, colourfulness, and the judge's realism when
    fine-tuning with one); writes the first ``sample_images`` as a grid to ``samples``."""
    c = config
    preds, truths, losses_, counts = [], [], [], []
    samples_l: list[torch.Tensor] = []
    lums: list[torch.Tensor] = []
    realism: list[torch.Tensor] = []
    gt_realism: list[torch.Tensor] = []
    judge = isinstance(objective, FinetuneObjective) and objective.judge is not None
    with eval_mode(objective.models):
        for i in range(0, len(val_rgb), c.batch_size):
            lum, ab = to_lab(val_rgb[i : i + c.batch_size], device)
            keep = colour_mask(ab)
            if bool(keep.any()):
                losses_.append(float(objective.val_loss(lum[keep], ab[keep])))
                counts.append(int(keep.sum()))
            pred = objective.predict_ab(lum)
            if judge:
                assert isinstance(objective, FinetuneObjective)
                realism.append(objective.realism(lum, pred.float(), judge=True).cpu())
                gt_realism.append(objective.realism(lum, ab, judge=True).cpu())
            preds.append(pred.float().cpu())
            truths.append(ab.cpu())
            lums.append(lum.cpu())
            if sum(len(s) for s in samples_l) < c.sample_images:
                samples_l.append(lum.cpu())
    out: dict[str, float] = {}
    if counts:
        out["val_loss"] = float(np.average(losses_, weights=counts))
    if preds:
        pred_all, true_all = torch.cat(preds), torch.cat(truths)
        out.update(_colour_metrics(pred_all, true_all, torch.cat(lums), stats))
        if realism:
            out["val_realism"] = float(torch.cat(realism).double().mean())
            out["gt_realism"] = float(torch.cat(gt_realism).double().mean())
        n = min(c.sample_images, len(pred_all))
        lum_s = torch.cat(samples_l)[:n]
        plots.save_sample_grid(samples, lum_s, pred_all[:n], true_all[:n])
    return out


def _colour_metrics(
    pred: torch.Tensor, true: torch.Tensor, lum: torch.Tensor, stats: dict[str, Any]
) -> dict[str, float]:
    """AuC of the prediction and of gray, plain and rebalanced (``stats``: bins and smoothed
    prior), and the colourfulness of the prediction and of the truth."""
    weights = metrics.pixel_weights_from_index(
        nearest_bin(true, stats["bins"]),
        metrics.bin_weights_lambda0(stats["prior_smoothed"]),
    )
    gray = torch.zeros_like(true)
    return {
        "val_auc": metrics.auc(pred, true),
        "val_auc_rebalanced": metrics.auc(pred, true, weights),
        "gray_auc": metrics.auc(gray, true),
        "gray_auc_rebalanced": metrics.auc(gray, true, weights),
        "val_colourfulness": mean_colourfulness(lum, pred),
        "gt_colourfulness": mean_colourfulness(lum, true),
    }


def validate_and_log(
    objective: Objective,
    step: int,
    val_rgb: torch.Tensor,
    *,
    config: TrainConfig,
    device: torch.device,
    stats: dict[str, Any],
    out: Path,
    log: MetricsLog,
) -> dict[str, float]:
    """Validate at ``step`` (rank 0 only), append the record to the log and redraw the loss
    curves; returns the metrics rounded to 6 decimals."""
    values = validate(
        objective, val_rgb, config, device, stats, out / SAMPLES_DIR / f"step{step}.png"
    )
    values = {k: round(v, 6) for k, v in values.items()}
    log.append({"step": step, "kind": "val", **values})
    log.plot_losses(out / LOSS_PLOT, f"{config.objective} loss")
    return values

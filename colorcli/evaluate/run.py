"""The run: ``evaluate`` reads the set once (twice when the prior or the random baseline needs a
first pass), scores every row on every image, then sums the figures up into an ``EvalReport``
and writes its files."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colorcli.errors import BadImage, EmptyDataset, UsageError
from colorcli.evaluate.config import (
    CONTACT_K,
    EvalConfig,
    check_config,
    report_metric_names,
)
from colorcli.evaluate.contact import ContactKeeper
from colorcli.evaluate.interpretability import SemanticScorer, gap_recovered, label_of
from colorcli.evaluate.output import save_report
from colorcli.evaluate.predictors import make_predictors
from colorcli.evaluate.prior import Prior, prepare_prior
from colorcli.evaluate.realism import RealismScorer, realism_summary
from colorcli.evaluate.report import (
    EvalProgress,
    EvalReport,
    ImageResult,
    ModelRow,
    OnProgress,
    Stat,
    summarize,
)
from colorcli.evaluate.samples import load_sample
from colorcli.evaluate.scoring import Accumulator, evaluate_sample
from colorcli.imageio import find_images


def evaluate(config: EvalConfig, on_image: OnProgress | None = None) -> EvalReport:
    """Run every model and baseline of ``config`` over the images of ``config.data_dir``.

    Raises EmptyDataset when the folder holds no image files, or when none of them is readable.
    """
    start = time.perf_counter()
    model_names = check_config(config)
    files = _list_files(config)
    metric_set = tuple(config.metrics)
    prior, failed = prepare_prior(config, files, model_names, on_image)
    readable = [i for i in range(len(files)) if i not in failed]
    predictors = make_predictors(model_names, files, readable, config)
    accs = {p.name: Accumulator() for p in predictors}
    keeper = ContactKeeper(CONTACT_K)
    scorer = RealismScorer(config) if "realism" in metric_set else None
    semantic, labels = _semantic_scorer(config, files)
    images: list[ImageResult] = []
    todo = [i for i in range(len(files)) if i not in failed]
    for n_done, i in enumerate(todo, start=1):
        path = files[i]
        err = None
        try:
            sample = load_sample(i, path, config.size, config.full_res)
        except BadImage as exc:
            failed[i] = err = str(exc)
        else:
            images.append(
                evaluate_sample(
                    sample, predictors, metric_set, prior, config, accs, keeper, scorer,
                    semantic, labels.get(i),
                )
            )
        if on_image is not None:
            on_image(EvalProgress("evaluate", n_done, len(todo), path, err))
    if not images:
        raise EmptyDataset(f"{config.data_dir}: none of the {len(files)} image files is readable")

    report = _summary(config, files, images, failed, predictors, accs, prior)
    if semantic is not None:
        _add_interpretability(report, predictors)
    if scorer is not None:
        report.critic = scorer.info
        report.realism = {p.name: realism_summary(images, p.name, config.worst) for p in predictors}
    report.seconds = time.perf_counter() - start
    if config.out_dir is not None:
        save_report(report, keeper, config.out_dir, scorer.keeper if scorer else None)
    return report


def _list_files(config: EvalConfig) -> list[Path]:
    """The image files of the set (the first ``config.limit``); EmptyDataset when none."""
    files = find_images([config.data_dir])
    if config.limit is not None:
        files = files[: config.limit]
    if not files:
        raise EmptyDataset(f"{config.data_dir}: no image files found")
    return files


def _semantic_scorer(
    config: EvalConfig, files: Sequence[Path]
) -> tuple[SemanticScorer | None, dict[int, int]]:
    """With the interpretability metric: the classifier and the labelled files (index -> class);
    UsageError when no file name carries a synset."""
    if "interpretability" not in config.metrics:
        return None, {}
    labels = {i: lab for i, f in enumerate(files) if (lab := label_of(f)) is not None}
    if not labels:
        raise UsageError(
            f"{config.data_dir}: --metric interpretability needs photos named after their "
            "ImageNet synset (n01440764_tench.JPEG); none of the file names has one"
        )
    return SemanticScorer(config.device or "cpu"), labels


def _summary(
    config: EvalConfig,
    files: Sequence[Path],
    images: list[ImageResult],
    failed: dict[int, str],
    predictors: Sequence[Any],
    accs: dict[str, Accumulator],
    prior: Prior | None,
) -> EvalReport:
    """The report of the per-image results: statistics per row and metric, mean curves."""
    metric_names = report_metric_names(config)
    if prior is None:
        metric_names = [m for m in metric_names if not m.startswith("auc_rebal")]
    aggregates: dict[str, dict[str, Stat]] = {
        p.name: {
            m: summarize([r.values[p.name][m] for r in images if m in r.values[p.name]])
            for m in metric_names
        }
        for p in predictors
    }
    curves: dict[str, dict[str, list[float]]] = {}
    for name, acc in accs.items():
        if acc.n:
            curves[name] = {"plain": (acc.plain / acc.n).tolist()}
            if prior is not None:
                curves[name]["rebalanced"] = (acc.rebal / acc.n).tolist()
    if prior is not None:
        prior_source = prior.source
    elif "auc" in config.metrics:
        prior_source = "none: no colour pixels to estimate a prior from (rebalanced AuC skipped)"
    else:
        prior_source = "not used (AuC not requested)"
    return EvalReport(
        config=config,
        models=[ModelRow(p.name, p.kind, p.description) for p in predictors],
        metric_names=metric_names,
        n_files=len(files),
        images=images,
        failed=[(files[i], msg) for i, msg in sorted(failed.items())],
        prior_source=prior_source,
        aggregates=aggregates,
        curves=curves,
        seconds=0.0,
    )


def _add_interpretability(report: EvalReport, predictors: Sequence[Any]) -> None:
    """The labelled-image count and each colorizer's share of the gray-to-truth top-1 gap."""
    aggregates = report.aggregates
    report.n_labelled = sum(1 for r in report.images if "top1" in r.values[predictors[0].name])
    if "gray" in aggregates and "ground-truth" in aggregates:
        g, t = aggregates["gray"]["top1"].mean, aggregates["ground-truth"]["top1"].mean
        report.gap_recovered = {
            p.name: gap_recovered(aggregates[p.name]["top1"].mean, g, t)
            for p in predictors
            if p.name not in ("gray", "ground-truth")
        }

"""What an evaluation run is asked to do: the metric names, ``EvalConfig``, the checks made before
any work (``check_config``, ``check_out_dir``) and the metric columns a run reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from colorcli.choices import EvalMetric, values
from colorcli.errors import UsageError
from colorcli.fsutil import check_writable

Metric = str  # a value of choices.EvalMetric other than "all"
ALL_METRICS: tuple[Metric, ...] = ("auc", "psnr", "ssim", "colorfulness")
"""The metrics that need nothing but the photos (``all`` on the command line; with a critic,
``all`` adds ``realism``)."""
METRIC_CHOICES: tuple[Metric, ...] = values(EvalMetric, without=("all",))
"""``interpretability`` (``colorcli.evaluate.interpretability``): an ImageNet classifier's
top-1 / top-5 on each row's images, for files named after their synset; needs the ``pretrained``
extra."""
BASELINES: tuple[str, ...] = ("gray", "random", "ground-truth")
CONTACT_K = 3
REALISM_THRESHOLD = 0.5
WORST_REALISM_K = 8

METRIC_LABELS: dict[str, str] = {
    "auc": "AuC %",
    "auc_rebal": "rebal AuC %",
    "psnr": "PSNR dB",
    "ssim": "SSIM",
    "colorfulness": "colourfulness",
    "realism": "realism",
    "top1": "top-1 %",
    "top5": "top-5 %",
}


@dataclass(frozen=True)
class EvalConfig:
    """Settings of one evaluation run.

    ``models``: model specs for ``colorcli.checkpoint.load_model`` or baseline names
    (``gray``, ``random``, ``ground-truth``); ``baselines`` adds all three. ``prior``: a
    ``rebalance`` output file for the rebalanced AuC, or None to compute the prior from the
    evaluation set. ``out_dir``: where to write the report files (None: write nothing); a
    folder that holds a report already is refused unless ``overwrite``.
    ``temperature``: annealed-mean T for classification models (None: each model file's own).
    ``critic``: a critic file (``colorcli train-critic``), needed by and only with the
    ``realism`` metric; ``worst``: how many of each row's least real-looking images the report
    lists and shows on worst_realism.png.
    """

    data_dir: Path
    models: tuple[str, ...] = ()
    metrics: tuple[Metric, ...] = ALL_METRICS
    size: int = 256
    full_res: bool = False
    prior: Path | None = None
    seed: int = 0
    out_dir: Path | None = None
    baselines: bool = True
    device: str | None = None
    limit: int | None = None
    temperature: float | None = None
    critic: Path | None = None
    worst: int = WORST_REALISM_K
    overwrite: bool = False


REPORT_FILES = (
    "results.json",
    "results.csv",
    "auc_curve.png",
    "contact_sheet.png",
    "worst_realism.png",
)


def check_config(config: EvalConfig) -> list[str]:
    """Refuse a bad ``config`` (UsageError) before any work; the names of the rows to evaluate:
    the baselines (unless not ``config.baselines``), then each model spec once."""
    if config.size < 8:
        raise UsageError(f"--size must be at least 8 pixels, got {config.size}")
    if config.limit is not None and config.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {config.limit}")
    if not config.data_dir.exists():
        raise UsageError(f"{config.data_dir}: no such folder")
    for m in config.metrics:
        if m not in METRIC_CHOICES:
            raise UsageError(f"unknown metric {m!r} (choose from {', '.join(METRIC_CHOICES)})")
    if "realism" in config.metrics and config.critic is None:
        raise UsageError("--metric realism needs a critic: add --critic CRITIC")
    if config.critic is not None and "realism" not in config.metrics:
        raise UsageError("a critic scores realism: add 'realism' to the metrics")
    if config.worst < 1:
        raise UsageError(f"--worst must be at least 1, got {config.worst}")
    names = list(BASELINES) if config.baselines else []
    for spec in config.models:
        if spec not in names:
            names.append(spec)
    if not names:
        raise UsageError("nothing to evaluate: give --model or keep the baselines")
    if config.out_dir is not None:
        check_out_dir(Path(config.out_dir), config.overwrite)
    return names


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Before any work: UsageError when ``out_dir`` is a file, holds a report already (unless
    ``overwrite``) or cannot be written (``fsutil.check_writable``: a probe file)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a folder")
    existing = [name for name in REPORT_FILES if (out_dir / name).exists()]
    if existing and not overwrite:
        raise UsageError(
            f"{out_dir}: holds an evaluation report already ({existing[0]}); use --overwrite "
            "to replace it or --out for another folder"
        )
    check_writable(out_dir)


def report_metric_names(config: EvalConfig) -> list[str]:
    """The metric columns of ``config``'s report, in table order (``_full`` ones after)."""
    names: list[str] = []
    for m in ALL_METRICS:
        if m not in config.metrics:
            continue
        names.extend(["auc", "auc_rebal"] if m == "auc" else [m])
    if config.full_res:
        names += [f"{n}_full" for n in list(names)]
    if "realism" in config.metrics:
        names.append("realism")
    if "interpretability" in config.metrics:
        names += ["top1", "top5"]
    return names


def choose_metrics(chosen: Sequence[str], critic: Path | None) -> tuple[Metric, ...]:
    """``eval --metric`` (none: all) with ``--critic``: the metrics to compute, in
    ``METRIC_CHOICES`` order. "all" is ``ALL_METRICS``; a critic always adds realism, which
    needs one."""
    names = set(chosen or ("all",))
    if "realism" in names and critic is None:
        raise UsageError("--metric realism needs a critic: add --critic CRITIC")
    if critic is not None:
        names.add("realism")  # a critic always scores realism, beside the metrics chosen
    if "all" in names:
        names.update(ALL_METRICS)
    return tuple(m for m in METRIC_CHOICES if m in names)

"""What a run gives back: progress events while it works, and the ``EvalReport`` (per-image values,
dataset statistics, mean curves, realism summaries)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from colorcli.errors import ColorcliError
from colorcli.evaluate.config import EvalConfig


@dataclass(frozen=True)
class EvalProgress:
    """One progress event: ``phase`` "scan" (reading the set for the prior / random pairing) or
    "evaluate"; ``done`` of ``total`` images; ``error`` set when the file was skipped."""

    phase: str
    done: int
    total: int
    path: Path
    error: str | None = None


OnProgress = Callable[[EvalProgress], None]


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float
    n: int


@dataclass
class ImageResult:
    path: Path
    gray: bool
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> metric -> value


@dataclass
class ModelRow:
    name: str
    kind: str
    description: str


@dataclass
class RealismSummary:
    """One row's realism figures: ``judged_real`` of ``n`` images scored > 0.5 (``rate``: the
    fooling rate, or the true-positive rate for ground-truth) and the ``worst`` images, lowest
    realism first (ties in image order)."""

    judged_real: int
    n: int
    worst: list[tuple[Path, float]]

    @property
    def rate(self) -> float:
        return self.judged_real / self.n if self.n else float("nan")


@dataclass
class EvalReport:
    config: EvalConfig
    models: list[ModelRow]
    metric_names: list[str]
    n_files: int
    images: list[ImageResult]
    failed: list[tuple[Path, str]]
    prior_source: str
    aggregates: dict[str, dict[str, Stat]]  # model -> metric -> Stat
    curves: dict[str, dict[str, list[float]]]  # model -> plain/rebalanced -> mean curve (151)
    seconds: float
    outputs: dict[str, Path] = field(default_factory=dict)
    realism: dict[str, RealismSummary] = field(default_factory=dict)  # model -> summary
    critic: dict[str, Any] | None = None  # the critic file and what it was trained on
    #: model -> share of the gray-to-truth top-1 gap recovered (interpretability only)
    gap_recovered: dict[str, float] = field(default_factory=dict)
    n_labelled: int = 0  # images scored for interpretability

    @property
    def n_gray(self) -> int:
        return sum(1 for r in self.images if r.gray)

    @property
    def n_evaluated(self) -> int:
        return len(self.images)


class ReportNotWritten(ColorcliError):
    """The evaluation finished but its report files could not be written; ``report`` holds the
    results (a caller can still show them)."""

    def __init__(self, message: str, report: EvalReport) -> None:
        super().__init__(message)
        self.report = report


def summarize(values: Sequence[float]) -> Stat:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) of the finite values;
    (inf, 0, n) when every value is +inf (PSNR of identical images)."""
    v = np.array([x for x in values if math.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        if values and all(x == math.inf for x in values):
            return Stat(math.inf, 0.0, len(values))
        return Stat(float("nan"), float("nan"), 0)
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return Stat(float(v.mean()), std, len(v))

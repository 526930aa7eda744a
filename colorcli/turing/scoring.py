"""Scoring the Turing test: answer files validated one by one (a bad file is reported and
skipped) and pooled; positive = "real". TPR = P(answer real | real), FPR = P(answer real |
colorized) = the fooling rate, with 95 % Wilson score intervals over the pooled trials and, with
two or more participants, a participant-level (cluster) percentile bootstrap of the fooling
rate."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorcli.errors import UsageError
from colorcli.turing.answers import (
    AnswerFile,
    BadAnswerFile,
    Confusion,
    Key,
    load_key,
    read_answers,
)

#: Two-sided 95 % normal quantile (scipy.stats.norm.ppf(0.975)).
Z95 = 1.959963984540054

__all__ = [
    "Z95",
    "Confusion",
    "ScoreReport",
    "cluster_bootstrap",
    "require_valid",
    "score_answer_files",
    "wilson_interval",
]


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n`` (95 % with the default ``z``).

    ``(p + z^2 / 2n -+ z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n)``; (NaN, NaN) for
    ``n == 0``. Unlike the normal (Wald) interval it stays inside [0, 1] and behaves at 0 and n.
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends (rounding gives 1 - 1e-16)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def cluster_bootstrap(
    pairs: Sequence[tuple[int, int]], n_boot: int = 10000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of a pooled proportion, resampling whole clusters.

    ``pairs`` holds (successes, trials) per participant; each replicate draws participants with
    replacement and computes sum(successes) / sum(trials) (replicates with no trials are
    dropped). None with fewer than 2 clusters with trials or ``n_boot < 1``.
    """
    arr = np.asarray([p for p in pairs if p[1] > 0], dtype=np.float64).reshape(-1, 2)
    if len(arr) < 2 or n_boot < 1:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(arr), size=(n_boot, len(arr)))
    k = arr[idx, 0].sum(axis=1)
    n = arr[idx, 1].sum(axis=1)
    rates = k[n > 0] / n[n > 0]
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(rates, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


@dataclass
class ScoreReport:
    """Pooled results over every valid answer file."""

    files: list[AnswerFile]
    skipped: list[tuple[Path, str]]
    key: Key | None = None
    n_boot: int = 10000

    @property
    def confusion(self) -> Confusion:
        total = Confusion()
        for f in self.files:
            total = total + f.confusion
        return total

    @property
    def page_ids(self) -> list[str]:
        return sorted({f.page_id for f in self.files})

    @property
    def models(self) -> list[str]:
        return sorted({f.model for f in self.files})

    @property
    def fooling_ci(self) -> tuple[float, float]:
        c = self.confusion
        return wilson_interval(c.colorized_real, c.n_colorized)

    @property
    def tpr_ci(self) -> tuple[float, float]:
        c = self.confusion
        return wilson_interval(c.real_real, c.n_real)

    @property
    def fooling_bootstrap(self) -> tuple[float, float] | None:
        pairs = [(f.confusion.colorized_real, f.confusion.n_colorized) for f in self.files]
        return cluster_bootstrap(pairs, self.n_boot)

    def to_json(self) -> dict[str, Any]:
        c = self.confusion
        boot = self.fooling_bootstrap

        def num(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "page_ids": self.page_ids,
            "models": self.models,
            "key": None if self.key is None else str(self.key.path),
            "participants": len(self.files),
            "trials": c.n,
            "confusion": {
                "rows": "truth (real, colorized)",
                "columns": "answer (real, colorized)",
                "matrix": c.matrix(),
            },
            "tpr": num(c.tpr),
            "tpr_ci95_wilson": [num(x) for x in self.tpr_ci],
            "fpr": num(c.fpr),
            "fooling_rate": num(c.fpr),
            "fooling_rate_ci95_wilson": [num(x) for x in self.fooling_ci],
            "fooling_rate_ci95_participant_bootstrap": None if boot is None else list(boot),
            "bootstrap_replicates": self.n_boot if boot is not None else 0,
            "accuracy": num(c.accuracy),
            "per_participant": [
                {
                    "file": str(f.path),
                    "participant": f.participant,
                    "page_id": f.page_id,
                    "trials": len(f.trials),
                    "tpr": num(f.confusion.tpr),
                    "fooling_rate": num(f.confusion.fpr),
                    "accuracy": num(f.confusion.accuracy),
                    "median_ms": float(np.median([t.ms for t in f.trials])),
                }
                for f in self.files
            ],
            "skipped": [{"file": str(p), "error": msg} for p, msg in self.skipped],
        }


def score_answer_files(
    paths: Sequence[str | Path], key: str | Path | None = None, n_boot: int = 10000
) -> ScoreReport:
    """Validate and pool answer files. A bad file (and an exact duplicate of an earlier one) goes
    to ``report.skipped`` with a one-line reason; the others are scored. Without ``key``, valid
    files from more than one page raise UsageError (pass the key of the page to score). A bad key
    raises BadAnswerFile. The report may hold no valid file: see ``require_valid``."""
    if not paths:
        raise UsageError("give at least one answers file")
    the_key = None if key is None else load_key(key)
    files: list[AnswerFile] = []
    skipped: list[tuple[Path, str]] = []
    seen: dict[tuple[object, ...], Path] = {}
    for p in paths:
        path = Path(p)
        try:
            answers = read_answers(path, the_key)
        except BadAnswerFile as exc:
            skipped.append((path, str(exc)))
            continue
        ident = (answers.page_id, answers.participant, tuple(answers.trials))
        if ident in seen:
            skipped.append((path, f"{path}: the same answers as {seen[ident]} (duplicate)"))
            continue
        seen[ident] = path
        files.append(answers)
    pages = sorted({f.page_id for f in files})
    if len(pages) > 1:
        raise UsageError(
            f"the answer files come from {len(pages)} different pages ({', '.join(pages)}); "
            "score one page at a time or pass --key OUT/key.json to pick one"
        )
    return ScoreReport(files, skipped, the_key, n_boot)


def require_valid(report: ScoreReport) -> None:
    """Raise BadAnswerFile when no answer file was valid."""
    if not report.files:
        n = len(report.skipped)
        raise BadAnswerFile(f"no valid answers file among the {n} given; nothing to score")

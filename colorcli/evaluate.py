"""Evaluate colorizers and baselines on a folder of colour photos (Zhang et al. 2016 protocol).

Each image is read, resized as a whole to ``size x size`` (cv2 INTER_AREA on the float RGB),
converted to Lab; every model predicts ab from L at that size, and the prediction is compared
with the true ab at that size. Baselines are models too: ``gray`` (ab = 0), ``random`` (the ab of
another randomly chosen image of the set, resized to the same size; reproducible with the seed)
and ``ground-truth`` (a sanity row: AuC 100).

Reported per image and as dataset means with standard deviations (sample std, ddof = 1):
``auc`` (raw accuracy) and ``auc_rebal`` (class-rebalanced, lambda = 0 weights of the prior),
``psnr``/``ssim`` on the RGB result (data range 1 on [0, 1], i.e. peak 255 on 8-bit values) and
``colorfulness`` of the prediction, and with a critic (``colorcli.critic``) ``realism``: the
critic's probability that L + the row's ab (at the evaluation size) is a real photo. An image is
judged real when its realism is > 0.5; the share so judged is each row's fooling rate (for the
ground-truth row: the critic's true-positive rate, for comparison); realism covers every
evaluated image, grayscale ones included, and has no ``_full`` variant. Effectively grayscale
images of the set (no |a| or |b| > 5) are counted and excluded from the AuC figures (their
colours cannot be judged); unreadable files are reported and skipped. With ``full_res`` the
same figures are also computed at the original resolution (original L, predicted ab upsampled
bilinearly), with the suffix ``_full``.

The core never prints: progress goes to ``on_image`` and results come back as an EvalReport;
files (results.json, results.csv, auc_curve.png, contact_sheet.png and, with a critic,
worst_realism.png: the least real-looking colorized images of each row) are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from colorcli import metrics as M
from colorcli.choices import EvalMetric, values
from colorcli.color.bins import reference_bins
from colorcli.color.lab import lab_to_rgb, rgb_to_lab
from colorcli.color.prior import smooth_prior
from colorcli.errors import BadImage, ColorcliError, EmptyDataset, UsageError
from colorcli.fsutil import atomic_open, check_writable
from colorcli.imageio import find_images, read_rgb

Metric = str  # a value of choices.EvalMetric other than "all"
ALL_METRICS: tuple[Metric, ...] = ("auc", "psnr", "ssim", "colorfulness")
"""The metrics that need nothing but the photos (``all`` on the command line; with a critic,
``all`` adds ``realism``)."""
METRIC_CHOICES: tuple[Metric, ...] = values(EvalMetric, without=("all",))
"""``interpretability`` (``colorcli.interpretability``): an ImageNet classifier's top-1 / top-5
on each row's images, for files named after their synset; needs the ``pretrained`` extra."""
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


class ReportNotWritten(ColorcliError):
    """The evaluation finished but its report files could not be written; ``report`` holds the
    results (a caller can still show them)."""

    def __init__(self, message: str, report: EvalReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class EvalProgress:
    """One progress event: ``phase`` "scan" (reading the set for the prior / random pairing) or
    "evaluate"; ``done`` of ``total`` images; ``error`` set when the file was skipped."""

    phase: str
    done: int
    total: int
    path: Path
    error: str | None = None


OnImage = Callable[[EvalProgress], None]


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


# -- images -------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One image of the set: RGB/Lab at the evaluation size (and at full resolution if asked)."""

    index: int
    path: Path
    rgb: np.ndarray  # (S, S, 3) float32 [0, 1]
    lab: torch.Tensor  # (1, 3, S, S) float32
    rgb_full: np.ndarray | None = None
    lab_full: torch.Tensor | None = None

    @property
    def L(self) -> torch.Tensor:
        return self.lab[:, :1]

    @property
    def ab(self) -> torch.Tensor:
        return self.lab[:, 1:]


def _to_lab(rgb: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    return rgb_to_lab(t.unsqueeze(0))


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize a whole ``(H, W, 3)`` float image to ``size x size`` (cv2 INTER_AREA; aspect is not
    kept, as in the paper's protocol)."""
    out = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def load_sample(index: int, path: Path, size: int, full_res: bool = False) -> Sample:
    """Read ``path`` and prepare it at ``size`` (and full resolution). Raises BadImage."""
    rgb_full = read_rgb(path)
    if rgb_full.shape[0] < 2 or rgb_full.shape[1] < 2:
        raise BadImage(f"{path}: image is too small ({rgb_full.shape[1]}x{rgb_full.shape[0]})")
    rgb = resize_rgb(rgb_full, size)
    sample = Sample(index=index, path=path, rgb=rgb, lab=_to_lab(rgb))
    if full_res:
        sample.rgb_full = rgb_full
        sample.lab_full = _to_lab(rgb_full)
    return sample


# -- models -------------------------------------------------------------------------------------


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
        return _to_lab(rgb)[:, 1:]

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


# -- per-image metrics ----------------------------------------------------------------------------


def _join_rgb(L: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    rgb = lab_to_rgb(torch.cat([L, ab], dim=1))[0]
    return rgb.permute(1, 2, 0).numpy().astype(np.float64)


def _upsample_ab(ab: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(ab, size=shape, mode="bilinear", align_corners=False)


@dataclass
class _Accumulator:
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
        pred_rgb = _join_rgb(L, pred_ab)
        if "psnr" in metric_set:
            values["psnr"] = M.psnr(pred_rgb, true_rgb)
        if "ssim" in metric_set:
            values["ssim"] = M.ssim(pred_rgb, true_rgb)
        if "colorfulness" in metric_set:
            values["colorfulness"] = M.colorfulness(pred_rgb)
    return values, plain, rebal, pred_rgb


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


# -- the prior ------------------------------------------------------------------------------------


@dataclass
class _Prior:
    bins: np.ndarray
    prior_smoothed: np.ndarray
    source: str

    def __post_init__(self) -> None:
        self.bin_weights = M.bin_weights_lambda0(self.prior_smoothed)


def load_prior_file(path: Path) -> _Prior:
    from colorcli.data import load_rebalance

    reb = load_rebalance(path)
    return _Prior(
        np.asarray(reb.bins, dtype=np.float64),
        np.asarray(reb.prior_smoothed, dtype=np.float64),
        f"file {path}",
    )


def hard_counts(ab: torch.Tensor, bins: np.ndarray) -> np.ndarray:
    """Counts ``(Q,)`` of pixels of ab ``(B, 2, H, W)`` per nearest bin (hard assignment)."""
    from colorcli.color.encode import nearest_bin

    idx = nearest_bin(ab, bins).flatten()
    return torch.bincount(idx, minlength=len(bins)).numpy().astype(np.float64)


# -- the run ---------------------------------------------------------------------------------


def _check_config(config: EvalConfig) -> list[str]:
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


def _metric_names(config: EvalConfig) -> list[str]:
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


def evaluate(config: EvalConfig, on_image: OnImage | None = None) -> EvalReport:
    """Run every model and baseline of ``config`` over the images of ``config.data_dir``.

    Raises EmptyDataset when the folder holds no image files, or when none of them is readable.
    """
    start = time.perf_counter()
    model_names = _check_config(config)
    files = find_images([config.data_dir])
    if config.limit is not None:
        files = files[: config.limit]
    if not files:
        raise EmptyDataset(f"{config.data_dir}: no image files found")
    metric_set = tuple(config.metrics)
    want_auc = "auc" in metric_set

    failed: dict[int, str] = {}
    gray_flags: dict[int, bool] = {}
    prior: _Prior | None = None
    if want_auc and config.prior is not None:
        prior = load_prior_file(config.prior)
    need_scan = "random" in model_names or (want_auc and prior is None)
    counts = np.zeros(len(reference_bins()))
    if need_scan:
        bins313 = reference_bins()
        for i, path in enumerate(files):
            err = None
            try:
                s = load_sample(i, path, config.size)
                gray_flags[i] = M.is_grayscale_ab(s.ab)
                if want_auc and prior is None and not gray_flags[i]:
                    counts += hard_counts(s.ab, bins313)
            except BadImage as exc:
                failed[i] = err = str(exc)
            if on_image is not None:
                on_image(EvalProgress("scan", i + 1, len(files), path, err))
        if len(failed) == len(files):
            raise EmptyDataset(
                f"{config.data_dir}: none of the {len(files)} image files is readable"
            )
        if want_auc and prior is None and counts.sum() > 0:
            prior = _Prior(
                bins313,
                smooth_prior(counts, bins313),
                "computed from the evaluation set (hard counts of the ground-truth ab of "
                "the colour images over the 313 reference bins, smoothed sigma = 5)",
            )

    predictors: list[Any] = []
    readable = [i for i in range(len(files)) if i not in failed]
    for name in model_names:
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

    accs = {p.name: _Accumulator() for p in predictors}
    keeper = _ContactKeeper(CONTACT_K)
    scorer = _RealismScorer(config) if "realism" in metric_set else None
    semantic = None
    labels: dict[int, int] = {}
    if "interpretability" in metric_set:
        from colorcli.interpretability import SemanticScorer, label_of

        labels = {i: lab for i, f in enumerate(files) if (lab := label_of(f)) is not None}
        if not labels:
            raise UsageError(
                f"{config.data_dir}: --metric interpretability needs photos named after their "
                "ImageNet synset (n01440764_tench.JPEG); none of the file names has one"
            )
        semantic = SemanticScorer(config.device or "cpu")
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
                _evaluate_sample(
                    sample, predictors, metric_set, prior, config, accs, keeper, scorer,
                    semantic, labels.get(i),
                )
            )
        if on_image is not None:
            on_image(EvalProgress("evaluate", n_done, len(todo), path, err))
    if not images:
        raise EmptyDataset(f"{config.data_dir}: none of the {len(files)} image files is readable")

    metric_names = _metric_names(config)
    if prior is None:
        metric_names = [m for m in metric_names if not m.startswith("auc_rebal")]
    aggregates = {
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
    elif want_auc:
        prior_source = "none: no colour pixels to estimate a prior from (rebalanced AuC skipped)"
    else:
        prior_source = "not used (AuC not requested)"
    report = EvalReport(
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
    if semantic is not None:
        from colorcli.interpretability import gap_recovered

        report.n_labelled = sum(1 for r in images if "top1" in r.values[predictors[0].name])
        if "gray" in aggregates and "ground-truth" in aggregates:
            g, t = aggregates["gray"]["top1"].mean, aggregates["ground-truth"]["top1"].mean
            report.gap_recovered = {
                p.name: gap_recovered(aggregates[p.name]["top1"].mean, g, t)
                for p in predictors
                if p.name not in ("gray", "ground-truth")
            }
    if scorer is not None:
        report.critic = scorer.info
        report.realism = {p.name: realism_summary(images, p.name, config.worst) for p in predictors}
    report.seconds = time.perf_counter() - start
    if config.out_dir is not None:
        try:
            write_outputs(report, keeper, config.out_dir, scorer.keeper if scorer else None)
        except OSError as exc:
            report.outputs = {}
            reason = exc.strerror or str(exc) or type(exc).__name__
            where = exc.filename or config.out_dir
            raise ReportNotWritten(
                f"{where}: cannot write the report ({reason}); the results above are not saved",
                report,
            ) from exc
    return report


def _evaluate_sample(
    sample: Sample,
    predictors: Sequence[Any],
    metric_set: Sequence[Metric],
    prior: _Prior | None,
    config: EvalConfig,
    accs: dict[str, _Accumulator],
    keeper: _ContactKeeper,
    scorer: _RealismScorer | None = None,
    semantic: Any = None,
    label: int | None = None,
) -> ImageResult:
    gray = M.is_grayscale_ab(sample.ab)
    result = ImageResult(sample.path, gray)
    weights = weights_full = None
    if prior is not None and not gray:
        weights = _pixel_weights(sample.ab, prior)
        if config.full_res and sample.lab_full is not None:
            weights_full = _pixel_weights(sample.lab_full[:, 1:], prior)
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
            pred_full = _upsample_ab(pred, (lab_full.shape[2], lab_full.shape[3]))
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
            rgb = pred_rgb if pred_rgb is not None else _join_rgb(sample.L, pred)
            values["top1"], values["top5"] = semantic.score(rgb, label)
        if p.name == "ground-truth":  # identical to the truth by construction: the difference
            for k in ("psnr", "psnr_full"):  # left is float round-off (about 144 dB)
                if k in values:
                    values[k] = math.inf
        result.values[p.name] = values
        if "auc" in values and p.name != "ground-truth":
            keeper.offer(p.name, values["auc"], sample, pred, pred_rgb)
    return result


# -- realism --------------------------------------------------------------------------------------


class _RealismScorer:
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
        self.keeper = _ContactKeeper(config.worst, keep_best=False)
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


def _pixel_weights(ab: torch.Tensor, prior: _Prior) -> torch.Tensor:
    from colorcli.color.encode import nearest_bin

    return M.pixel_weights_from_index(nearest_bin(ab, prior.bins), prior.bin_weights)


# -- contact sheet material -----------------------------------------------------------------------

THUMB = 128


@dataclass
class ContactEntry:
    score: float
    path: Path
    tiles: tuple[np.ndarray, np.ndarray, np.ndarray]  # gray input, prediction, truth: uint8 RGB


class _ContactKeeper:
    """Keeps thumbnails of the best (unless not ``keep_best``) and worst ``k`` images of each
    model by a score (plain AuC, or realism)."""

    def __init__(self, k: int, keep_best: bool = True):
        self.k = k
        self.keep_best = keep_best
        self.best: dict[str, list[ContactEntry]] = {}
        self.worst: dict[str, list[ContactEntry]] = {}
        self._gray_tiles: dict[int, np.ndarray] = {}  # the current image's input thumbnail

    @staticmethod
    def tile(rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` float in [0, 1] -> ``(THUMB, THUMB, 3)`` uint8."""
        small = cv2.resize(rgb.astype(np.float32), (THUMB, THUMB), interpolation=cv2.INTER_AREA)
        return np.asarray(np.clip(small * 255.0 + 0.5, 0, 255), dtype=np.uint8)

    def _entry(
        self, score: float, sample: Sample, pred: torch.Tensor, pred_rgb: np.ndarray | None
    ) -> ContactEntry:
        if sample.index not in self._gray_tiles:
            self._gray_tiles = {
                sample.index: self.tile(_join_rgb(sample.L, torch.zeros_like(pred)))
            }
        if pred_rgb is None:
            pred_rgb = _join_rgb(sample.L, pred)
        tiles = (self._gray_tiles[sample.index], self.tile(pred_rgb), self.tile(sample.rgb))
        return ContactEntry(score, sample.path, tiles)

    def offer(
        self,
        model: str,
        score: float,
        sample: Sample,
        pred: torch.Tensor,
        pred_rgb: np.ndarray | None = None,
    ) -> None:
        """Consider one prediction; thumbnails are made only when it enters a list."""
        best = self.best.setdefault(model, [])
        worst = self.worst.setdefault(model, [])
        entry: ContactEntry | None = None
        if self.keep_best and (len(best) < self.k or score > best[-1].score):
            entry = self._entry(score, sample, pred, pred_rgb)
            best.append(entry)
            best.sort(key=lambda e: -e.score)
            del best[self.k :]
        if len(worst) < self.k or score < worst[-1].score:
            worst.append(entry or self._entry(score, sample, pred, pred_rgb))
            worst.sort(key=lambda e: e.score)
            del worst[self.k :]


# -- outputs ---------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:  # a plain open: the usual umask file mode
        fh.write(data)


def _num(x: float) -> float | str | None:
    """JSON-safe number: NaN -> null, +-inf -> "inf"/"-inf" (JSON has no infinities)."""
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def report_to_json(report: EvalReport) -> dict[str, Any]:
    cfg = asdict(report.config)
    for k, v in cfg.items():
        if isinstance(v, Path):
            cfg[k] = str(v)
        elif isinstance(v, tuple):
            cfg[k] = list(v)
    return {
        "settings": cfg,
        "protocol": {
            "resize": f"whole image resized to {report.config.size}x{report.config.size} "
            "(cv2 INTER_AREA on float RGB), predict ab from L, compare ab at that size",
            "auc": "mean over thresholds 0..150 (step 1) of the fraction of pixels with ab "
            "distance <= threshold, in percent; dataset figure = mean of per-image figures",
            "auc_rebal": "same, each pixel weighted by the lambda = 0 rebalancing weight of its "
            "ground-truth bin (nearest bin)",
            "prior": report.prior_source,
            "gray_images": "images with no pixel |a| or |b| > 5 are excluded from AuC "
            "(input_grayscale in per_image and results.csv)",
            "psnr_ssim": "on sRGB in [0, 1], data_range = 1 (peak 255 on 8-bit values); SSIM "
            "channel-wise averaged (scikit-image); ground-truth PSNR is inf (identical images)",
            "std": "sample standard deviation over images (ddof = 1)",
            **(
                {
                    "realism": "critic probability 'real' (sigmoid of the mean patch logit) of "
                    "L + the row's ab at the evaluation size, every evaluated image; judged "
                    f"real when > {REALISM_THRESHOLD}; judged_real_rate = fooling rate of a "
                    "colorizer, true-positive rate of the critic on ground-truth"
                }
                if report.realism
                else {}
            ),
        },
        "counts": {
            "files": report.n_files,
            "evaluated": report.n_evaluated,
            "gray_excluded_from_auc": report.n_gray,
            "failed": len(report.failed),
        },
        "failed": [{"path": str(p), "error": msg} for p, msg in report.failed],
        "models": [asdict(m) for m in report.models],
        "aggregate": {
            model: {
                m: {"mean": _num(s.mean), "std": _num(s.std), "n": s.n} for m, s in stats.items()
            }
            for model, stats in report.aggregates.items()
        },
        "curves": {"thresholds": list(range(M.MAX_THRESHOLD + 1)), **report.curves},
        "per_image": [
            {
                "path": str(r.path),
                "input_grayscale": r.gray,
                "values": {
                    model: {m: _num(v) for m, v in vals.items()} for model, vals in r.values.items()
                },
            }
            for r in report.images
        ],
        **({"realism": _realism_json(report)} if report.realism else {}),
        **(
            {
                "interpretability": {
                    "classifier": "EfficientNet-Lite0 (ImageNet), whole image at 224 px",
                    "labelled_images": report.n_labelled,
                    "gap_recovered": {k: _num(v) for k, v in report.gap_recovered.items()},
                }
            }
            if "top1" in report.metric_names
            else {}
        ),
        "seconds": report.seconds,
    }


def _realism_json(report: EvalReport) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for model, summary in report.realism.items():
        stat = report.aggregates[model]["realism"]
        row: dict[str, Any] = {
            "mean": _num(stat.mean),
            "std": _num(stat.std),
            "n": summary.n,
            "judged_real": summary.judged_real,
            "judged_real_rate": _num(summary.rate),
        }
        if model == "ground-truth":
            row["true_positive_rate"] = _num(summary.rate)
        else:
            row["fooling_rate"] = _num(summary.rate)
            row["worst"] = [{"path": str(p), "realism": v} for p, v in summary.worst]
        rows[model] = row
    return {"critic": report.critic, "threshold": REALISM_THRESHOLD, "models": rows}


def report_to_csv(report: EvalReport) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", "model", "input_grayscale", *report.metric_names])
    for r in report.images:
        for model in (m.name for m in report.models):
            vals = r.values.get(model, {})
            row = [f"{vals[m]:.6g}" if m in vals else "" for m in report.metric_names]
            writer.writerow([str(r.path), model, int(r.gray), *row])
    return buf.getvalue()


def write_outputs(
    report: EvalReport,
    keeper: _ContactKeeper,
    out_dir: Path,
    realism_keeper: _ContactKeeper | None = None,
) -> None:
    from colorcli.report_plots import auc_curve_png, contact_sheet_png, worst_realism_png

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a folder")
    report.outputs = {
        "json": out_dir / "results.json",
        "csv": out_dir / "results.csv",
    }
    atomic_write_bytes(report.outputs["csv"], report_to_csv(report).encode())
    if report.curves:
        stats = {
            model: {k: s.mean for k, s in st.items() if k in ("auc", "auc_rebal")}
            for model, st in report.aggregates.items()
        }
        png = auc_curve_png(report.curves, stats)
        report.outputs["auc_curve"] = out_dir / "auc_curve.png"
        atomic_write_bytes(report.outputs["auc_curve"], png)
    if keeper.best:
        groups = [(model, keeper.best[model], keeper.worst[model]) for model in keeper.best]
        report.outputs["contact_sheet"] = out_dir / "contact_sheet.png"
        atomic_write_bytes(report.outputs["contact_sheet"], contact_sheet_png(groups))
    if realism_keeper is not None and realism_keeper.worst:
        worst = [(model, realism_keeper.worst[model]) for model in realism_keeper.worst]
        report.outputs["worst_realism"] = out_dir / "worst_realism.png"
        atomic_write_bytes(report.outputs["worst_realism"], worst_realism_png(worst))
    data = report_to_json(report)
    data["outputs"] = {k: str(v) for k, v in report.outputs.items()}
    atomic_write_bytes(report.outputs["json"], json.dumps(data, indent=1).encode())
    written = {p.name for p in report.outputs.values()}
    for name in REPORT_FILES:  # a replaced report's files that this one does not have
        if name not in written:
            (out_dir / name).unlink(missing_ok=True)


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

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

Modules: ``config`` (EvalConfig, metric names, the checks before any work), ``samples`` (one
image at the evaluation size), ``predictors`` (baselines and trained models), ``prior`` (the
rebalanced AuC's prior and the first pass over the set), ``scoring`` (one sample, every row),
``realism`` (critic scores), ``interpretability`` (the ImageNet classifier), ``contact`` (the
best/worst thumbnails), ``report`` (events and results), ``output`` (the files) and ``run``
(``evaluate`` itself).
"""

from colorcli.evaluate.config import (
    ALL_METRICS,
    BASELINES,
    CONTACT_K,
    METRIC_CHOICES,
    METRIC_LABELS,
    REALISM_THRESHOLD,
    REPORT_FILES,
    WORST_REALISM_K,
    EvalConfig,
    Metric,
    check_out_dir,
    choose_metrics,
)
from colorcli.evaluate.contact import THUMB, ContactEntry
from colorcli.evaluate.output import report_to_csv, report_to_json, write_outputs
from colorcli.evaluate.predictors import (
    GrayBaseline,
    GroundTruthBaseline,
    LoadedPredictor,
    Predictor,
    RandomBaseline,
    random_partners,
)
from colorcli.evaluate.prior import hard_counts, load_prior_file
from colorcli.evaluate.realism import realism_summary
from colorcli.evaluate.report import (
    EvalProgress,
    EvalReport,
    ImageResult,
    ModelRow,
    OnProgress,
    RealismSummary,
    ReportNotWritten,
    Stat,
    summarize,
)
from colorcli.evaluate.run import evaluate
from colorcli.evaluate.samples import Sample, join_rgb, load_sample, resize_rgb
from colorcli.evaluate.scoring import image_metrics

__all__ = [
    "ALL_METRICS",
    "BASELINES",
    "CONTACT_K",
    "METRIC_CHOICES",
    "METRIC_LABELS",
    "REALISM_THRESHOLD",
    "REPORT_FILES",
    "THUMB",
    "WORST_REALISM_K",
    "ContactEntry",
    "EvalConfig",
    "EvalProgress",
    "EvalReport",
    "GrayBaseline",
    "GroundTruthBaseline",
    "ImageResult",
    "LoadedPredictor",
    "Metric",
    "ModelRow",
    "OnProgress",
    "Predictor",
    "RandomBaseline",
    "RealismSummary",
    "ReportNotWritten",
    "Sample",
    "Stat",
    "check_out_dir",
    "choose_metrics",
    "evaluate",
    "hard_counts",
    "image_metrics",
    "join_rgb",
    "load_prior_file",
    "load_sample",
    "random_partners",
    "realism_summary",
    "report_to_csv",
    "report_to_json",
    "resize_rgb",
    "summarize",
    "write_outputs",
]

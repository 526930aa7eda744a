"""The report files: results.json, results.csv and the figures (auc_curve.png, contact_sheet.png,
worst_realism.png), each written atomically."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from colorcli import metrics as M
from colorcli.errors import UsageError
from colorcli.evaluate.config import REALISM_THRESHOLD, REPORT_FILES
from colorcli.evaluate.contact import ContactKeeper
from colorcli.evaluate.report import EvalReport, ReportNotWritten
from colorcli.fsutil import atomic_open


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with ``fsutil.atomic_open`` (temporary file + os.replace), its
    folder made first: the one writer of every report file."""
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
    keeper: ContactKeeper,
    out_dir: Path,
    realism_keeper: ContactKeeper | None = None,
) -> None:
    from colorcli.plots.report import auc_curve_png, contact_sheet_png, worst_realism_png

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


def save_report(
    report: EvalReport,
    keeper: ContactKeeper,
    out_dir: Path,
    realism_keeper: ContactKeeper | None = None,
) -> None:
    """``write_outputs``; an OSError becomes ReportNotWritten, which carries the results."""
    try:
        write_outputs(report, keeper, out_dir, realism_keeper)
    except OSError as exc:
        report.outputs = {}
        reason = exc.strerror or str(exc) or type(exc).__name__
        where = exc.filename or out_dir
        raise ReportNotWritten(
            f"{where}: cannot write the report ({reason}); the results above are not saved",
            report,
        ) from exc

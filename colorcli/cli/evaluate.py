"""`colorcli eval`: AuC (plain and rebalanced), PSNR, SSIM and colourfulness of colorizers and
baselines over a folder of colour photos (and, with --critic, how real each row looks to a
critic), with a table on the terminal and a report folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from colorcli.choices import Device, EvalMetric
from colorcli.cli._common import (
    console,
    device_value,
    escape,
    handle_errors,
    make_progress,
    print_full_width,
    warn_line,
)

if TYPE_CHECKING:
    from colorcli.evaluate import EvalReport


@handle_errors
def command(
    data_dir: Annotated[
        Path, typer.Argument(help="Folder of colour photos to evaluate on (searched recursively).")
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model to evaluate: a model file, hf://owner/repo/file, 'default', or a "
            "baseline name (gray, random, ground-truth). Repeat to compare several.",
        ),
    ] = None,
    metric: Annotated[
        list[EvalMetric] | None,
        typer.Option(
            "--metric",
            help="Metric to compute (repeat for several; default: all). realism needs "
            "--critic, and --critic always adds it (to 'all' too). interpretability (not in "
            "'all'): an ImageNet classifier's top-1/top-5 on each row, for photos named "
            "<synset>_<anything> (n01440764_tench.JPEG); needs pip install "
            "'colorcli[pretrained]'.",
            show_default=False,
        ),
    ] = None,
    size: Annotated[
        int, typer.Option(help="Images are resized to SIZE x SIZE, predicted and compared there.")
    ] = 256,
    full_res: Annotated[
        bool,
        typer.Option(
            "--full-res",
            help="Also compute every metric at full resolution (original L, ab upsampled).",
        ),
    ] = False,
    prior: Annotated[
        Path | None,
        typer.Option(
            help="A 'colorcli rebalance' output file giving the prior for the rebalanced AuC "
            "(default: the prior of the evaluation set itself)."
        ),
    ] = None,
    baselines: Annotated[
        bool,
        typer.Option(
            "--baselines/--no-baselines",
            help="Include the gray, random and ground-truth baselines.",
        ),
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the random baseline's image pairing.")] = 0,
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for results.json, results.csv, auc_curve.png, contact_sheet.png (and "
            "worst_realism.png with --critic); checked for writing before the evaluation."
        ),
    ] = Path("eval-results"),
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace the report already in --out (refused without it)."
        ),
    ] = False,
    device: Annotated[
        Device, typer.Option(help="Device for the models (auto: cuda > mps > cpu).")
    ] = Device.auto,
    limit: Annotated[
        int | None, typer.Option(help="Evaluate only the first N images (sorted by path).")
    ] = None,
    critic: Annotated[
        Path | None,
        typer.Option(
            "--critic",
            metavar="CRITIC",
            help="A critic file from 'colorcli train-critic': adds realism (the critic's "
            "probability that an image is real) per image and each row's share judged real "
            "(the fooling rate), and writes worst_realism.png.",
        ),
    ] = None,
    worst: Annotated[
        int,
        typer.Option(
            help="With --critic: how many least real-looking images per model to list and show.",
            min=1,
        ),
    ] = 8,
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Annealed-mean temperature T for classification models (default: each model "
            "file's own; lower is more saturated, 1 is the mean, near 0 the mode).",
            min=1e-3,
        ),
    ] = None,
) -> None:
    """Evaluate colorizers and baselines: AuC (plain and rebalanced), PSNR, SSIM, colourfulness,
    and realism with --critic."""
    from colorcli.evaluate import (
        EvalConfig,
        EvalProgress,
        ReportNotWritten,
        choose_metrics,
        evaluate,
    )

    config = EvalConfig(
        data_dir=data_dir,
        models=tuple(model or ()),
        metrics=choose_metrics([m.value for m in metric or ()], critic),
        size=size,
        full_res=full_res,
        prior=prior,
        seed=seed,
        out_dir=out,
        baselines=baselines,
        device=device_value(device),
        limit=limit,
        temperature=temperature,
        critic=critic,
        worst=worst,
        overwrite=overwrite,
    )
    with make_progress(transient=True) as progress:
        tasks: dict[str, Any] = {}

        def on_image(ev: EvalProgress) -> None:
            label = "reading" if ev.phase == "scan" else "evaluating"
            if ev.phase not in tasks:
                tasks[ev.phase] = progress.add_task(label, total=ev.total, status="")
            progress.update(tasks[ev.phase], completed=ev.done, status=ev.path.name)

        try:
            report = evaluate(config, on_image=on_image)
        except ReportNotWritten as exc:
            failure: ReportNotWritten | None = exc
            report = exc.report
        else:
            failure = None
    render(report)
    if failure is not None:
        raise failure


def _fmt(metric: str, mean: float, std: float) -> str:
    if mean != mean:  # NaN: no values
        return "-"
    if mean == float("inf"):
        return "inf"
    if metric in ("top1", "top5"):  # hit rates: an accuracy in percent, no spread
        return f"{100 * mean:.1f}"
    digits = 3 if metric.startswith(("ssim", "realism")) else 1
    return f"{mean:.{digits}f}±{std:.{digits}f}"


def _table(report: EvalReport, metric_names: list[str], title: str) -> Any:
    from rich import box
    from rich.table import Table

    from colorcli.evaluate import METRIC_LABELS

    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("model", overflow="fold", min_width=12)
    for m in metric_names:
        base = m.removesuffix("_full")
        table.add_column(METRIC_LABELS.get(base, base), justify="right", no_wrap=True)
    judged = "realism" in metric_names and bool(report.realism)
    if judged:
        table.add_column("judged real %", justify="right", no_wrap=True)
    table.add_column("n", justify="right")
    for row in report.models:
        stats = report.aggregates[row.name]
        n = max((stats[m].n for m in metric_names), default=0)
        cells = [_fmt(m, stats[m].mean, stats[m].std) for m in metric_names]
        if judged:
            rate = report.realism[row.name].rate
            cells.append("-" if rate != rate else f"{100 * rate:.1f}")
        table.add_row(escape(row.name), *cells, str(n))
    return table


def _render_critic(report: EvalReport) -> None:
    info = report.critic or {}
    against = (info.get("colorizer") or {}).get("name") or "?"
    acc = (info.get("accuracy") or {}).get("balanced")
    trained = f"trained against {against}" + (
        f", held-out balanced accuracy {100 * acc:.1f}%" if isinstance(acc, float) else ""
    )
    console.print(
        f"Realism critic: {escape(str(info.get('path')))} ({escape(trained)}); judged real = "
        "realism > 0.5: the fooling rate of a colorizer, the true-positive rate on ground-truth.",
        highlight=False,
    )


def render(report: EvalReport) -> None:
    """The comparison table(s), counts, prior source, skipped files and output files."""
    size = report.config.size
    at_size = [m for m in report.metric_names if not m.endswith("_full")]
    full = [m for m in report.metric_names if m.endswith("_full")]
    print_full_width(_table(report, at_size, f"at {size}x{size} px (mean±std over images)"))
    if full:
        print_full_width(_table(report, full, "at full resolution (mean±std over images)"))
    gray = (
        f"{report.n_gray} grayscale images excluded from AuC; "
        if "auc" in report.config.metrics
        else ""
    )
    console.print(
        f"{report.n_evaluated} images evaluated of {report.n_files} files in "
        f"{escape(str(report.config.data_dir))}; {gray}{len(report.failed)} unreadable "
        "(skipped).",
        highlight=False,
    )
    if any(m.startswith("auc_rebal") for m in report.metric_names):
        console.print(f"Rebalanced AuC prior: {escape(report.prior_source)}", highlight=False)
    if report.critic is not None:
        _render_critic(report)
    if "top1" in report.metric_names:
        recovered = ", ".join(
            f"{escape(k)} {100 * v:.0f}%" for k, v in report.gap_recovered.items() if v == v
        )
        console.print(
            f"Interpretability: EfficientNet-Lite0 top-1/top-5 on {report.n_labelled} labelled "
            "images" + (f"; share of the gray-to-truth top-1 gap recovered: {recovered}"
                        if recovered else ""),
            highlight=False,
        )
    for path, msg in report.failed[:10]:
        warn_line(f"skipped {msg}" if str(path) in msg else f"skipped {path}: {msg}")
    if len(report.failed) > 10:
        warn_line(f"... and {len(report.failed) - 10} more unreadable files (see results.json)")
    for name, path in report.outputs.items():
        console.print(f"wrote {name}: {escape(str(path))}", highlight=False)

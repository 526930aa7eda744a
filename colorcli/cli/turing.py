"""`colorcli turing`: a real-or-colorized Turing test page, and the scoring of its answers.

Two forms share the command: ``colorcli turing DATA_DIR ...`` (short for ``colorcli turing make
DATA_DIR ...``) builds the page, ``colorcli turing score ANSWERS.json...`` scores the answers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from colorcli.choices import Device
from colorcli.cli._common import (
    ModelDevice,
    console,
    device_value,
    error_line,
    escape,
    handle_errors,
    make_progress,
    say,
    warn_line,
)

if TYPE_CHECKING:
    from colorcli.turing import PageResult, ScoreReport


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument, when it is not one of its commands (nor --help), is the
    first argument of the default command: ``turing DATA_DIR`` means ``turing make DATA_DIR``.
    (A DATA_DIR literally named 'score' needs the explicit ``turing make score``.)"""

    default_command = "make"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


_HELP = (
    "Perceptual realism: a 'real or colorized?' Turing test run in any web browser.\n\n"
    "[bold]1. Make the page[/]: colorcli turing DATA_DIR --model M --out DIR (short for "
    "'colorcli turing make ...'). Writes DIR/index.html, one self-contained file (images "
    "embedded, no server, no network), and DIR/key.json with the truth. Send index.html to "
    "participants: they see --n photos of DATA_DIR one at a time, half real and half colorized "
    "by the model (each photo once), answer 'real' or 'colorized', and download their answers "
    "as a JSON file at the end.\n\n"
    "[bold]2. Score[/]: colorcli turing score ANSWERS.json... [--key DIR] pools every "
    "participant's answers and prints the confusion matrix (truth x answer), the true positive "
    "rate P(real | real), the false positive rate P(real | colorized) = the fooling rate, with "
    "95% Wilson intervals and a participant-level bootstrap interval."
)

_MAKE_HELP = (
    "Build the Turing test page DIR/index.html (+ DIR/key.json) from the colour photos of "
    "DATA_DIR.\n\n"
    "Photos are drawn in a seeded random order (--seed); unreadable files and grayscale photos "
    "are skipped. Each is resized to --size px on its longer side; a seeded half is recolorized "
    "from its own lightness by --model (the L channel is kept, only the colour changes), the "
    "other half is shown as it is; all are stored as JPEG of the same quality. The page shuffles "
    "the order again for each participant. The truth is in the page only lightly obfuscated "
    "(fine for honest participants, not proof against reading the source)."
)

_SCORE_HELP = (
    "Score answer files downloaded from a Turing test page: confusion matrix, TPR, FPR (the "
    "fooling rate) with 95% confidence intervals, pooled over all participants.\n\n"
    "Each file is checked (format, fields, complete session, and with --key: the page and each "
    "image's truth); a bad file gets a one-line error and is skipped, the others are scored. "
    "The Wilson interval treats all colorized trials as independent; the bootstrap resamples "
    "participants (shown with 2 or more). Exit code 0 when every file was valid, 1 when some "
    "were skipped or none was valid."
)


app = typer.Typer(
    cls=DefaultCommandGroup,
    help=_HELP,
    subcommand_metavar="[make] DATA_DIR [OPTIONS] | score ANSWERS.json... [OPTIONS]",
    rich_markup_mode="rich",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command("make", help=_MAKE_HELP)
@handle_errors
def make_command(
    data_dir: Annotated[
        Path,
        typer.Argument(
            help="Folder of colour photos (searched recursively).",
            show_default=False,
            metavar="DATA_DIR",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model: a model file, hf://owner/repo\\[@revision]/file, or 'default' (the "
            "shipped model).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for index.html and key.json (created)."),
    ] = Path("turing-page"),
    n: Annotated[
        int, typer.Option("--n", help="Photos on the page: half real, half colorized.", min=2)
    ] = 20,
    seed: Annotated[
        int, typer.Option(help="Seed of the photo choice and of which half is colorized.")
    ] = 0,
    size: Annotated[
        int, typer.Option(help="Longer side of the shown images in px (never enlarged).")
    ] = 256,
    quality: Annotated[
        int, typer.Option(help="JPEG quality of every image (1-100).", min=1, max=100)
    ] = 90,
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Annealed-mean temperature T for classification models (default: the model "
            "file's).",
            show_default=False,
        ),
    ] = None,
    device: ModelDevice = Device.auto,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing index.html / key.json.")
    ] = False,
) -> None:
    from colorcli.turing import TuringConfig, make_page

    config = TuringConfig(
        data_dir=data_dir,
        out_dir=out,
        model=model,
        n=n,
        seed=seed,
        size=size,
        quality=quality,
        device=device_value(device),
        temperature=temperature,
        overwrite=overwrite,
    )
    with make_progress(transient=True) as progress:
        task = progress.add_task("reading", total=None, status="")

        def on_image(done: int, total: int, path: Path) -> None:
            progress.update(task, completed=done, total=total, status=path.name)

        result = make_page(config, on_image=on_image)
    _render_page(result, n)


def _render_page(result: PageResult, asked: int) -> None:
    for path, reason in result.skipped:
        warn_line(f"skipped {path}: {reason.removeprefix(f'{path}: ')}")
    if result.n_gray:
        warn_line(f"{result.n_gray} grayscale photo(s) left out")
    if len(result.images) < asked:
        warn_line(f"only {len(result.images)} usable photos (asked for {asked})")
    say(
        f"page {result.page_id}: {len(result.images)} images ({result.n_real} real, "
        f"{result.n_colorized} colorized)"
    )
    say(f"wrote {result.html_path} (open it in a browser; send it to participants)")
    say(f"wrote {result.key_path} (the truth; keep it for 'colorcli turing score --key')")


@app.command("score", help=_SCORE_HELP)
@handle_errors
def score_command(
    answers: Annotated[
        list[Path],
        typer.Argument(
            help="Answer files downloaded from the page.",
            show_default=False,
            metavar="ANSWERS.json...",
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            help="The page's key.json (or its folder): answers for another page are rejected "
            "and each answer's truth is checked against it.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON instead of tables.")
    ] = False,
    bootstrap: Annotated[
        int,
        typer.Option(
            help="Participant-bootstrap replicates for the fooling rate (0: none).", min=0
        ),
    ] = 10000,
) -> None:
    from colorcli.turing import require_valid, score_answer_files

    report = score_answer_files(answers, key, n_boot=bootstrap)
    for _path, reason in report.skipped:
        error_line(f"{reason} (skipped)")
    require_valid(report)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _render_score(report)
    if report.skipped:
        raise typer.Exit(1)


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def _ci(ci: tuple[float, float] | None) -> str:
    if ci is None or math.isnan(ci[0]):
        return "-"
    return f"[{100 * ci[0]:.1f}%, {100 * ci[1]:.1f}%]"


def _render_score(report: ScoreReport) -> None:
    from rich import box
    from rich.table import Table

    c = report.confusion
    say(
        f"{len(report.files)} participant(s), {c.n} trials; page {', '.join(report.page_ids)}; "
        f"model {', '.join(report.models)}"
    )
    matrix = Table(title="confusion matrix", box=box.SIMPLE_HEAD)
    matrix.add_column("truth \\ answer")
    matrix.add_column("real", justify="right")
    matrix.add_column("colorized", justify="right")
    matrix.add_column("total", justify="right")
    matrix.add_row("real", str(c.real_real), str(c.real_colorized), str(c.n_real))
    matrix.add_row(
        "colorized", str(c.colorized_real), str(c.colorized_colorized), str(c.n_colorized)
    )
    console.print(matrix)

    rates = Table(title="rates (positive = 'real')", box=box.SIMPLE_HEAD)
    rates.add_column("rate")
    rates.add_column("value", justify="right")
    rates.add_column("Wilson 95% CI", justify="right")
    rates.add_column("bootstrap 95% CI", justify="right")
    boot = report.fooling_bootstrap
    rates.add_row("TPR", _pct(c.tpr), _ci(report.tpr_ci), "")
    rates.add_row("FPR = fooling rate", _pct(c.fpr), _ci(report.fooling_ci), _ci(boot))
    rates.add_row("accuracy", _pct(c.accuracy), "", "")
    console.print(rates)
    say("TPR = P(answer real | real); FPR = P(answer real | colorized), the fooling rate.")
    say(
        "Wilson: all trials pooled as independent; bootstrap: participants resampled "
        f"({report.n_boot} replicates)."
        if boot is not None
        else "Wilson: all trials pooled as independent (bootstrap: needs 2+ participants)."
    )

    people = Table(title="participants", box=box.SIMPLE_HEAD)
    for name in ("participant", "file", "trials", "TPR", "fooling", "accuracy"):
        people.add_column(name, justify="left" if name in ("participant", "file") else "right")
    for f in report.files:
        fc = f.confusion
        people.add_row(
            escape(f.participant),
            escape(f.path.name),
            str(len(f.trials)),
            _pct(fc.tpr),
            _pct(fc.fpr),
            _pct(fc.accuracy),
        )
    console.print(people)

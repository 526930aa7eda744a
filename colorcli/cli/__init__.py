"""The Typer application (``colorcli = colorcli.cli:main``): assembles the commands, one module
each in this package (``_common``: the shared plumbing and option aliases).

Heavy imports (torch, the core) happen inside the commands so that ``colorcli --help`` is fast:
importing this package imports neither torch nor numpy (tests/test_cli_skeleton.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from colorcli import __version__
from colorcli.cli import (
    build_bins,
    colorize,
    evaluate,
    export_onnx,
    info,
    push,
    rebalance,
    train,
    train_critic,
    turing,
)
from colorcli.cli._common import HelpGroup

app = typer.Typer(
    name="colorcli",
    help="Colorize black-and-white photographs automatically, and train and evaluate colorizers.",
    cls=HelpGroup,  # click's plain two-column help, readable at 80 columns
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"colorcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    """Colorize black-and-white photographs automatically, and train and evaluate colorizers."""
    ctx.obj = {"debug": debug}


app.command("build-bins")(build_bins.command)
app.command("rebalance")(rebalance.command)
app.command("train")(train.command)
app.command("train-critic")(train_critic.command)
app.command("eval")(evaluate.command)
app.command("colorize")(colorize.command)
app.command("info")(info.command)
app.command("export-onnx")(export_onnx.command)
app.command("models")(info.models_command)
app.command("push")(push.command)
app.add_typer(turing.app, name="turing")


def main() -> None:
    app()

"""Shared CLI plumbing: consoles, one-line error rendering, progress bars, and the ``Annotated``
aliases of the options and arguments that several commands share word for word."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from colorcli.choices import Device
from colorcli.errors import ColorcliError, UsageError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


# --- options shared by several commands (the help text is part of --help: keep it identical) ---

#: ``--device`` of the commands that run a colorizer (colorize, turing make).
ModelDevice = Annotated[Device, typer.Option(help="Where the model runs (auto: cuda > mps > cpu).")]
#: ``MODEL`` argument of the commands that read one model file (info, export-onnx).
ModelArgument = Annotated[
    str,
    typer.Argument(
        help="A model file, hf://owner/repo\\[@revision]/file or 'default'.",
        show_default=False,
    ),
]
#: ``--overwrite`` of the commands that write output files (build-bins, rebalance).
OverwriteFiles = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
#: ``--workers`` of the commands that read a folder of images (build-bins, rebalance).
ReadWorkers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Threads reading and counting images (default: number of CPUs, at most 8).",
    ),
]


def device_value(device: Device) -> str | None:
    """The core's spelling of ``--device``: None for auto."""
    return None if device is Device.auto else device.value


def _strip_markup(text: str) -> str:
    """Help text without rich markup (``[bold]x[/]`` -> ``x``, ``\\[`` -> ``[``); brackets that
    are not markup (``[--key DIR]``) stay."""
    from rich.text import Text

    return Text.from_markup(text).plain


def plain_help(command: Any) -> None:
    """Give ``command`` and every sub-command click's two-column help layout (the option help
    gets the rest of the line; flags read ``--x / --no-x``) instead of typer's rich panels,
    which at 80 columns squeeze the help into six narrow columns with ``<bool>`` placeholders.
    The rich markup of help texts is removed. Idempotent."""
    stack = [command]
    while stack:
        cmd = stack.pop()
        if getattr(cmd, "_colorcli_plain_help", False):
            continue
        cmd._colorcli_plain_help = True
        if hasattr(cmd, "rich_markup_mode"):
            cmd.rich_markup_mode = None
        for attr in ("help", "short_help"):
            if isinstance(getattr(cmd, attr, None), str):
                setattr(cmd, attr, _strip_markup(getattr(cmd, attr)))
        for param in getattr(cmd, "params", ()):
            if isinstance(getattr(param, "help", None), str):
                param.help = _strip_markup(param.help)
        stack.extend(getattr(cmd, "commands", {}).values())


class HelpGroup(typer.core.TyperGroup):
    """The root command group: switches the whole tree to ``plain_help`` before parsing."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        plain_help(self)
        return super().main(*args, **kwargs)


def debug_enabled() -> bool:
    ctx: Any = click.get_current_context(silent=True)
    if ctx is None:
        try:  # recent typer vendors click as typer._click, with its own context stack
            from typer._click.globals import get_current_context
        except ImportError:
            return False
        ctx = get_current_context(silent=True)
    if ctx is None:
        return False
    obj = ctx.find_root().obj
    return bool(isinstance(obj, dict) and obj.get("debug"))


def error_line(message: str) -> None:
    """Print one red ``error:`` line on stderr (markup in ``message`` is not interpreted)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def warn_line(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def say(text: str) -> None:
    """One plain summary line on stdout (no markup, never wrapped)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def print_full_width(renderable: Any) -> None:
    """Print ``renderable`` (a table) on stdout: on a terminal as wide as the terminal; to a file
    or pipe at its natural width (rich would otherwise cut it at 80 columns)."""
    if console.is_terminal:
        console.print(renderable)
        return
    natural = console.measure(renderable, options=console.options.update_width(100_000))
    Console(width=max(80, natural.maximum), file=console.file).print(renderable)


def png_path(path: Path | None) -> Path | None:
    """``path`` with ``.png`` appended unless it already ends in .png (any case); None stays."""
    if path is not None and path.suffix.lower() != ".png":
        return path.with_name(path.name + ".png")
    return path


def refuse_existing(targets: Iterable[Path | None], overwrite: bool) -> None:
    """UsageError naming the first existing target, unless ``overwrite`` (None targets ignored)."""
    for target in targets:
        if target is not None and target.exists() and not overwrite:
            raise UsageError(f"{target}: already exists (use --overwrite to replace it)")


def warn_skipped(skipped: Sequence[tuple[Path, str]]) -> None:
    """One warning per skipped file (``(path, reason)``), then their count."""
    for path, reason in skipped:
        warn_line(f"skipped {path}: {reason.removeprefix(f'{path}: ')}")
    if skipped:
        warn_line(f"{len(skipped)} file(s) skipped (unreadable or not images)")


def escape(text: str) -> str:
    from rich.markup import escape as _escape

    return _escape(text)


def handle_errors(fn: F) -> F:
    """Turn ColorcliError (and unexpected errors) into one line and an exit code; no traceback
    unless ``colorcli --debug``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except ColorcliError as exc:
            if debug_enabled():
                traceback.print_exc()
            error_line(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:  # an unexpected failure is still one line without --debug
            if debug_enabled():
                traceback.print_exc()
            error_line(
                f"{type(exc).__name__}: {exc} (run 'colorcli --debug ...' for the traceback)"
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def make_progress(transient: bool = False) -> Progress:
    """A rich progress bar with count, rate-free ETA and elapsed time, drawn on stderr."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )

"""`colorcli export-onnx MODEL OUT.onnx`: the model for the ONNX Runtime backend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from colorcli.cli._common import ModelArgument, escape, handle_errors, say


@handle_errors
def command(
    model: ModelArgument,
    out: Annotated[
        Path,
        typer.Argument(help="The ONNX file to write (replaced atomically).", show_default=False),
    ],
) -> None:
    """Export a model to ONNX (dynamic height and width; bins, decoding and input size in its
    metadata), checked against the torch model before it is written. `colorcli colorize
    --backend onnx` uses it when it lies beside the model file (same name, .onnx). Needs the
    onnx extra: pip install 'colorcli[onnx]'."""
    from colorcli.onnx.export import export_onnx

    result = export_onnx(None if model == "default" else model, out)
    say(
        f"Wrote {escape(str(result.path))} (largest ab difference to the torch model "
        f"{result.max_ab_diff:.2g})"
    )

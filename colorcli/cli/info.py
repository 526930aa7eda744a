"""`colorcli info MODEL` (what a model file is) and `colorcli models` (what is there to use)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from colorcli.cli._common import ModelArgument, console, handle_errors, say

if TYPE_CHECKING:
    from colorcli.modelcard import ModelInfo


def _fmt_metric(value: float) -> str:
    import math

    return "—" if not math.isfinite(value) else f"{value:.4g}"


def _rows(info: ModelInfo) -> list[tuple[str, str]]:
    train = info.train
    rows = [
        ("file", info.path),
        ("format", f"{info.container}, {info.storage}, {info.file_bytes / 1e6:.1f} MB"),
        ("architecture", f"{info.arch} ({info.kind})"),
        ("parameters", f"{info.parameters:,}"),
        ("bins", "—" if info.bins is None else str(info.bins)),
        ("decode", f"{info.decode_method}, temperature {info.temperature:g}"),
        ("input size", f"{info.input_size} px (multiple of {info.size_multiple})"),
        ("training data", ", ".join(train.get("data", [])) or "—"),
    ]
    if "validation" in train:
        rows.append(("validation", str(train["validation"])))
    planned = f" of {train['steps']:,}" if isinstance(train.get("steps"), int) else ""
    rows.append(("steps", "—" if info.step is None else f"{info.step:,}{planned}"))
    for key in ("objective", "batch_size", "crop", "finetuned_from"):
        if key in train:
            rows.append((key.replace("_", " "), str(train[key])))
    for name, value in info.metrics.items():
        rows.append((f"held-out {name}", _fmt_metric(value)))
    rows.extend(("note", n) for n in info.notes)
    return rows


@handle_errors
def command(
    model: ModelArgument,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the facts as one JSON object (for scripts).")
    ] = False,
) -> None:
    """Show what a model file is: architecture, parameters, size, bins, decoding, input size,
    training data and steps, and the held-out metrics it records."""
    from rich import box
    from rich.table import Table

    from colorcli.modelcard import describe

    info = describe(model)
    if as_json:
        say(json.dumps(info.to_dict(), indent=2, default=str))
        return
    table = Table(title=f"colorcli model: {info.source}", box=box.SIMPLE_HEAD, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in _rows(info):
        table.add_row(key, value)
    console.print(table)


def _models_json() -> dict[str, Any]:
    from dataclasses import asdict

    from colorcli.modelcard import cached_hub_models, shipped_models
    from colorcli.models import list_models, model_class
    from colorcli.models.registry import model_summary

    return {
        "architectures": [
            {"name": n, "kind": model_class(n).kind, "summary": model_summary(n)}  # type: ignore[attr-defined]
            for n in list_models()
        ],
        "models": [asdict(m) for m in (*shipped_models(), *cached_hub_models())],
    }


@handle_errors
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON (for scripts).")] = False,
) -> None:
    """List the architectures colorcli can build (one line each) and the model files at hand:
    the shipped default and colorcli models in the Hugging Face cache."""
    data = _models_json()
    if as_json:
        say(json.dumps(data, indent=2))
        return
    say("architectures:")
    width = max(len(a["name"]) for a in data["architectures"])
    for a in data["architectures"]:
        say(f"  {a['name']:<{width}}  {a['kind']:<14}  {a['summary'].replace('``', '')}")
    say("models:")
    if not data["models"]:
        say("  none (no shipped default, nothing in the Hugging Face cache)")
    for m in data["models"]:
        arch = m["arch"] or "?"
        say(f"  {m['spec']}  ({m['where']}, {arch}, {m['size_bytes'] / 1e6:.1f} MB)  {m['path']}")

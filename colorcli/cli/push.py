"""`colorcli push MODEL hf://owner/repo[@revision]`: publish a model with a generated model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from colorcli.cli._common import handle_errors, say


@handle_errors
def command(
    model: Annotated[
        str,
        typer.Argument(
            help="The model to publish: a model file (a run's model.pt, a .safetensors) or "
            "'default'.",
            show_default=False,
        ),
    ],
    repo: Annotated[
        str,
        typer.Argument(
            help="The Hub repository: hf://owner/repo or hf://owner/repo@branch (created if "
            "needed).",
            show_default=False,
        ),
    ],
    private: Annotated[
        bool, typer.Option("--private", help="Create the repository private (when it is new).")
    ] = False,
    message: Annotated[
        str | None,
        typer.Option("--message", "-m", help="Commit message.", show_default=False),
    ] = None,
    dry_run: Annotated[
        Path | None,
        typer.Option(
            "--dry-run",
            help="Write exactly what would be uploaded (model.safetensors, README.md) into this "
            "empty folder and upload nothing.",
            show_default=False,
        ),
    ] = None,
    license: Annotated[
        str, typer.Option("--license", help="Licence in the model card's front matter.")
    ] = "mit",
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="A dataset id for the card's front matter (repeatable; default: the names of "
            "the training folders recorded in the file).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Upload a model file (as model.safetensors) and a README.md model card generated from its
    own metadata to a Hugging Face Hub repository. Authentication is huggingface_hub's: the
    token stored by 'hf auth login', or HF_TOKEN."""
    from colorcli.modelcard import push_model

    upload, url = push_model(
        model,
        repo,
        dry_run=dry_run,
        private=private,
        message=message,
        license=license,
        datasets=dataset or None,
    )
    files = ", ".join(upload.files)
    if url is None:
        say(f"dry run: wrote {files} to {upload.folder} (nothing uploaded)")
        return
    at = f"@{upload.revision}" if upload.revision else ""
    say(f"pushed {files} to hf://{upload.repo_id}{at}: {url}")
    say(f"use it: colorcli colorize PHOTOS --model hf://{upload.repo_id}{at}/model.safetensors")

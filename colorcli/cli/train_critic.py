"""`colorcli train-critic`: options -> CriticConfig -> training.critic.train_critic -> progress
bar and a one-line summary of the held-out accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from colorcli.choices import CriticNorm, Device
from colorcli.cli._common import (
    device_value,
    err_console,
    escape,
    handle_errors,
    make_progress,
    refuse_existing,
    say,
    warn_line,
)


class _Reporter:
    """Renders critic-training events: a progress bar (loss, training accuracy) and one-line
    notes for skipped files."""

    def __init__(self) -> None:
        self.progress = make_progress()
        self.task: Any = None
        self.val_task: Any = None

    def __enter__(self) -> _Reporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: Any) -> None:
        from colorcli import events
        from colorcli.training import critic

        p = self.progress
        if isinstance(event, critic.CriticStarted):
            p.console.print(
                f"training a critic on {event.device} against {escape(event.colorizer)}: "
                f"{event.n_train} training / {event.n_val} held-out photos, {event.steps} steps",
                highlight=False,
            )
            self.task = p.add_task("critic", total=event.steps, status="")
        elif isinstance(event, critic.CriticStep) and self.task is not None:
            status = "" if event.loss != event.loss else f"loss {event.loss:.4f}"
            if event.accuracy == event.accuracy:
                status += f"  acc {100 * event.accuracy:.1f}%"
            p.update(self.task, completed=event.step, status=status)
        elif isinstance(event, events.Progress):
            if self.val_task is None:
                self.val_task = p.add_task("held-out", total=event.total, status="")
            p.update(self.val_task, completed=event.done)
        elif isinstance(event, events.BadFile):
            warn_line(f"skipped {event.reason}")
        elif isinstance(event, events.Note):
            err_console.print(f"[dim]{escape(event.message)}[/]", highlight=False)


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"


@handle_errors
def command(
    data_dir: Annotated[
        list[Path],
        typer.Argument(
            help="Folders of colour photos (searched recursively; several may be given)."
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            metavar="COLORIZER",
            help="The colorizer whose outputs the critic learns to spot: a model file, "
            "hf://owner/repo/file or 'default'.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="CRITIC", help="The critic file to write."),
    ],
    steps: Annotated[int, typer.Option(help="Training steps (batches).", min=1)] = 300,
    batch_size: Annotated[
        int,
        typer.Option(help="Photos per batch (each gives a real and a colorized example).", min=1),
    ] = 16,
    crop: Annotated[
        int, typer.Option(help="Side of the random training crops (and held-out centre crops).")
    ] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate (betas 0.5, 0.999).")] = 2e-4,
    val_split: Annotated[
        float, typer.Option(help="Share of the photos held out to measure the accuracy.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the split, the crops and the weights.")] = 0,
    width: Annotated[int, typer.Option(help="Channels of the critic's first layer.")] = 32,
    layers: Annotated[
        int, typer.Option(help="Stride-2 layers of the PatchGAN (3: 70x70 px patches).")
    ] = 3,
    norm: Annotated[
        CriticNorm,
        typer.Option(
            help="Normalisation: instance (default: a photo's score never depends on its "
            "batch), batch (pix2pix), none or spectral."
        ),
    ] = CriticNorm.instance,
    global_pool: Annotated[
        bool,
        typer.Option(
            "--global-pool",
            help="Train on one score per image (the mean of the patch map) instead of every patch.",
        ),
    ] = False,
    device: Annotated[Device, typer.Option(help="Device (auto: cuda > mps > cpu).")] = Device.auto,
    workers: Annotated[
        int, typer.Option(help="Data-loading worker processes (0: load in the main process).")
    ] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing critic file.")] = False,
) -> None:
    """Train a critic (PatchGAN) to tell real photos from a colorizer's outputs on the same
    photos; report its held-out accuracy and save a self-describing critic file."""
    from colorcli.training.critic import CriticConfig, train_critic

    refuse_existing([out], overwrite)
    config = CriticConfig(
        data_dirs=tuple(str(d) for d in data_dir),
        model=model,
        out=str(out),
        steps=steps,
        batch_size=batch_size,
        crop=crop,
        lr=lr,
        val_split=val_split,
        seed=seed,
        device=device_value(device),
        width=width,
        n_layers=layers,
        norm=norm.value,
        global_pool=global_pool,
        workers=workers,
        overwrite=overwrite,
    )
    with _Reporter() as rep:
        result = train_critic(config, on_event=rep)
    acc = result.accuracy
    say(
        f"critic saved to {result.path}: {acc['on']} accuracy {_pct(acc['balanced'])} balanced "
        f"(real {_pct(acc['real'])}, colorized {_pct(acc['colorized'])}; {acc['n']} photos); "
        f"{result.steps} steps in {result.seconds:.1f} s"
        + (f"; {len(result.bad_files)} unreadable file(s) skipped" if result.bad_files else "")
    )

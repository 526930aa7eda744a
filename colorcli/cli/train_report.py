"""What `colorcli train` shows: the progress bar and one-line notes of the training events
(``Reporter``), and the summary of a finished run."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from colorcli.cli._common import console, err_console, escape, make_progress, say, warn_line

if TYPE_CHECKING:
    from colorcli.training import TrainResult


def print_result(result: TrainResult) -> None:
    """The one-line summary of a finished run (and fine-tuning's before -> after numbers)."""
    summary = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    console.print(
        f"trained to step {result.step}: {result.model_path}"
        + (f" ({summary})" if summary else ""),
        highlight=False,
    )
    independent = result.config is not None and result.config.judge is not None
    _print_before_after(result.before, result.metrics, independent)


BEFORE_AFTER = (
    ("val_realism", "realism"),
    ("val_auc", "AuC %"),
    ("val_auc_rebalanced", "rebalanced AuC %"),
    ("val_colourfulness", "colourfulness"),
)


def _print_before_after(
    before: dict[str, float], after: dict[str, float], independent_judge: bool
) -> None:
    """Fine-tuning: the validation numbers of the starting model and of the result."""
    rows = [(key, label, before[key], after[key]) for key, label in BEFORE_AFTER
            if key in before and key in after]  # fmt: skip
    if not rows:
        return
    say("validation photos, before -> after fine-tuning:")
    for key, label, b, a in rows:
        if key == "val_realism":
            label += (
                " (the --judge critic's P(real))"
                if independent_judge
                else " (P(real) by the critic the model trained against: optimistic, see --judge)"
            )
        say(f"  {label}: {b:.4g} -> {a:.4g}")


def format_duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``2 h 05 min``, ``94 days``: the precision a projection has."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes:02d} min"
    return f"{seconds / 86_400:.0f} days"


def is_main() -> bool:
    """Whether this process reports (rank 0, or no torchrun)."""
    return int(os.environ.get("RANK", "0")) == 0


class Reporter:
    """Renders training events: a rich progress bar (step, loss, images/s, ETA) and one-line
    notes for validations, checkpoints and bad files. Silent on ranks other than 0."""

    def __init__(self) -> None:
        self.enabled = is_main()
        self.progress = make_progress()
        self.task: Any = None
        self.rate = 0.0

    def __enter__(self) -> Reporter:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def __call__(self, event: Any) -> None:
        from colorcli import training

        if not self.enabled:
            return
        p = self.progress
        if isinstance(event, training.Started):
            what = "resuming" if event.resumed else "training"
            p.console.print(
                f"{what} on {event.device} x{event.world_size}: {event.n_train} training / "
                f"{event.n_val} validation photos, steps {event.start_step}->{event.total_steps}",
                highlight=False,
            )
            self.task = p.add_task(
                "train", total=event.total_steps, completed=event.start_step, status=""
            )
        elif isinstance(event, training.StepDone) and self.task is not None:
            self.rate = (
                event.images_per_s if self.rate == 0 else 0.9 * self.rate + 0.1 * event.images_per_s
            )
            p.update(
                self.task,
                completed=event.step,
                status=f"loss {event.loss:.4g}  {self.rate:.1f} img/s",
            )
        elif isinstance(event, training.Projected):
            text = (
                f"projected duration: {format_duration(event.remaining_s)} for the remaining "
                f"{event.total_steps - event.step} steps ({event.seconds_per_step:.3g} s/step)"
            )
            if event.over_a_day:
                warn_line(
                    f"{text}: more than a day; --preset quick (the default) or fewer --steps "
                    "finish sooner, a GPU (--device cuda) much sooner"
                )
            else:
                p.console.print(text, highlight=False)
        elif isinstance(event, training.Caution):
            warn_line(event.message)
        elif isinstance(event, training.Validated):
            text = "  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
            p.console.print(f"step {event.step}: {text}", highlight=False)
        elif isinstance(event, training.BadFile):
            warn_line(f"skipped {event.reason}")
        elif isinstance(event, training.Note):
            err_console.print(f"[dim]{escape(event.message)}[/]", highlight=False)
        elif isinstance(event, training.Mined):
            err_console.print(
                f"[dim]step {event.step}: mined the {event.subset} least real of {event.pool} "
                f"photos (realism {event.subset_realism:.3f}, all {event.pool_realism:.3f})[/]",
                highlight=False,
            )

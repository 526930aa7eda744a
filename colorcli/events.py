"""The events every workflow shares: one convention for progress, skipped files and notes.

A workflow reports through an optional callback ``on_event(event)``; the CLI renders the
events (the core never prints). These are plain frozen dataclasses, torch-free; a workflow adds
its own event types beside them (e.g. ``training.events.StepDone``) and names their union.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OnImage = Callable[[int, int, Path], None]
"""``on_image(done, total, path)``: called after each image of a folder pass is read (the
prior, build-bins and the Turing page report their progress this way)."""


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` items of the stage ``what`` (e.g. "held-out" photos scored)."""

    what: str
    done: int
    total: int


@dataclass(frozen=True)
class BadFile:
    """An input file that was skipped (unreadable, corrupt, ...), reported once: ``reason`` is
    one line."""

    path: str
    reason: str


@dataclass(frozen=True)
class Note:
    """Something worth telling the user about the run (it goes on as intended)."""

    message: str

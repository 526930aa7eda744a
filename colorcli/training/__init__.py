"""Training colorizers: the config, the data pipeline, the objectives and the shared loop.

Entry points: ``make_config(data_dir, out_dir, objective, **options) -> TrainConfig``,
``make_finetune_config(data_dir, out_dir, colorizer, critic=None, **options)`` (fine-tuning a
colorizer file, optionally with hard mining by a critic), ``train(config, overwrite=False,
on_event=None)`` and ``resume(run_dir, overrides, on_event=None)``.
"""

from __future__ import annotations

from colorcli.training.config import TrainConfig, make_config, objective_defaults
from colorcli.training.finetune import make_finetune_config
from colorcli.training.loop import (
    BadFile,
    Caution,
    Mined,
    Note,
    Projected,
    Saved,
    Started,
    StepDone,
    TrainEvent,
    TrainResult,
    Validated,
    resume,
    train,
)

__all__ = [
    "BadFile",
    "Caution",
    "Mined",
    "Note",
    "Projected",
    "Saved",
    "Started",
    "StepDone",
    "TrainConfig",
    "TrainEvent",
    "TrainResult",
    "Validated",
    "make_config",
    "make_finetune_config",
    "objective_defaults",
    "resume",
    "train",
]

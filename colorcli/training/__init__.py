"""Training colorizers: the config, the data pipeline, the objectives and the shared loop.

Entry points: ``make_config(data_dir, out_dir, objective, **options) -> TrainConfig``,
``make_finetune_config(data_dir, out_dir, colorizer, critic=None, **options)`` (fine-tuning a
colorizer file, optionally with hard mining by a critic), ``train(config, overwrite=False,
on_event=None)`` and ``resume(run_dir, overrides, on_event=None)``.

The names load lazily (PEP 562), so that ``import colorcli.training.config`` (and the CLI) does
not import torch; ``from colorcli.training import train`` imports the loop.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


#: the public names not defined in (or re-exported by) ``loop``, and their module
_NOT_IN_LOOP = {
    "TrainConfig": "config",
    "make_config": "config",
    "objective_defaults": "config",
    "make_finetune_config": "finetune",
}


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'colorcli.training' has no attribute {name!r}")
    home = _NOT_IN_LOOP.get(name, "loop")
    return getattr(importlib.import_module(f"colorcli.training.{home}"), name)

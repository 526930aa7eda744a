"""Network architectures, by name: ``create_model(name, **kwargs)``, ``list_models()``.

Models know nothing about Lab or files: they take L in [0, 100] and normalise it with numbers
given to their constructor; classification models return bin logits, regression models ab in
unit scale (tanh), discriminators scores.
"""

from __future__ import annotations

from colorcli.models import eccv16, effnet_unet, patchgan, unet  # noqa: F401  (registers the models)
from colorcli.models.registry import (
    KINDS,
    ModelKind,
    create_model,
    list_models,
    model_class,
    register_model,
)

__all__ = ["KINDS", "ModelKind", "create_model", "list_models", "model_class", "register_model"]

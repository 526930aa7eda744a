"""Network architectures, by name: ``create_model(name, **kwargs)``, ``list_models()``.

Models know nothing about Lab or files: they take L in [0, 100] and normalise it with numbers
given to their constructor; classification models return bin logits, regression models ab in
unit scale (tanh), discriminators scores. Each colorizer file also registers its training
family (``registry.Family``: ``--arch`` of ``colorcli train``).

A new model family: one file here (``@register_model`` classes and a ``register_family``), one
name in the import below, one ``--arch`` choice. The import order is the order in which messages
list the families.
"""

from __future__ import annotations

# the models register on import, in this order (see above)
from colorcli.models import eccv16, unet, effnet_unet, patchgan  # noqa: F401  # isort: skip
from colorcli.models.registry import (
    KINDS,
    Family,
    ModelKind,
    create_model,
    families,
    family,
    list_models,
    model_class,
    model_kind,
    register_family,
    register_model,
    size_multiple,
)

__all__ = [
    "KINDS",
    "Family",
    "ModelKind",
    "create_model",
    "families",
    "family",
    "list_models",
    "model_class",
    "model_kind",
    "register_family",
    "register_model",
    "size_multiple",
]

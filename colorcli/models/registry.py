"""A name -> model-class registry: ``register_model``, ``create_model``, ``list_models``,
``model_summary`` (the class docstring's first line, for ``colorcli models``).

Every registered class carries a class attribute ``kind``: ``"classification"`` (returns bin
logits), ``"regression"`` (returns ab in unit scale through tanh) or ``"discriminator"``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from torch import nn

from colorcli.errors import UsageError

ModelKind = Literal["classification", "regression", "discriminator"]
KINDS: tuple[str, ...] = ("classification", "regression", "discriminator")

_REGISTRY: dict[str, type[nn.Module]] = {}

M = TypeVar("M", bound=type[nn.Module])


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator: register an ``nn.Module`` subclass under ``name``."""

    def wrap(cls: M) -> M:
        kind = getattr(cls, "kind", None)
        if kind not in KINDS:
            raise TypeError(f"model class {cls.__name__} needs a class attribute kind in {KINDS}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered")
        _REGISTRY[name] = cls
        return cls

    return wrap


def list_models(kind: str | None = None) -> list[str]:
    """Registered model names, sorted; only those of ``kind`` when given."""
    return sorted(n for n, c in _REGISTRY.items() if kind is None or c.kind == kind)  # type: ignore[attr-defined]


def model_summary(name: str) -> str:
    """The first line (paragraph, when it wraps) of the docstring of the class registered as
    ``name``, as one line; "" without a docstring."""
    doc = (inspect.getdoc(model_class(name)) or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def model_class(name: str) -> type[nn.Module]:
    """The class registered under ``name``; UsageError listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown model {name!r} (choose from: {', '.join(list_models())})"
        ) from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` with constructor arguments ``kwargs``.

    Unknown names and arguments the constructor does not take raise UsageError.
    """
    cls = model_class(name)
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        raise UsageError(f"model {name!r}: bad arguments {sorted(kwargs)} ({exc})") from None
    return cls(**kwargs)

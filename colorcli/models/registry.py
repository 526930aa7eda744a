"""A name -> model-class registry: ``register_model``, ``create_model``, ``list_models``,
``model_summary`` (the class docstring's first line, for ``colorcli models``), ``size_multiple``;
and the colorizer families that ``colorcli train --arch`` names: ``Family``, ``register_family``,
``family``, ``families``.

Every registered class carries a class attribute ``kind``: ``"classification"`` (returns bin
logits), ``"regression"`` (returns ab in unit scale through tanh) or ``"discriminator"``.

A family (``eccv16``, ``unet``, ``effnet-unet``) is the per-architecture knowledge of training,
kept beside the model classes so that a new family is one model file: which registered model
serves each training objective, how the training options become constructor arguments and how a
model file's arguments describe them back, and the family's training defaults. The training
options are a plain mapping of ``TrainConfig`` field names (``training.config``, which sits above
this package), e.g. ``dataclasses.asdict(config)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from torch import nn

from colorcli.errors import UsageError

ModelKind = Literal["classification", "regression", "discriminator"]
KINDS: tuple[str, ...] = ("classification", "regression", "discriminator")
#: the kind of model each training objective trains (cgan: the generator).
OBJECTIVE_KIND: dict[str, str] = {
    "classification": "classification",
    "regression": "regression",
    "cgan": "regression",
}

_REGISTRY: dict[str, type[nn.Module]] = {}
_SIZE_RULES: dict[str, Callable[..., int]] = {}

M = TypeVar("M", bound=type[nn.Module])


def register_model(
    name: str, *, size_multiple: Callable[..., int] | None = None
) -> Callable[[M], M]:
    """Class decorator: register an ``nn.Module`` subclass under ``name``.

    ``size_multiple``: the input-side multiple as a function of the constructor arguments, for a
    class whose ``size_multiple`` depends on them (unet: ``2 ** depth``); otherwise the class
    attribute ``size_multiple`` (an int; 1 without one) is the rule.
    """

    def wrap(cls: M) -> M:
        kind = getattr(cls, "kind", None)
        if kind not in KINDS:
            raise TypeError(f"model class {cls.__name__} needs a class attribute kind in {KINDS}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered")
        if size_multiple is None and not isinstance(getattr(cls, "size_multiple", 1), int):
            raise TypeError(
                f"model class {cls.__name__}: give register_model a size_multiple function of "
                "the constructor arguments (its size_multiple is not a constant)"
            )
        _REGISTRY[name] = cls
        if size_multiple is not None:
            _SIZE_RULES[name] = size_multiple
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


def model_kind(name: str) -> str:
    """``kind`` of the class registered under ``name`` (UsageError for unknown names)."""
    return str(model_class(name).kind)  # type: ignore[attr-defined]


def size_multiple(name: str, **kwargs: Any) -> int:
    """Input sides of the model ``name`` built with ``kwargs`` must be multiples of this; the
    same number as the built model's ``size_multiple``, without building it."""
    rule = _SIZE_RULES.get(name)
    if rule is not None:
        return int(rule(**kwargs))
    return int(getattr(model_class(name), "size_multiple", 1))


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


# --- colorizer families (``--arch``) ------------------------------------------------------------


def _no_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _no_note(options: Mapping[str, Any]) -> str:
    return ""


@dataclass(frozen=True)
class Family:
    """One ``--arch`` value of ``colorcli train``.

    ``models``: training objective ("classification", "regression", "cgan") -> the registered
    model it trains (its kind must be ``OBJECTIVE_KIND`` of the objective; the cgan generator is
    a regression model); the objectives listed are those the family serves.
    ``arguments(options)``: training options -> the constructor arguments the model file records,
    without ``q`` (the number of bins, added for classification models).
    ``describe(arguments)``: a model file's constructor arguments -> the training options they
    fix (width, depth, encoder, ...): the inverse of ``arguments``, for ``--finetune``.
    ``fresh_arguments(options)``: arguments only a freshly started run passes, not recorded in the
    file (a pretrained encoder's ImageNet weights: the file holds every weight).
    ``defaults``: training defaults of the family in every preset (learning rate, batch, crop);
    ``quick``: what the ``quick`` preset changes on top of them (CPU-sized networks).
    ``crop_note(options)``: what the size multiple depends on, for the ``--crop`` message.
    """

    name: str
    models: Mapping[str, str]
    arguments: Callable[[Mapping[str, Any]], dict[str, Any]]
    describe: Callable[[Mapping[str, Any]], dict[str, Any]]
    fresh_arguments: Callable[[Mapping[str, Any]], dict[str, Any]] = _no_arguments
    defaults: Mapping[str, Any] = field(default_factory=dict)
    quick: Mapping[str, Any] = field(default_factory=dict)
    crop_note: Callable[[Mapping[str, Any]], str] = _no_note

    def model(self, objective: str) -> str:
        """The registered model that ``objective`` trains in this family (KeyError if none)."""
        return self.models[objective]


_FAMILIES: dict[str, Family] = {}


def register_family(fam: Family) -> Family:
    """Register ``fam`` (after its model classes); the order of registration is the order in
    which messages list the families and their models."""
    if fam.name in _FAMILIES and _FAMILIES[fam.name] is not fam:
        raise ValueError(f"family {fam.name!r} is already registered")
    for objective, name in fam.models.items():
        if objective not in OBJECTIVE_KIND:
            raise ValueError(f"family {fam.name!r}: unknown objective {objective!r}")
        if model_kind(name) != OBJECTIVE_KIND[objective]:
            raise TypeError(
                f"family {fam.name!r}: {objective} needs a {OBJECTIVE_KIND[objective]} model, "
                f"{name} is {model_kind(name)}"
            )
    _FAMILIES[fam.name] = fam
    return fam


def families() -> dict[str, Family]:
    """Every registered family by name, in registration order."""
    return dict(_FAMILIES)


def family(name: str) -> Family:
    """The family ``name``; UsageError listing the valid names otherwise."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise UsageError(
            f"unknown architecture {name!r} (choose from: {', '.join(sorted(_FAMILIES))})"
        ) from None

"""colorcli: automatic colorization of black-and-white photographs."""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from colorcli.inference import Colorizer

__all__ = ["Colorizer", "__version__"]


def __dir__() -> list[str]:
    # the lazy names too, so that dir(colorcli) and tab completion show Colorizer
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    # Lazy: ``import colorcli`` (and ``colorcli --help``) must not import torch.
    if name == "Colorizer":
        from colorcli.inference import Colorizer

        return Colorizer
    raise AttributeError(f"module 'colorcli' has no attribute {name!r}")

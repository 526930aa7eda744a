"""`colorcli build-bins` (not built yet)."""

from __future__ import annotations

from colorcli.commands._common import handle_errors
from colorcli.errors import NotAvailable


@handle_errors
def command() -> None:
    """Quantize the ab gamut into bins (reference Q = 313, or from sRGB / a folder)."""
    raise NotAvailable("'colorcli build-bins' is not available yet")

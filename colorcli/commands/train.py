"""`colorcli train` (not built yet)."""

from __future__ import annotations

from colorcli.commands._common import handle_errors
from colorcli.errors import NotAvailable


@handle_errors
def command() -> None:
    """Train a colorizer (classification, regression or cGAN) on a folder of photos."""
    raise NotAvailable("'colorcli train' is not available yet")

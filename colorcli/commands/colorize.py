"""`colorcli colorize` (not built yet)."""

from __future__ import annotations

from colorcli.commands._common import handle_errors
from colorcli.errors import NotAvailable


@handle_errors
def command() -> None:
    """Colorize black-and-white photos (files, folders, globs) at full resolution."""
    raise NotAvailable("'colorcli colorize' is not available yet")

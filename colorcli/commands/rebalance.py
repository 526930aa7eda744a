"""`colorcli rebalance` (not built yet)."""

from __future__ import annotations

from colorcli.commands._common import handle_errors
from colorcli.errors import NotAvailable


@handle_errors
def command() -> None:
    """Estimate the ab prior of a folder of colour photos and compute rebalancing weights."""
    raise NotAvailable("'colorcli rebalance' is not available yet")

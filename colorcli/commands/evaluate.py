"""`colorcli eval` (not built yet)."""

from __future__ import annotations

from colorcli.commands._common import handle_errors
from colorcli.errors import NotAvailable


@handle_errors
def command() -> None:
    """Evaluate colorizers and baselines: AuC (plain and rebalanced), PSNR, SSIM, colourfulness."""
    raise NotAvailable("'colorcli eval' is not available yet")

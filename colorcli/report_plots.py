"""Old import path of ``colorcli.plots.report``, kept while other branches still import it."""

# lead: remove once nothing imports colorcli.report_plots (use colorcli.plots.report)
from colorcli.plots.report import (
    auc_curve_png,
    contact_sheet_png,
    model_colours,
    worst_realism_png,
)

__all__ = ["auc_curve_png", "contact_sheet_png", "model_colours", "worst_realism_png"]

"""Old import path of ``colorcli.plots.training``, kept while other branches still import it."""

# lead: remove once nothing imports colorcli.training.plots (use colorcli.plots.training)
from colorcli.plots._draw import log_ticks, nice_ticks
from colorcli.plots.training import (
    HEADER,
    SAMPLE_COLUMNS,
    loss_curve_image,
    sample_grid_image,
    save_loss_curve,
    save_sample_grid,
)

__all__ = [
    "HEADER",
    "SAMPLE_COLUMNS",
    "log_ticks",
    "loss_curve_image",
    "nice_ticks",
    "sample_grid_image",
    "save_loss_curve",
    "save_sample_grid",
]

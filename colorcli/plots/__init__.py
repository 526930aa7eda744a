"""Figures drawn with Pillow and numpy (no matplotlib).

``_draw``: the shared primitives (fonts, colours, canvas, text, ticks, tick labels, PNG encoding
and ``save_png``, the one atomic save). ``ab_plane``: the quantized gamut and the rebalancing
prior/weights. ``report``: the eval report's accuracy curves and contact sheets. ``training``:
the loss curves and sample grids of a training run (imports torch). Figures return images.

Importing this package does not import torch; the ab-plane names are re-exported here.
"""

from __future__ import annotations

from colorcli.plots._draw import nice_step, save_png
from colorcli.plots.ab_plane import (
    ab_colours,
    bins_image,
    colormap,
    plot_bins,
    plot_rebalance,
    rebalance_image,
)

__all__ = [
    "ab_colours",
    "bins_image",
    "colormap",
    "nice_step",
    "plot_bins",
    "plot_rebalance",
    "rebalance_image",
    "save_png",
]

"""The colorize workflow: colour a batch of image files at full resolution.

``plan_colorize`` (``plan``) expands the inputs and decides each output and what is done
already; ``colorize_jobs`` (``run``) runs the plan with a ``Colorizer`` (``colorcli.inference``,
the engine) and yields one ``FileResult`` per input; ``colorize_paths`` does both in one call.
``dist`` splits a batch over torchrun processes; ``gallery`` writes the review page
``OUT/index.html``.

The names below are re-exported for the code that imports them from here, including the
engine's (``Colorizer``, ``ColorSettings``) and the colour helpers' (``luminance``,
``lab_to_rgb_image``, ``detect_legacy``, ``restore_luminance``).
"""

from __future__ import annotations

from colorcli.color.lab_np import lab_to_rgb_image, luminance
from colorcli.color.legacy import detect_legacy, restore_luminance
from colorcli.colorize.plan import (
    ColorizeConfig,
    Job,
    OutputFormat,
    Plan,
    Skip,
    Status,
    compare_path,
    output_record,
    parse_shard,
    plan_colorize,
)
from colorcli.colorize.run import (
    COLOUR_MESSAGE,
    FileResult,
    Summary,
    colorize_jobs,
    colorize_paths,
)
from colorcli.inference import (
    COMPARE_MAX_SIDE,
    Colorizer,
    ColorSettings,
    LegacyMode,
    Prepared,
    network_size,
)

__all__ = [
    "COLOUR_MESSAGE",
    "COMPARE_MAX_SIDE",
    "ColorSettings",
    "ColorizeConfig",
    "Colorizer",
    "FileResult",
    "Job",
    "LegacyMode",
    "OutputFormat",
    "Plan",
    "Prepared",
    "Skip",
    "Status",
    "Summary",
    "colorize_jobs",
    "colorize_paths",
    "compare_path",
    "detect_legacy",
    "lab_to_rgb_image",
    "luminance",
    "network_size",
    "output_record",
    "parse_shard",
    "plan_colorize",
    "restore_luminance",
]

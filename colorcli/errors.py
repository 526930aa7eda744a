"""Errors raised by the core. The CLI turns each into one line and an exit code."""

from __future__ import annotations


class ColorcliError(Exception):
    """Base class: a problem the user can fix; its message is one line, shown without traceback."""

    exit_code = 1


class UsageError(ColorcliError):
    """Arguments that cannot work together (bad path, unknown choice...)."""

    exit_code = 2


class BadImage(ColorcliError):
    """An image file that cannot be read: not an image, truncated, empty, too large."""


class BadWeights(ColorcliError):
    """A model, bins or rebalancing file that is missing, corrupt or of the wrong kind."""


class EmptyDataset(ColorcliError):
    """A folder with no usable images (or no colour images where colour is needed)."""


class NotAvailable(ColorcliError):
    """A command or feature that is not built yet."""

    exit_code = 2


class MissingFile(BadWeights):
    """A model (or critic) path that does not exist: a usage error like any bad argument."""

    exit_code = 2

"""The Turing test's file formats: the answers a participant downloads from the page
(``ANSWERS_FORMAT``) and the page's key (``KEY_FORMAT``), read and validated into
``AnswerFile`` and ``Key``; a participant's trials counted into a ``Confusion``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colorcli.errors import ColorcliError

ANSWERS_FORMAT = "colorcli-turing-answers"
KEY_FORMAT = "colorcli-turing-key"
FORMAT_VERSION = 1
REAL = "real"
COLORIZED = "colorized"
LABELS = (REAL, COLORIZED)


class BadAnswerFile(ColorcliError):
    """An answer or key file that is not JSON, has the wrong schema or belongs to another page."""


@dataclass(frozen=True)
class TrialAnswer:
    image: str
    truth: str
    answer: str
    ms: float


@dataclass
class AnswerFile:
    """One participant's validated answers."""

    path: Path
    page_id: str
    model: str
    participant: str
    trials: list[TrialAnswer]

    @property
    def confusion(self) -> Confusion:
        return Confusion.from_trials(self.trials)


@dataclass
class Key:
    """The truth of a page (``OUT/key.json``)."""

    path: Path
    page_id: str
    model: str
    truths: dict[str, str]


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadAnswerFile(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadAnswerFile(f"{path}: is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise BadAnswerFile(f"{path}: not a JSON file (not UTF-8 text)") from None
    except OSError as exc:
        raise BadAnswerFile(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadAnswerFile(
            f"{path}: not a JSON file ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def _need(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadAnswerFile(f"{path}: field {name!r} is missing or not a {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "string", int: "integer", float: "number", list: "list", dict: "object"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _check_format(obj: Any, path: Path, expected: str, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or obj.get("format") != expected:
        raise BadAnswerFile(f"{path}: not a colorcli Turing {what} file (no format {expected!r})")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadAnswerFile(f"{path}: field 'version' is missing or not a positive integer")
    if version > FORMAT_VERSION:
        raise BadAnswerFile(
            f"{path}: {what} format version {version} is newer than this colorcli "
            f"understands ({FORMAT_VERSION}); upgrade colorcli"
        )
    return obj


def load_key(path: str | Path) -> Key:
    """Read a page's ``key.json`` (or the folder holding it). Raises BadAnswerFile."""
    path = Path(path)
    if path.is_dir():
        path = path / "key.json"
    obj = _check_format(_load_json(path), path, KEY_FORMAT, "key")
    page_id = _need(obj, "page_id", str, path)
    model = _need(obj, "model", str, path)
    truths: dict[str, str] = {}
    for i, entry in enumerate(_need(obj, "images", list, path)):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("image"), str)
            or entry.get("truth") not in LABELS
        ):
            raise BadAnswerFile(f"{path}: images[{i}] needs 'image' and 'truth' (real/colorized)")
        if entry["image"] in truths:
            raise BadAnswerFile(f"{path}: image {entry['image']!r} is listed twice")
        truths[entry["image"]] = entry["truth"]
    if not truths:
        raise BadAnswerFile(f"{path}: no images")
    return Key(path, page_id, model, truths)


def read_answers(path: str | Path, key: Key | None = None) -> AnswerFile:
    """Read and validate one participant's answers (the page's download).

    Checks the format tag and version, the fields and their types, that every trial has a
    known truth and answer ('real'/'colorized') and a response time >= 0, that no image is
    answered twice and that the session is complete (``n_images`` trials). With ``key``: the
    page id must match and each trial's image and truth must be the key's. Raises
    BadAnswerFile naming the file and the first problem.
    """
    path = Path(path)
    obj = _check_format(_load_json(path), path, ANSWERS_FORMAT, "answers")
    page_id = _need(obj, "page_id", str, path)
    model = _need(obj, "model", str, path)
    participant = _need(obj, "participant", str, path)
    n_images = _need(obj, "n_images", int, path)
    raw = _need(obj, "trials", list, path)
    if not raw:
        raise BadAnswerFile(f"{path}: no trials")
    trials: list[TrialAnswer] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise BadAnswerFile(f"{path}: trials[{i}] is not an object")
        image, truth, answer, ms = t.get("image"), t.get("truth"), t.get("answer"), t.get("ms")
        if not isinstance(image, str) or not image:
            raise BadAnswerFile(f"{path}: trials[{i}]: 'image' is missing or not a string")
        for name, value in (("truth", truth), ("answer", answer)):
            if value not in LABELS:
                raise BadAnswerFile(
                    f"{path}: trials[{i}]: {name!r} must be 'real' or 'colorized', got {value!r}"
                )
        if (
            isinstance(ms, bool)
            or not isinstance(ms, (int, float))
            or not math.isfinite(ms)
            or ms < 0
        ):
            raise BadAnswerFile(f"{path}: trials[{i}]: 'ms' must be a number >= 0, got {ms!r}")
        if image in seen:
            raise BadAnswerFile(f"{path}: image {image!r} is answered twice")
        seen.add(image)
        trials.append(TrialAnswer(image, str(truth), str(answer), float(ms)))
    if len(trials) != n_images:
        raise BadAnswerFile(
            f"{path}: incomplete session ({len(trials)} of {n_images} images answered)"
        )
    if key is not None:
        if page_id != key.page_id:
            raise BadAnswerFile(
                f"{path}: answers are for page {page_id}, not for page {key.page_id} of {key.path}"
            )
        for t in trials:
            expected = key.truths.get(t.image)
            if expected is None:
                raise BadAnswerFile(f"{path}: image {t.image!r} is not on the page of {key.path}")
            if expected != t.truth:
                raise BadAnswerFile(
                    f"{path}: image {t.image!r} is recorded as {t.truth}, but {key.path} says "
                    f"{expected}"
                )
        if len(trials) != len(key.truths):
            raise BadAnswerFile(
                f"{path}: incomplete session ({len(trials)} of the page's "
                f"{len(key.truths)} images answered)"
            )
    return AnswerFile(path, page_id, model, participant, trials)


@dataclass(frozen=True)
class Confusion:
    """Counts of truth x answer; positive = "real"."""

    real_real: int = 0  # true positives: real photo, answered real
    real_colorized: int = 0  # false negatives
    colorized_real: int = 0  # false positives: the colorizer fooled the participant
    colorized_colorized: int = 0  # true negatives

    @classmethod
    def from_trials(cls, trials: Sequence[TrialAnswer]) -> Confusion:
        counts = {(a, b): 0 for a in LABELS for b in LABELS}
        for t in trials:
            counts[(t.truth, t.answer)] += 1
        return cls(
            counts[(REAL, REAL)],
            counts[(REAL, COLORIZED)],
            counts[(COLORIZED, REAL)],
            counts[(COLORIZED, COLORIZED)],
        )

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.real_real + other.real_real,
            self.real_colorized + other.real_colorized,
            self.colorized_real + other.colorized_real,
            self.colorized_colorized + other.colorized_colorized,
        )

    @property
    def n_real(self) -> int:
        return self.real_real + self.real_colorized

    @property
    def n_colorized(self) -> int:
        return self.colorized_real + self.colorized_colorized

    @property
    def n(self) -> int:
        return self.n_real + self.n_colorized

    @property
    def tpr(self) -> float:
        """P(answer real | real); NaN without real trials."""
        return self.real_real / self.n_real if self.n_real else math.nan

    @property
    def fpr(self) -> float:
        """P(answer real | colorized), the fooling rate; NaN without colorized trials."""
        return self.colorized_real / self.n_colorized if self.n_colorized else math.nan

    @property
    def accuracy(self) -> float:
        right = self.real_real + self.colorized_colorized
        return right / self.n if self.n else math.nan

    def matrix(self) -> list[list[int]]:
        """``[[real->real, real->colorized], [colorized->real, colorized->colorized]]``."""
        return [
            [self.real_real, self.real_colorized],
            [self.colorized_real, self.colorized_colorized],
        ]

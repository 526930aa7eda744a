"""The events of a training run (``loop.train`` / ``loop.resume`` report them through
``on_event``): ``Started``, ``StepDone``, ``Projected``, ``Validated``, ``Saved``, ``Caution``,
``Mined`` and the shared ``colorcli.events.BadFile`` and ``Note``; ``EtaProbe`` makes
``Projected``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from colorcli.events import BadFile, Note

ETA_STEPS = 5
"""Steps timed (after the first, which warms up) before ``Projected`` is reported..."""
ETA_MAX_WAIT_S = 60.0
"""... or fewer when they take longer than this."""
ONE_DAY_S = 86_400.0


@dataclass(frozen=True)
class Started:
    start_step: int
    total_steps: int
    n_train: int
    n_val: int
    device: str
    world_size: int
    resumed: bool


@dataclass(frozen=True)
class StepDone:
    step: int
    total_steps: int
    loss: float
    images_per_s: float
    lr: float
    data_s: float
    prepare_s: float
    compute_s: float


@dataclass(frozen=True)
class Projected:
    """The run's projected duration, from the steps timed after the first one (validations and
    checkpoints included): ``remaining_s`` seconds for the steps after ``step``."""

    step: int
    total_steps: int
    seconds_per_step: float
    remaining_s: float

    @property
    def over_a_day(self) -> bool:
        return self.remaining_s > ONE_DAY_S


@dataclass(frozen=True)
class Validated:
    step: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class Saved:
    step: int
    path: Path


@dataclass(frozen=True)
class Caution:
    """Something the run does that the user probably does not want (it goes on anyway)."""

    message: str


@dataclass(frozen=True)
class Mined:
    """A hard-mining round: before step ``step``, the ``subset`` least real of ``pool`` photos."""

    step: int
    round: int
    pool: int
    subset: int
    pool_realism: float
    subset_realism: float


TrainEvent = Started | StepDone | Projected | Validated | Saved | BadFile | Note | Caution | Mined
OnEvent = Callable[[TrainEvent], None]


class EtaProbe:
    """Times the steps after the first one (which warms up: workers, allocations) and makes the
    ``Projected`` event once ``ETA_STEPS`` of them, or ``ETA_MAX_WAIT_S`` seconds, have passed."""

    def __init__(self, total_steps: int) -> None:
        self.total = total_steps
        self.t0: float | None = None
        self.step0 = 0
        self.done = False

    def after_step(self, step: int) -> Projected | None:
        if self.done:
            return None
        now = time.perf_counter()
        if self.t0 is None:
            self.t0, self.step0 = now, step
            return None
        n = step - self.step0
        if n < ETA_STEPS and now - self.t0 < ETA_MAX_WAIT_S:
            return None
        self.done = True
        if step >= self.total:
            return None
        per_step = (now - self.t0) / n
        return Projected(step, self.total, per_step, per_step * (self.total - step))

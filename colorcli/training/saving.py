"""Checkpoints of a run: the model file(s), the fine-tuned critic and the resume file, written
by ``save`` (one call, rank 0), read back by ``load_resume_state`` and ``restore``.

``resume.pt`` holds everything else needed to continue exactly: model and optimizer states,
GradScaler, step, the prior/class weights, world size, the file-list digest, the unreadable
files, the last metrics and, when fine-tuning, the sources' descriptions and the current mining
round (tensors and plain values only; loaded with ``torch.load(weights_only=True)``). Files are
written through a temp file + ``os.replace``, model file first, so a SIGKILL at any moment
leaves the previous consistent checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from colorcli import checkpoint
from colorcli.color.lab import AB_SCALE
from colorcli.errors import BadWeights, UsageError
from colorcli.fsutil import atomic_torch_save
from colorcli.training.common import Objective
from colorcli.training.config import TrainConfig
from colorcli.training.finetune import FinetuneObjective
from colorcli.training.mining import MinedRound
from colorcli.training.rundir import CRITIC_FILE, MODEL_FILE, RESUME_FILE, restartable
from colorcli.training.sources import Sources

RESUME_FORMAT = checkpoint.RESUME_FORMAT  # "colorcli-resume"; the file tags live in checkpoint
RESUME_VERSION = 1


def save(
    out: Path,
    config: TrainConfig,
    objective: Objective,
    step: int,
    *,
    stats: dict[str, Any],
    digest: str,
    sources: Sources | None,
    mined: MinedRound | None,
    bad: dict[str, str],
    last_val: dict[str, float],
    world_size: int,
) -> Path:
    """Write the checkpoint of ``step`` in ``out``: ``model.pt`` (and ``model-stepN.pt``), the
    critic when it trains, then ``resume.pt``; returns the model file's path."""
    c = config
    model = objective.models["model"]
    kw: dict[str, Any] = {
        "arch": objective.spec.arch,
        "arch_kwargs": objective.spec.arch_kwargs,
        "bins": stats["bins"] if c.objective == "classification" else None,
        "decode": objective.spec.decode,
        "input_size": c.crop,
        "train_config": {**c.to_dict(), **_provenance(sources)},
        "metrics": last_val,
        "step": step,
    }
    path = checkpoint.save_model(out / MODEL_FILE, model, **kw)
    if c.keep_checkpoints:
        checkpoint.save_model(out / f"model-step{step}.pt", model, **kw)
    if isinstance(objective, FinetuneObjective) and objective.train_critic:
        assert sources is not None
        _save_critic(out, objective, sources, step, c.keep_checkpoints)
    payload = {
        "format": RESUME_FORMAT,
        "version": RESUME_VERSION,
        "config": c.to_dict(),
        "step": step,
        "world_size": world_size,
        "models": {n: m.state_dict() for n, m in objective.models.items()},
        "optimizers": {n: o.state_dict() for n, o in objective.optimizers.items()},
        "scalers": {n: s.state_dict() for n, s in objective.scalers.items()},
        "bins": torch.as_tensor(stats["bins"]),
        "prior_smoothed": torch.as_tensor(stats["prior_smoothed"]),
        "class_weights": torch.as_tensor(stats["class_weights"]),
        "prior_source": stats["prior_source"],
        "files_digest": digest,
        "bad_files": dict(bad),
        "last_metrics": dict(last_val),
    }
    if sources is not None:
        payload["finetune"] = {
            "colorizer": sources.colorizer,
            "critic": sources.critic_info,
            "judge": sources.judge_info,
        }
        payload["hard_mining"] = None if mined is None else mined.to_state()
    atomic_torch_save(payload, out / RESUME_FILE)
    return path


def _provenance(src: Sources | None) -> dict[str, Any]:
    """Model-file metadata of a fine-tuning run: where the colorizer and critic came from."""
    if src is None:
        return {}
    keys = ("path", "sha256", "arch", "step")
    out: dict[str, Any] = {"finetuned_from": {k: src.colorizer.get(k) for k in keys}}
    if src.critic_info is not None:
        out["hard_mining_critic"] = {k: src.critic_info.get(k) for k in keys[:3]}
    if src.judge_info is not None:
        out["realism_judge"] = {k: src.judge_info.get(k) for k in keys[:3]}
    return out


def _save_critic(
    out: Path, objective: FinetuneObjective, sources: Sources, step: int, keep: bool
) -> None:
    """The critic that trains against the generator, as ``critic.pt`` (and ``critic-stepN.pt``
    with ``keep``), described like the file it started from."""
    info = sources.critic_info
    assert objective.critic is not None and info is not None
    meta = {
        **dict(info.get("meta") or {}),
        "finetuned_with": str(out / MODEL_FILE),
        "finetuned_from": {k: info.get(k) for k in ("path", "sha256")},
        "step": step,
    }
    kw: dict[str, Any] = {
        "arch": info["arch"],
        "arch_kwargs": info["arch_kwargs"],
        "input_size": info["input_size"],
        "ab_scale": info.get("ab_scale", AB_SCALE),
        "meta": meta,
    }
    checkpoint.save_critic(out / CRITIC_FILE, objective.critic, **kw)
    if keep:
        checkpoint.save_critic(out / f"critic-step{step}.pt", objective.critic, **kw)


def load_resume_state(run_dir: str | Path) -> dict[str, Any]:
    """The resume file of ``run_dir`` (``torch.load(weights_only=True)``); BadWeights if absent
    or not a colorcli resume file."""
    path = Path(run_dir) / RESUME_FILE
    if not path.is_file():
        if Path(run_dir).is_dir() and any(Path(run_dir).iterdir()) and restartable(Path(run_dir)):
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


def restore(objective: Objective, state: Mapping[str, Any]) -> None:
    """Load the model, optimizer and GradScaler states that ``save`` wrote."""
    for name, m in objective.models.items():
        m.load_state_dict(state["models"][name])
    for name, o in objective.optimizers.items():
        o.load_state_dict(state["optimizers"][name])
    for name, sc in objective.scalers.items():
        sc.load_state_dict(state["scalers"][name])

"""The run's ``metrics.jsonl`` (one JSON object per line: ``{"step", "kind": "train" | "val" |
"mine", ...}``), its loss curves, and the window of training losses between two log lines."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from colorcli.fsutil import atomic_write
from colorcli.plots import training as plots
from colorcli.training.config import TrainConfig
from colorcli.training.distributed import Dist


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


class MetricsLog:
    """The records of the run so far (``history``) and their file; on ranks other than 0
    (``main`` False) nothing is kept or written."""

    def __init__(self, path: Path, main: bool) -> None:
        self.path = path
        self.main = main
        self.history: list[dict[str, Any]] = []

    def resume(self, start: int) -> dict[str, float]:
        """Keep the records up to step ``start`` (a mining round at ``start`` is mined again,
        with the same weights, so its record goes) and rewrite the file with them; returns the
        metrics of the step-0 validation (fine-tuning's "before"), or {}."""
        if not self.main:
            return {}
        self.history = [
            r
            for r in read_metrics(self.path)
            if int(r.get("step", 0)) <= start
            and not (r.get("kind") == "mine" and int(r.get("step", 0)) >= start)
        ]
        text = "".join(json.dumps(r) + "\n" for r in self.history)
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return next(
            (
                {k: v for k, v in r.items() if k not in ("step", "kind")}
                for r in self.history
                if r.get("kind") == "val" and r.get("step") == 0
            ),
            {},
        )

    def append(self, record: dict[str, Any]) -> None:
        if not self.main:
            return
        self.history.append(record)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

    def plot_losses(self, path: Path, title: str) -> None:
        """The train and validation loss curves of ``history`` as a PNG at ``path``."""
        train_pts = [(r["step"], r["loss"]) for r in self.history if r.get("kind") == "train"]
        val_pts = [
            (r["step"], r["val_loss"])
            for r in self.history
            if r.get("kind") == "val" and "val_loss" in r
        ]
        plots.save_loss_curve(path, {"train loss": train_pts, "val loss": val_pts}, title=title)


class LossWindow:
    """Sums of each train-step loss over the steps since the last log line (steps without a
    loss, scale 0, left out); ``flush`` logs their means across processes."""

    def __init__(self, config: TrainConfig, d: Dist, device: torch.device, log: MetricsLog):
        self.config, self.d, self.device, self.log = config, d, device, log
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.n = 0
        self.t0 = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor], scale: float) -> None:
        if scale > 0:
            for k, v in losses.items():
                self.sums[k] = self.sums[k] + v.double() if k in self.sums else v.double()
            self.n += 1

    def flush(self, step: int, lr: float, names: list[str]) -> float:
        """Log the mean of every train-step loss (``names``, "loss" first) over the window's
        steps that had a loss (across processes), start a new window; returns the mean "loss"."""
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        buf = torch.stack(
            [torch.full_like(zero, float(self.n))] + [self.sums.get(k, zero) for k in names]
        )
        if self.d.world_size > 1:
            dist.all_reduce(buf)
        n = float(buf[0])
        means = {k: float(buf[i + 1]) / n if n > 0 else float("nan") for i, k in enumerate(names)}
        loss = means["loss"]
        if self.d.main:
            c = self.config
            elapsed = time.perf_counter() - self.t0
            steps_in = step % c.log_every or c.log_every
            rec: dict[str, Any] = {
                "step": step,
                "kind": "train",
                "loss": round(loss, 6) if math.isfinite(loss) else None,
                "lr": lr,
                "images_per_s": round(
                    steps_in * c.batch_size * self.d.world_size / max(elapsed, 1e-9), 3
                ),
            }
            for k, v in means.items():
                if k != "loss":
                    rec[k] = round(v, 6) if math.isfinite(v) else None
            self.log.append(rec)
        self._reset()
        return loss

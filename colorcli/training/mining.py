"""Hard mining (fine-tuning with a critic, see ``finetune``): rounds that score every training
photo with the current critic and train on the least real ones.

A round starts at step 0 and every ``mine_every`` steps (default: one epoch). ``Miner.batches``
yields the training batches round after round: a round is mined when its first batch is asked
for, i.e. after the previous step's update (a fresh DataLoader per round, since a round's
subset is known only then). The current round (``Miner.mined``) is part of the resume file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from colorcli.errors import EmptyDataset
from colorcli.training.common import Batch, eval_mode, lab_batch, step_seed
from colorcli.training.config import TrainConfig
from colorcli.training.dataset import BatchOrder, PhotoCrops, make_keyed_loader
from colorcli.training.distributed import Dist
from colorcli.training.events import Mined, OnEvent
from colorcli.training.finetune import FinetuneObjective
from colorcli.training.metrics_log import MetricsLog


def hardest(realism: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the ``ceil(fraction * n)`` lowest finite values of ``realism`` (NaN: not
    eligible), lowest first, ties broken by index; empty when none is eligible."""
    realism = np.asarray(realism, dtype=np.float64)
    eligible = np.flatnonzero(np.isfinite(realism))
    if len(eligible) == 0:
        return eligible
    m = max(1, math.ceil(fraction * len(eligible) - 1e-9))
    order = eligible[np.argsort(realism[eligible], kind="stable")]
    return order[:m]


@dataclass(frozen=True)
class MinedRound:
    """One mining round: its number, the realism of every training photo (NaN: unreadable or
    grayscale) and the chosen subset (file indices, least real first)."""

    round: int
    realism: np.ndarray
    subset: np.ndarray

    def to_state(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "realism": torch.from_numpy(np.asarray(self.realism, dtype=np.float64)),
            "subset": torch.from_numpy(np.asarray(self.subset, dtype=np.int64)),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> MinedRound:
        return cls(int(state["round"]), state["realism"].numpy(), state["subset"].numpy())

    def summary(self) -> dict[str, Any]:
        pool = self.realism[np.isfinite(self.realism)]
        chosen = self.realism[self.subset]
        return {
            "pool": len(pool),
            "subset": len(chosen),
            "pool_realism": float(pool.mean()) if len(pool) else float("nan"),
            "subset_realism": float(chosen.mean()) if len(chosen) else float("nan"),
            "threshold": float(chosen.max()) if len(chosen) else float("nan"),
        }


@dataclass(frozen=True)
class MiningSchedule:
    """Rounds of ``period`` steps; the batches of a round are passes over its subset.

    Pass ``p`` of round ``k`` is the permutation of the subset drawn from ``(seed, k, p)``, cut
    into batches like ``dataset.BatchOrder`` (sharded by rank; repeated when the subset is
    smaller than a global batch). Its crops use the epoch key ``k * period + p`` (unique per pass,
    as every pass takes at least one step)."""

    period: int
    batch_size: int
    seed: int
    rank: int = 0
    world_size: int = 1

    def round_of(self, step: int) -> int:
        return step // self.period

    def round_end(self, k: int) -> int:
        return (k + 1) * self.period

    def batches(self, mined: MinedRound, start: int) -> list[list[tuple[int, int]]]:
        """The keys ``(file index, epoch key)`` of the steps ``start`` .. end of its round."""
        k = mined.round
        if self.round_of(start) != k:
            raise ValueError(f"step {start} is not in mining round {k}")
        subset = np.asarray(mined.subset, dtype=np.int64)
        seed = int(np.random.SeedSequence([self.seed, 52361, k]).generate_state(1)[0])
        order = BatchOrder(len(subset), self.batch_size, seed, self.rank, self.world_size)
        out: list[list[tuple[int, int]]] = []
        for step in range(start, self.round_end(k)):
            p, b = order.position(step - k * self.period)
            keys = order.epoch_keys(p)[b]
            out.append([(int(subset[i]), k * self.period + p) for i in keys])
        return out


@torch.no_grad()
def score_batches(
    objective: FinetuneObjective,
    batches: Iterator[Batch],
    n: int,
    device: torch.device,
    on_bad: Callable[[int, str], None] | None = None,
) -> np.ndarray:
    """The current critic's realism of the current generator's colorization for each photo of
    ``batches`` (this process's share; centre crops), gathered over all processes: ``(n,)``
    float64, NaN for unreadable or grayscale photos."""
    values = torch.zeros(n, dtype=torch.float64, device=device)
    seen = torch.zeros(n, dtype=torch.float64, device=device)
    with eval_mode(objective.models):
        for batch in batches:
            lum, _, keep, index = lab_batch(batch, device, on_bad)
            if not bool(keep.any()):
                continue
            lum, idx = lum[keep], index.to(device)[keep]
            pred = objective.predict_ab(lum)
            values[idx] = objective.realism(lum, pred, judge=False).double()
            seen[idx] = 1.0
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(values)
        dist.all_reduce(seen)
    out = values.cpu().numpy()
    out[seen.cpu().numpy() == 0] = np.nan
    return out


def shard(n: int, batch_size: int, rank: int, world_size: int) -> list[list[tuple[int, int]]]:
    """Scoring keys of this process: files ``rank, rank + world, ...`` in batches, epoch key 0."""
    mine = list(range(rank, n, world_size))
    return [[(i, 0) for i in mine[j : j + batch_size]] for j in range(0, len(mine), batch_size)]


def mining_period(config: TrainConfig, n_train: int, world_size: int) -> int:
    """Steps per mining round: ``mine_every``, or one epoch of the training photos."""
    if config.mine_every > 0:
        return config.mine_every
    return max(1, n_train // (config.batch_size * world_size))


class Miner:
    """The mining rounds of one run: ``mined`` is the current round (None before the first,
    or from the resume file); ``batches`` mines each round when it begins."""

    def __init__(
        self,
        config: TrainConfig,
        d: Dist,
        device: torch.device,
        log: MetricsLog,
        emit: OnEvent,
        report_bad: Callable[[str, str], None],
        mined: MinedRound | None,
    ) -> None:
        self.config, self.d, self.device = config, d, device
        self.log, self.emit, self.report_bad = log, emit, report_bad
        self.mined = mined

    def mine(
        self, objective: FinetuneObjective, files: list[Path], k: int, step: int
    ) -> MinedRound:
        """Score every training photo and keep the least real (round ``k``, before ``step``);
        logs and reports the round."""
        c, d = self.config, self.d
        scoring = PhotoCrops(files, c.crop, train=False, seed=c.seed)
        keys = shard(len(files), c.batch_size, d.rank, d.world_size)
        loader = make_keyed_loader(
            scoring, keys, workers=min(c.workers, len(keys)), pin_memory=False
        )
        # dropout kept on at test time draws from the global RNG: make the scores reproducible
        torch.manual_seed(step_seed(c.seed, 1_000_003 + d.rank, step))

        def bad(i: int, reason: str) -> None:
            self.report_bad(str(files[i]), reason)

        realism = score_batches(objective, iter(loader), len(files), self.device, bad)
        subset = hardest(realism, c.hard_fraction)
        if len(subset) == 0:
            raise EmptyDataset(
                f"{c.data_dir}: no readable colour photo to mine (all are unreadable or grayscale)"
            )
        mined = MinedRound(k, realism, subset)
        summary = mined.summary()
        rec = {"step": step, "kind": "mine", "round": k}
        rec.update({n: round(v, 6) if isinstance(v, float) else v for n, v in summary.items()})
        self.log.append(rec)
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

    def batches(
        self,
        objective: FinetuneObjective,
        dataset: PhotoCrops,
        files: list[Path],
        start: int,
    ) -> Iterator[Any]:
        """The training batches from ``start`` on, one mining round after the other: a round is
        mined when its first batch is asked for, i.e. after the previous step's update."""
        c, d = self.config, self.d
        schedule = MiningSchedule(
            mining_period(c, len(files), d.world_size), c.batch_size, c.seed, d.rank, d.world_size
        )
        step = start
        while True:
            k = schedule.round_of(step)
            if self.mined is None or self.mined.round != k:
                self.mined = self.mine(objective, files, k, step)
            keys = schedule.batches(self.mined, step)
            yield from make_keyed_loader(
                dataset, keys, workers=c.workers, pin_memory=self.device.type == "cuda"
            )
            step = schedule.round_end(k)

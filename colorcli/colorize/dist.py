"""Colorize batches spread over several processes with torchrun.

``torchrun --nproc_per_node N -m colorcli colorize IN... -o OUT`` starts N copies of the
command. Each one plans the same sorted file list and keeps every N-th file from its rank on
(the ``--shard RANK/N`` split of ``plan_colorize``; with ``--shard I/M`` as well, the two
compose into part ``I + M x RANK`` of ``M x N``, so array jobs can run torchrun too). Each
rank writes only its own outputs, atomically as always, and the skip-existing rule makes a
rerun resume. On CUDA each rank uses the GPU of its ``LOCAL_RANK``. At the end the ranks meet
once in a gloo process group (``gather_summary``): rank 0 receives every rank's results and
reports the merged summary; the others report nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from colorcli.colorize.plan import ColorizeConfig
from colorcli.colorize.run import Summary

#: How long rank 0 waits for the slowest rank at the final meeting: its shard may hold hours
#: more work than the others'. A rank that crashes makes torchrun stop the others anyway.
GATHER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a torchrun job."""

    rank: int
    world: int
    local: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def torchrun_ranks(env: Mapping[str, str] | None = None) -> Ranks | None:
    """The torchrun ranks from ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; None outside torchrun
    (or with a single process)."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    rank = int(env.get("RANK", "0"))
    return Ranks(rank, world, int(env.get("LOCAL_RANK", str(rank))))


def rank_shard(shard: tuple[int, int] | None, ranks: Ranks) -> tuple[int, int]:
    """The part of the plan this rank does: ``(RANK, N)``, within ``--shard (I, M)`` if given
    (every M-th file from I, then every N-th of those: ``(I + M x RANK, M x N)``)."""
    i, m = shard or (0, 1)
    return i + m * ranks.rank, m * ranks.world


def rank_device(device: str | None, ranks: Ranks) -> str | None:
    """One GPU per rank: "auto" (with CUDA present) and "cuda" become ``cuda:LOCAL_RANK``; an
    explicit ``cuda:K``, "cpu" and "mps" stay as they are."""
    if device in (None, "auto"):
        import torch

        return f"cuda:{ranks.local}" if torch.cuda.is_available() else device
    return f"cuda:{ranks.local}" if device == "cuda" else device


def for_rank(config: ColorizeConfig, ranks: Ranks) -> ColorizeConfig:
    """``config`` narrowed to this rank's files and device."""
    return replace(
        config, shard=rank_shard(config.shard, ranks), device=rank_device(config.device, ranks)
    )


def merge_summaries(parts: Sequence[Summary]) -> Summary:
    """One summary of several ranks: counts summed, the time of the slowest rank, results
    sorted by input path. ``ignored`` is the same on every rank (each plans the whole list)."""
    merged = Summary(
        done=sum(p.done for p in parts),
        skipped=sum(p.skipped for p in parts),
        failed=sum(p.failed for p in parts),
        seconds=max((p.seconds for p in parts), default=0.0),
        legacy=sum(p.legacy for p in parts),
        ignored=max((p.ignored for p in parts), default=0),
    )
    merged.results = sorted((r for p in parts for r in p.results), key=lambda r: str(r.source))
    return merged


def gather_summary(summary: Summary, ranks: Ranks) -> Summary | None:
    """Meet the other ranks (gloo, also on GPUs: only small Python objects travel) and give
    rank 0 the merged summary; the other ranks get None. Exceptions kept for ``--debug`` are
    dropped from the results first (they may not pickle; each rank printed its own)."""
    import torch.distributed as dist

    own = replace(summary, results=[replace(r, exception=None) for r in summary.results])
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("gloo", timeout=GATHER_TIMEOUT)
    try:
        parts: list[Summary | None] = [None] * ranks.world
        dist.gather_object(own, parts if ranks.main else None, dst=0)
    finally:
        if owns_group:
            dist.destroy_process_group()
    if not ranks.main:
        return None
    return merge_summaries([p for p in parts if p is not None])


__all__ = [
    "Ranks",
    "for_rank",
    "gather_summary",
    "merge_summaries",
    "rank_device",
    "rank_shard",
    "torchrun_ranks",
]

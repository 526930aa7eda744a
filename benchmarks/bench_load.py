"""Load time of one model file, safetensors against the PyTorch ``.pt`` it was converted from.

    python benchmarks/bench_load.py [--model default] [--repeats 15] [--threads 1]

Writes the model (the shipped default unless ``--model`` names another file) both ways into a
temporary folder, the same weights and description (``torch.save`` of the description dict as
colorcli wrote before, and ``checkpoint.save_model``'s safetensors), then times, alternating the
two so that machine load hits both alike:

* ``read``: the container alone (``checkpoint.read_model_file``: tensors + description);
* ``load``: ``checkpoint.load_model(path, "cpu")``, i.e. read + build the network + load its
  state dict -- what ``colorize`` and ``eval`` pay once per process.

Prints the median of each and the ratio .pt / safetensors, in one run. Page-cache warm (the
files are read once before timing): this compares parsing, not the disk.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from colorcli import checkpoint


def _legacy_copy(src: str, dst: Path) -> None:
    """The file as colorcli wrote it before safetensors (torch.save of the whole payload)."""
    raw = checkpoint.read_model_file(src)
    torch.save(raw, dst)


def _times(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="model file, hf://... or default")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        pt, st = Path(tmp) / "model.pt", Path(tmp) / "model.safetensors"
        _legacy_copy(a.model, pt)
        half = bool(checkpoint.read_model_file(a.model).get("half"))
        checkpoint.copy_model(pt, st, half=half)
        for p in (pt, st):  # warm the page cache and the code paths
            checkpoint.load_model(p, "cpu")
        results: dict[str, dict[str, list[float]]] = {"read": {}, "load": {}}
        for _ in range(a.repeats):
            for name, path in (("pt", pt), ("safetensors", st)):
                results["read"].setdefault(name, []).extend(
                    _times(lambda p=path: checkpoint.read_model_file(p), 1)
                )
                results["load"].setdefault(name, []).extend(
                    _times(lambda p=path: checkpoint.load_model(p, "cpu"), 1)
                )
        sizes = {"pt": pt.stat().st_size, "safetensors": st.stat().st_size}
    print(
        f"model {a.model}: .pt {sizes['pt'] / 1e6:.1f} MB, "
        f"safetensors {sizes['safetensors'] / 1e6:.1f} MB; median of {a.repeats}, "
        f"{a.threads} thread(s)"
    )
    for what, by in results.items():
        pt_s, st_s = statistics.median(by["pt"]), statistics.median(by["safetensors"])
        print(
            f"{what:5s} .pt {pt_s * 1e3:7.1f} ms   safetensors {st_s * 1e3:7.1f} ms   "
            f"ratio .pt/safetensors {pt_s / st_s:.2f}"
        )


if __name__ == "__main__":
    main()

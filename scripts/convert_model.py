"""Rewrite a colorcli model file (or the authors' released eccv16 state dict) as safetensors.

    python scripts/convert_model.py IN OUT [--half | --no-half]

IN is anything ``colorcli.checkpoint.load_model`` reads (a ``.pt`` from before safetensors, a
safetensors file, ``hf://...`` or ``default``); OUT is written atomically as a safetensors file
with the same self-description (architecture, bins, decode settings, training config, metrics,
step). The weights keep their storage type unless ``--half`` / ``--no-half`` is given; the
output is checked to give the same network output as the input before the script says so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from colorcli.checkpoint import copy_model, load_model, read_model_file, save_model
from colorcli.errors import ColorcliError


def convert(src: str, dst: Path, half: bool | None) -> Path:
    loaded = load_model(src, device="cpu")
    if loaded.meta.get("released"):  # the authors' state dict: no description to keep
        return save_model(
            dst,
            loaded.model,
            arch=loaded.arch,
            arch_kwargs=loaded.arch_kwargs,
            bins=loaded.bins,
            decode={"method": loaded.decode_method, "temperature": loaded.temperature},
            input_size=loaded.input_size,
            half=bool(half),
        )
    raw = read_model_file(src)
    return copy_model(src, dst, half=bool(raw.get("half")) if half is None else half)


def check(src: str, dst: Path) -> float:
    """The largest absolute difference of the two files' outputs on a random L."""
    a, b = load_model(src, device="cpu"), load_model(dst, device="cpu")
    side = 8 * max(a.size_multiple, b.size_multiple)
    lum = torch.rand(1, 1, side, side, generator=torch.Generator().manual_seed(0)) * 100
    return float((a.predict_ab(lum) - b.predict_ab(lum)).abs().max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", metavar="IN", help="model file, hf://... or default")
    ap.add_argument("dst", metavar="OUT", type=Path, help="safetensors file to write")
    ap.add_argument(
        "--half",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="store float16 (default: as the input file does)",
    )
    args = ap.parse_args()
    try:
        out = convert(args.src, args.dst, args.half)
        diff = check(args.src, out)
    except ColorcliError as exc:
        sys.exit(f"error: {exc}")
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, safetensors); "
        f"largest ab difference from {args.src}: {diff:.3g}"
    )


if __name__ == "__main__":
    main()

"""Draw the README's before/after strip: each bundled example beside its colorization.

    python scripts/make_strip.py [--model default] [--out docs/examples_before_after.png]

Every photo in ``examples/`` is colorized with the model (the same ``Colorizer`` as
``colorcli colorize``, legacy detection on) and shown as it was | colorized, one row each, rows
scaled to ``--height`` pixels. Written atomically as PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from colorcli.colorize import Colorizer
from colorcli.fsutil import atomic_open
from colorcli.imageio import find_images

REPO = Path(__file__).resolve().parent.parent


def row(colorizer: Colorizer, path: Path, height: int, gap: int) -> Image.Image:
    before = Image.open(path)
    before.load()
    after = colorizer.colorize(before)
    width = round(before.width * height / before.height)
    left = before.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    right = after.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (2 * width + gap, height), "white")
    out.paste(left, (0, 0))
    out.paste(right, (width + gap, 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model spec (default: the shipped default)")
    ap.add_argument("--examples", type=Path, default=REPO / "examples")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "examples_before_after.png")
    ap.add_argument("--height", type=int, default=200)
    ap.add_argument("--gap", type=int, default=6)
    args = ap.parse_args()

    colorizer = Colorizer.load(args.model, "cpu")
    rows = [row(colorizer, p, args.height, args.gap) for p in find_images([args.examples])]
    width = max(r.width for r in rows)
    strip = Image.new("RGB", (width, len(rows) * (args.height + args.gap) - args.gap), "white")
    for i, r in enumerate(rows):
        strip.paste(r, ((width - r.width) // 2, i * (args.height + args.gap)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(args.out) as fh:
        strip.save(fh, format="PNG", optimize=True)
    print(f"wrote {args.out}: {strip.width}x{strip.height}, {len(rows)} examples")


if __name__ == "__main__":
    main()

"""Downsized copies of the default model's training photos (for a GPU machine that gets only a
64 MiB working tree, and for faster data loading anywhere).

    python scripts/prepare_small_data.py [--data ../shared/data] [--out data-small] [--side 256]

Copies ``imagenet-sample``, ``bsds500/train`` and ``bsds500/val`` (the training sets of
``../shared/data/README.md``; never ``bsds500/test``) into ``OUT/`` with the same relative paths,
each photo resized so that its short side is ``--side`` (never enlarged; Pillow's antialiased
bicubic), EXIF orientation applied, grayscale kept single-channel, saved as JPEG quality 90.
Deterministic: the same input files give byte-identical outputs with the same Pillow, so
``scripts/train_default.sh gpu`` reproduces its run from the data. The training crops take a short
side of 176..256 px (``training.dataset.SCALE_JITTER``), so a 256 px short side loses nothing the
training pipeline would have used. Unreadable files are reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageOps

from colorcli.imageio import iter_folder_images
from colorcli.labels import class_index, split_files, synset_of

SETS = ("imagenet-sample", "bsds500/train", "bsds500/val")
#: the pretrained-encoder default's mix (``--mix pretrained``): the sets above plus ``extra/``;
#: imagenet-sample without its held-out fifth (``colorcli.labels``), extra/clothing thinned to
#: every CLOTHING_EVERY-th file (a narrow subject: about a tenth of the photos).
PRETRAINED_SETS = (*SETS, "extra/scenes", "extra/people", "extra/clothing")
CLOTHING_EVERY = 4


def pick(name: str, files: list[Path]) -> list[Path]:
    """The files of set ``name`` that the pretrained mix trains on."""
    if name == "imagenet-sample":
        index = class_index(s for s in map(synset_of, files) if s is not None)
        return split_files(files, index)[0]
    if name == "extra/clothing":
        return files[::CLOTHING_EVERY]
    return files


def shrink(src: Path, dst: Path, side: int) -> None:
    with Image.open(src) as raw:
        img = ImageOps.exif_transpose(raw)
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        w, h = img.size
        s = side / min(w, h)
        if s < 1:
            img = img.resize((round(w * s), round(h * s)), Image.Resampling.BICUBIC)
        tmp = dst.with_name(dst.name + ".tmp")
        img.save(tmp, format="JPEG", quality=90)
        tmp.replace(dst)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("data-small"))
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument(
        "--mix",
        choices=("eccv16", "pretrained"),
        default="eccv16",
        help="eccv16: the sets of the eccv16 default; pretrained: the effnet-unet default's mix",
    )
    args = ap.parse_args()
    n = bad = 0
    for name in SETS if args.mix == "eccv16" else PRETRAINED_SETS:
        folder = args.data / name
        if not folder.is_dir():
            print(f"{folder}: no such folder", file=sys.stderr)
            return 2
        listed = list(iter_folder_images(folder))  # the files training would list
        for src in listed if args.mix == "eccv16" else pick(name, listed):
            # the same names: the same file order, so the same train/validation split
            dst = args.out / name / src.relative_to(folder)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                shrink(src, dst, args.side)
                n += 1
            except Exception as exc:
                print(f"{src}: skipped ({exc})", file=sys.stderr)
                bad += 1
    print(f"wrote {n} photos under {args.out} ({bad} skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

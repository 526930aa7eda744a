"""Turn a finished training run into the shipped default model file.

    python scripts/ship_default.py RUN_DIR_OR_MODEL_FILE
        [--out weights/colorcli-default.safetensors] [--temperatures 0.1 0.15 0.2 0.25 0.3 0.38 0.5]

1. Rebuilds the run's own validation split (the same folders, ``--val-split`` and ``--seed`` as the
   training config saved in the model file, through the training code's ``split_files``): photos
   the run never trained on, and not the held-out bsds500/test.
2. Evaluates the run's model there at each annealed-mean temperature T (256 px protocol, gray
   baseline alongside, prior of the validation photos themselves).
3. Picks the T with the highest rebalanced AuC among those whose plain AuC stays within
   ``--max-auc-drop`` (default 3) points of the gray baseline -- the selection rule of issue 6,
   applied to validation data so that bsds500/test stays untouched.
4. Writes the model (safetensors) in float16 with that T as its decode setting (atomically),
   recording the sweep in the file's metrics. Prints the sweep as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from colorcli.checkpoint import copy_model, read_model_file
from colorcli.evaluate import EvalConfig, evaluate
from colorcli.imageio import find_images
from colorcli.training.config import TrainConfig
from colorcli.training.dataset import split_files

DEFAULT_TEMPERATURES = (0.1, 0.15, 0.2, 0.25, 0.3, 0.38, 0.5)


def validation_files(config: TrainConfig) -> list[Path]:
    files = find_images([config.data_dir, *config.extra_data_dirs])
    _, val = split_files(files, config.val_split, config.seed)
    return val


def sweep(model_path: Path, files: list[Path], temperatures: list[float]) -> list[dict[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, f in enumerate(files):  # names made unique: the folders may share file names
            (folder / f"{i:04d}{f.suffix.lower()}").symlink_to(f.resolve())
        for t in temperatures:
            report = evaluate(
                EvalConfig(
                    data_dir=folder,
                    models=("gray", str(model_path)),
                    metrics=("auc", "colorfulness"),
                    baselines=False,
                    temperature=t,
                    device="cpu",
                )
            )
            gray, model = report.aggregates["gray"], report.aggregates[str(model_path)]
            rows.append(
                {
                    "temperature": t,
                    "auc": model["auc"].mean,
                    "auc_rebal": model["auc_rebal"].mean,
                    "colorfulness": model["colorfulness"].mean,
                    "gray_auc": gray["auc"].mean,
                    "gray_auc_rebal": gray["auc_rebal"].mean,
                    "n": model["auc"].n,
                }
            )
    return rows


def choose(rows: list[dict[str, float]], max_drop: float) -> dict[str, float]:
    ok = [r for r in rows if r["auc"] >= r["gray_auc"] - max_drop]
    if not ok:
        raise SystemExit(f"no temperature keeps plain AuC within {max_drop} of gray")
    return max(ok, key=lambda r: r["auc_rebal"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run folder (its model.pt) or a model file")
    ap.add_argument("--out", type=Path, default=Path("weights/colorcli-default.safetensors"))
    ap.add_argument("--temperatures", type=float, nargs="+", default=list(DEFAULT_TEMPERATURES))
    ap.add_argument("--max-auc-drop", type=float, default=3.0,
                    help="plain AuC must stay >= gray - this (negative: above gray by that much)")
    ap.add_argument("--input-size", type=int, default=None,
                    help="the network size colorize uses (default: the run's crop)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    model_path = args.run / "model.pt" if args.run.is_dir() else args.run
    raw = read_model_file(model_path)
    config = TrainConfig.from_dict(raw["train_config"])
    files = validation_files(config)
    rows = sweep(model_path, files, sorted(args.temperatures))
    best = None
    try:
        best = choose(rows, args.max_auc_drop)
    finally:  # the sweep is shown even when no temperature qualifies
        print(f"validation split of {model_path}: {len(files)} photos (seed {config.seed})")
        print("| T | AuC | rebal. AuC | colourfulness |")
        print("|---|---|---|---|")
        print(f"| gray | {rows[0]['gray_auc']:.2f} | {rows[0]['gray_auc_rebal']:.2f} | 0.0 |")
        for r in rows:
            mark = " (chosen)" if r is best else ""
            print(
                f"| {r['temperature']:g}{mark} | {r['auc']:.2f} | {r['auc_rebal']:.2f} "
                f"| {r['colorfulness']:.1f} |",
                flush=True,
            )

    metrics = dict(raw.get("metrics") or {})
    metrics["temperature_selection"] = {
        "rule": f"max rebalanced AuC with plain AuC >= gray - {args.max_auc_drop:g}",
        "data": f"validation split of the run ({len(files)} photos)",
        "sweep": rows,
    }
    copy_model(
        model_path,
        args.out,
        half=True,
        decode={"temperature": best["temperature"]},
        metrics=json.loads(json.dumps(metrics)),
        input_size=args.input_size,
    )
    print(f"wrote {args.out} (float16, annealed-mean T = {best['temperature']:g})")


if __name__ == "__main__":
    main()

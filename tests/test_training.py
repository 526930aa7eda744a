"""The training loop end to end on tiny images (CPU): every objective, overfitting one photo,
exact resume, bad files, run-folder safety, plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from colorcli import checkpoint
from colorcli.color.lab import lab_to_rgb, rgb_to_lab
from colorcli.errors import UsageError
from colorcli.plots.training import (
    HEADER,
    log_ticks,
    loss_curve_image,
    nice_ticks,
    sample_grid_image,
)
from colorcli.training import (
    BadFile,
    TrainEvent,
    Validated,
    make_config,
    resume,
    train,
)
from colorcli.training.loop import RESUME_FILE, load_resume_state, read_metrics

TINY: dict[str, Any] = {
    "crop": 32,
    "batch_size": 2,
    "workers": 0,
    "prior_images": 4,
    "val_images": 2,
    "sample_images": 2,
    "log_every": 1,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _photos(folder: Path, n: int = 5, gray: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = 40 + 4 * i, 48
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x / w, y / h, (x + y) / (w + h)], axis=2)
        arr = np.clip(base + 0.1 * rng.random((h, w, 3)), 0, 1)
        if i < gray:
            arr = np.repeat(arr.mean(axis=2, keepdims=True), 3, axis=2)
        Image.fromarray((arr * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _photos(tmp_path_factory.mktemp("photos"))


COMBOS: list[tuple[str, dict[str, Any]]] = [
    ("classification", {"targets": "soft"}),
    ("classification", {"targets": "soft", "rebalance": False}),
    ("classification", {"targets": "onehot"}),
    ("classification", {"targets": "onehot", "rebalance": False, "k": 10}),
    ("regression", {"loss": "l1", "depth": 5}),
    ("regression", {"loss": "l2", "arch": "eccv16"}),
    ("cgan", {"gan": "vanilla", "depth": 5, "r1_gamma": 0.1, "label_smoothing": 0.9}),
    ("cgan", {"gan": "lsgan", "depth": 5}),
    ("cgan", {"gan": "wgan-gp", "depth": 5}),
    ("cgan", {"gan": "hinge", "depth": 5}),
    ("cgan", {"gan": "ebgan", "depth": 5}),
]


@pytest.mark.parametrize(("objective", "options"), COMBOS, ids=lambda v: str(v))
def test_every_objective_trains_and_saves(
    photos: Path, tmp_path: Path, objective: str, options: dict[str, Any]
) -> None:
    width = (
        0.125
        if options.get("arch", "auto") != "eccv16" and objective != "classification"
        else 0.0625
    )
    cfg = make_config(
        str(photos),
        str(tmp_path / "run"),
        objective,
        steps=2,
        val_every=2,
        save_every=2,
        width=width,
        **{**TINY, **options},
    )
    events: list[TrainEvent] = []
    result = train(cfg, on_event=events.append)
    assert result.step == 2
    recs = read_metrics(tmp_path / "run" / "metrics.jsonl")
    train_losses = [r["loss"] for r in recs if r["kind"] == "train"]
    assert len(train_losses) == 2 and all(np.isfinite(train_losses))
    val = [r for r in recs if r["kind"] == "val"]
    assert len(val) == 1 and 0 <= val[0]["val_auc"] <= 100 and "val_auc_rebalanced" in val[0]
    assert any(isinstance(e, Validated) for e in events)
    assert (tmp_path / "run" / "loss.png").is_file()
    assert (tmp_path / "run" / "samples" / "step2.png").is_file()
    loaded = checkpoint.load_model(result.model_path, "cpu")
    assert loaded.meta["step"] == 2
    lum = torch.full((1, 1, 32, 32), 50.0)
    assert loaded.predict_ab(lum).shape == (1, 2, 32, 32)
    state = load_resume_state(tmp_path / "run")
    expected = {"model", "discriminator"} if objective == "cgan" else {"model"}
    assert set(state["models"]) == expected


def _band_photo(folder: Path) -> np.ndarray:
    """A 32x32 photo of four horizontal bands whose colour is a function of their lightness."""
    folder.mkdir(parents=True, exist_ok=True)
    lab = torch.zeros(3, 32, 32)
    for i, (lum, a, b) in enumerate([(30, 20, -60), (50, 60, 40), (70, -50, 50), (90, 0, 80)]):
        lab[:, i * 8 : (i + 1) * 8] = torch.tensor([lum, a, b], dtype=torch.float32).view(3, 1, 1)
    arr = (lab_to_rgb(lab).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(arr).save(folder / "bands.png")
    return arr


def test_classification_overfits_one_photo(tmp_path: Path) -> None:
    """Encode -> rebalanced CE -> decode: after a short run on one photo the colorization is far
    closer to the truth than the gray baseline."""
    arr = _band_photo(tmp_path / "one")
    cfg = make_config(
        str(tmp_path / "one"),
        str(tmp_path / "run"),
        "classification",
        width=0.125,
        steps=200,
        lr=3e-3,
        weight_decay=0.0,
        lr_milestones=((0.75, 0.1),),
        rebalance=False,
        val_every=200,
        save_every=200,
        **{**TINY, "batch_size": 4, "log_every": 20},
    )
    result = train(cfg)
    model = checkpoint.load_model(result.model_path, "cpu")
    truth = rgb_to_lab(torch.from_numpy(arr).permute(2, 0, 1).float()[None] / 255.0)
    pred = model.predict_ab(truth[:, :1])
    err = float((pred - truth[:, 1:]).norm(dim=1).mean())
    gray_err = float(truth[:, 1:].norm(dim=1).mean())
    assert gray_err > 60
    assert err < 0.45 * gray_err, (err, gray_err)
    assert result.metrics["val_auc"] > result.metrics["gray_auc"] + 15


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_resume_state(run)["models"]["model"]


def test_resume_gives_the_same_weights(photos: Path, tmp_path: Path) -> None:
    torch.use_deterministic_algorithms(True)
    try:
        # constant lr: the milestones are fractions of --steps, which differs between the runs
        opts = {**TINY, "width": 0.0625, "val_every": 100, "save_every": 2, "lr_milestones": ()}
        full = make_config(str(photos), str(tmp_path / "full"), "classification", steps=4, **opts)
        train(full)
        half = make_config(str(photos), str(tmp_path / "half"), "classification", steps=2, **opts)
        train(half)
        resume(tmp_path / "half", {"steps": 4})
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "half")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    recs = read_metrics(tmp_path / "half" / "metrics.jsonl")
    assert [r["step"] for r in recs if r["kind"] == "train"] == [1, 2, 3, 4]


def test_resume_refuses_changed_settings(photos: Path, tmp_path: Path) -> None:
    cfg = make_config(
        str(photos), str(tmp_path / "r"), "classification", steps=1, width=0.0625, **TINY
    )
    train(cfg)
    with pytest.raises(UsageError, match="cannot change"):
        resume(tmp_path / "r", {"lr": 1.0})
    with pytest.raises(UsageError, match="nothing to resume"):
        resume(tmp_path / "nothing")


def test_bad_and_gray_files_are_skipped_and_reported_once(tmp_path: Path) -> None:
    data = _photos(tmp_path / "d", n=4, gray=2)
    (data / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    events: list[TrainEvent] = []
    cfg = make_config(
        str(data),
        str(tmp_path / "run"),
        "classification",
        steps=6,
        width=0.0625,
        val_split=0.0,
        val_every=6,
        save_every=6,
        **{**TINY, "batch_size": 5},
    )
    result = train(cfg, on_event=events.append)
    bad = [e for e in events if isinstance(e, BadFile)]
    assert len(bad) == 1 and "broken.jpg" in bad[0].path and "broken.jpg" in bad[0].reason
    assert result.step == 6 and len(result.bad_files) == 1
    # published schedule scaled to 6 steps: drops after round(6 * 200/450) = 3 and
    # round(6 * 375/450) = 5 completed steps
    lrs = [
        r["lr"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"
    ]
    assert lrs == pytest.approx([3e-5, 3e-5, 3e-5, 1e-5, 1e-5, 3e-6])


def test_refuses_non_empty_run_dir(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    cfg = make_config(str(photos), str(out), "classification", steps=1, width=0.0625, **TINY)
    with pytest.raises(UsageError, match="not empty"):
        train(cfg)
    train(cfg, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite removes only run files
    assert (out / RESUME_FILE).is_file()


def test_metrics_reader_ignores_a_torn_line(tmp_path: Path) -> None:
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps({"step": 1, "kind": "train", "loss": 1.0}) + '\n{"step": 2, "ki')
    assert read_metrics(p) == [{"step": 1, "kind": "train", "loss": 1.0}]


# --- plots --------------------------------------------------------------------------------------


def test_nice_ticks() -> None:
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0.13, 0.91, 4) == pytest.approx([0.2, 0.4, 0.6, 0.8])


def test_loss_curve_draws_the_series() -> None:
    img = loss_curve_image({"train": [(0, 4.0), (10, 2.0), (20, 1.0)], "val": [(20, 1.5)]})
    assert img.size == (720, 420)
    arr = np.asarray(img)
    blue = (arr[..., 0] == 31) & (arr[..., 1] == 119) & (arr[..., 2] == 180)
    red = (arr[..., 0] == 214) & (arr[..., 1] == 39) & (arr[..., 2] == 40)
    assert blue.sum() > 200 and red.sum() > 10
    empty = np.asarray(loss_curve_image({"train": []}))
    assert empty.shape == (420, 720, 3)


def test_sample_grid_layout() -> None:
    rgb = torch.rand(2, 3, 8, 8)
    lab = rgb_to_lab(rgb)
    grid = np.asarray(sample_grid_image(lab[:, :1], torch.zeros(2, 2, 8, 8), lab[:, 1:], gap=2))
    assert grid.shape == (HEADER + 2 * 8 + 3 * 2, 3 * 8 + 4 * 2, 3)
    top = HEADER + 2
    truth = grid[top : top + 8, 2 + 2 * 10 : 2 + 2 * 10 + 8]  # row 0, third column
    np.testing.assert_allclose(truth / 255.0, rgb[0].permute(1, 2, 0).numpy(), atol=1 / 255 + 1e-4)
    gray = grid[top + 10 : top + 18, 2:10].astype(int)  # row 1, first column: R = G = B
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 1


def test_sample_grid_has_column_labels() -> None:
    """gray | prediction | truth are written above the three columns (dark text on the white
    header strip, one label per column)."""
    lab = rgb_to_lab(torch.rand(1, 3, 64, 64))
    grid = np.asarray(sample_grid_image(lab[:, :1], lab[:, 1:], lab[:, 1:]))
    header = grid[:HEADER].min(axis=2) < 128
    for col in range(3):
        x = 4 + col * (64 + 4)
        assert header[:, x : x + 64].sum() > 10, col


def test_log_axis_ticks_are_round_numbers() -> None:
    """A loss between 3.3 and 6.5 on the log axis was labelled 6.30957, 5.01187, 3.98107."""
    import math

    for lo, hi in [(3.3, 6.5), (3.3, 3.6), (0.5, 9.0), (0.01, 100.0), (2.9, 3.1)]:
        ticks = log_ticks(math.log10(lo), math.log10(hi))
        assert len(ticks) >= 3 and all(lo * 0.999 <= t <= hi * 1.001 for t in ticks), ticks
        for t in ticks:
            assert len(f"{t:g}") <= 5, ticks  # 4, 5, 6 / 3.3 ... 3.6 / 0.01 / 2.95
    assert log_ticks(math.log10(3.3), math.log10(6.5)) == [4.0, 5.0, 6.0]
    assert log_ticks(math.log10(0.01), math.log10(100)) == [0.01, 0.1, 1.0, 10.0, 100.0]


def test_rebalance_file_supplies_the_class_weights(photos: Path, tmp_path: Path) -> None:
    from colorcli.color.bins import reference_bins
    from colorcli.data import save_rebalance

    bins = reference_bins()
    q = len(bins)
    prior = np.full(q, 1.0 / q)
    weights = np.linspace(0.5, 1.5, q)
    path = save_rebalance(
        tmp_path / "reb.npz", bins=bins, prior=prior, prior_smoothed=prior, weights=weights,
        settings={"lam": 0.5},
    )  # fmt: skip
    cfg = make_config(str(photos), str(tmp_path / "run"), "classification", steps=1,
                      width=0.0625, rebalance_file=str(path), **TINY)  # fmt: skip
    train(cfg)
    state = load_resume_state(tmp_path / "run")
    np.testing.assert_array_equal(state["class_weights"].numpy(), weights)
    assert str(path) in state["prior_source"]
    bad = tmp_path / "other_bins.npy"
    np.save(bad, bins[:300])
    cfg2 = cfg.replace(out_dir=str(tmp_path / "run2"), bins_file=str(bad))
    with pytest.raises(UsageError, match="differ"):
        train(cfg2)


# --- issue 13: presets, projected duration, small validation split, restart ---------------------


def test_quick_preset_finishes_on_a_cpu_and_paper_is_one_flag_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The paper's 450k steps at batch 40 are ~94 days on 2 cores: the quick preset is a few
    thousand steps of the pretrained-encoder U-Net, or of a narrow eccv16 without its weights."""
    from colorcli.training import config as config_mod

    paper = make_config("d", "o", preset="paper")
    assert (paper.arch, paper.steps, paper.batch_size, paper.lr, paper.weight_decay) == (
        "eccv16",
        450_000,
        40,
        3e-5,
        1e-3,
    )
    assert paper.width == 1.0 and paper.crop == 176
    assert make_config("d", "o").to_dict() == paper.to_dict()  # the library default is unchanged

    monkeypatch.setattr(config_mod, "pretrained_available", lambda encoder="lite0": True)
    quick = make_config("d", "o", preset="quick")
    assert quick.arch == "effnet-unet" and quick.pretrained
    assert quick.steps == config_mod.QUICK_STEPS and 1000 <= quick.steps <= 5000
    assert (quick.batch_size, quick.crop, quick.lr) == (16, 160, 1e-3)
    explicit = make_config("d", "o", preset="quick", arch="eccv16", steps=10, lr=0.1)
    assert (explicit.arch, explicit.steps, explicit.lr, explicit.width) == ("eccv16", 10, 0.1, 0.25)

    monkeypatch.setattr(config_mod, "pretrained_available", lambda encoder="lite0": False)
    fallback = make_config("d", "o", preset="quick")
    assert (fallback.arch, fallback.width, fallback.batch_size, fallback.steps) == (
        "eccv16",
        0.25,
        16,
        config_mod.QUICK_STEPS,
    )
    assert make_config("d", "o", "cgan", preset="quick").arch == "unet"
    with pytest.raises(UsageError, match="unknown preset"):
        make_config("d", "o", preset="fast")


def test_projected_duration_after_the_first_steps(photos: Path, tmp_path: Path) -> None:
    from colorcli.training import Projected
    from colorcli.training.loop import ETA_STEPS

    events: list[TrainEvent] = []
    steps = ETA_STEPS + 4
    cfg = make_config(str(photos), str(tmp_path / "run"), "classification", steps=steps,
                      width=0.0625, val_every=100, save_every=100, **TINY)  # fmt: skip
    train(cfg, on_event=events.append)
    projected = [e for e in events if isinstance(e, Projected)]
    assert len(projected) == 1, events
    p = projected[0]
    assert p.step == 1 + ETA_STEPS and p.total_steps == steps
    assert p.seconds_per_step > 0
    assert p.remaining_s == pytest.approx(p.seconds_per_step * (steps - p.step))
    assert not p.over_a_day
    assert Projected(10, 450_000, 18.0, 18.0 * 449_990).over_a_day


def test_small_validation_split_is_cautioned(photos: Path, tmp_path: Path) -> None:
    """5 photos at the default 5 % give a 1-photo validation split: say so."""
    from colorcli.training import Caution
    from colorcli.training.loop import MIN_VAL_PHOTOS

    events: list[TrainEvent] = []
    cfg = make_config(str(photos), str(tmp_path / "run"), "classification", steps=1,
                      width=0.0625, **TINY)  # fmt: skip
    train(cfg, on_event=events.append)
    cautions = [e.message for e in events if isinstance(e, Caution)]
    assert len(cautions) == 1 and "1 validation photo" in cautions[0], cautions
    assert f"at least {MIN_VAL_PHOTOS}" in cautions[0] and "--val-split" in cautions[0]


def test_rerun_starts_over_when_interrupted_before_the_first_checkpoint(
    photos: Path, tmp_path: Path
) -> None:
    """Ctrl-C before the first save left metrics.jsonl and nothing to resume; a plain rerun was
    refused ("not empty") and --resume had nothing: the rerun now starts over."""
    from colorcli.training import Note, StepDone

    out = tmp_path / "run"
    cfg = make_config(str(photos), str(out), "classification", steps=4, width=0.0625,
                      save_every=100, val_every=100, **TINY)  # fmt: skip

    def interrupt(event: TrainEvent) -> None:
        if isinstance(event, StepDone) and event.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_event=interrupt)
    assert (out / "metrics.jsonl").is_file() and not (out / RESUME_FILE).exists()
    with pytest.raises(UsageError, match=r"before its first checkpoint.*without --resume"):
        resume(out)
    events: list[TrainEvent] = []
    result = train(cfg, on_event=events.append)
    assert result.step == 4
    assert any(isinstance(e, Note) and "restarting" in e.message for e in events)
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4]  # the interrupted run's records are gone
    # a folder with a checkpoint, or with files that are not a run's, is still refused
    with pytest.raises(UsageError, match="not empty"):
        train(cfg)
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.jsonl").write_text("")
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        train(cfg.replace(out_dir=str(other)))


def test_package_names_resolve_to_their_modules() -> None:
    # the lazy names of colorcli.training are the objects of the modules that define them
    import colorcli.training as pkg
    from colorcli.training import config, finetune, loop

    for name in pkg.__all__:
        obj = getattr(pkg, name)
        homes = [m for m in (config, finetune, loop) if getattr(m, name, None) is obj]
        assert homes, name
    with pytest.raises(AttributeError):
        pkg.not_a_name  # noqa: B018

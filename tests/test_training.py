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
from colorcli.training import (
    BadFile,
    TrainEvent,
    Validated,
    make_config,
    resume,
    train,
)
from colorcli.training.loop import RESUME_FILE, load_resume_state, read_metrics
from colorcli.training.plots import loss_curve_image, nice_ticks, sample_grid_image

TINY: dict[str, Any] = {
    "crop": 32,
    "batch_size": 2,
    "workers": 0,
    "prior_images": 4,
    "val_images": 2,
    "sample_images": 2,
    "log_every": 1,
}


@pytest.fixture(autouse=True)
def _threads() -> Any:
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CI machines; also makes CPU results reproducible
    yield
    torch.set_num_threads(old)


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
    assert grid.shape == (2 * 8 + 3 * 2, 3 * 8 + 4 * 2, 3)
    truth = grid[2:10, 2 + 2 * 10 : 2 + 2 * 10 + 8]  # row 0, third column
    np.testing.assert_allclose(truth / 255.0, rgb[0].permute(1, 2, 0).numpy(), atol=1 / 255 + 1e-4)
    gray = grid[12:20, 2:10].astype(int)  # row 1, first column: R = G = B
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 1


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

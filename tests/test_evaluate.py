"""The evaluation workflow on tiny synthetic photos: baselines, protocol, counts, outputs."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import lab2rgb, rgb2lab

from colorcli import metrics
from colorcli.errors import EmptyDataset, UsageError
from colorcli.evaluate import EvalConfig, evaluate, random_partners

SIZE = 32


def _photo(path: Path, seed: int, shape: tuple[int, int] = (30, 44)) -> None:
    """A smooth random colour image (saturated enough not to count as gray)."""
    g = np.random.default_rng(seed)
    small = g.random((3, 4, 3))
    img = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(path)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(4):
        _photo(d / f"img{i}.png", seed=i)
    return d


def _config(folder: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = {"data_dir": folder, "size": SIZE}
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


def _true_ab(path: Path) -> np.ndarray:
    """Independent reference: PIL read, cv2 INTER_AREA resize, scikit-image Lab -> (2, S, S)."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    rgb = np.clip(cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA), 0, 1)
    return np.asarray(rgb2lab(rgb.astype(np.float64))[..., 1:].transpose(2, 0, 1))


def test_random_partners_reproducible_and_never_self() -> None:
    idx = list(range(20))
    a, b = random_partners(idx, 0), random_partners(idx, 0)
    assert a == b
    assert random_partners(idx, 1) != a
    assert all(a[i] != i and a[i] in idx for i in idx)
    assert random_partners([5], 0) == {5: 5}


def test_baselines_against_independent_reference(folder: Path) -> None:
    report = evaluate(_config(folder, metrics=("auc",)))
    assert [m.name for m in report.models] == ["gray", "random", "ground-truth"]
    assert report.n_evaluated == 4 and report.n_gray == 0 and not report.failed
    for r in report.images:
        ab = _true_ab(r.path)
        # gray: distance = |ab| of the truth; brute-force curve over the 151 thresholds
        d = np.sqrt((ab**2).sum(0))
        curve = [(d <= t).mean() for t in range(151)]
        assert r.values["gray"]["auc"] == pytest.approx(100 * np.mean(curve), abs=0.05)
        assert r.values["ground-truth"]["auc"] == pytest.approx(100.0)
        assert r.values["ground-truth"]["auc_rebal"] == pytest.approx(100.0)
    agg = report.aggregates["gray"]["auc"]
    vals = [r.values["gray"]["auc"] for r in report.images]
    assert agg.mean == pytest.approx(np.mean(vals))
    assert agg.std == pytest.approx(np.std(vals, ddof=1))
    assert agg.n == 4
    assert "computed from the evaluation set" in report.prior_source
    # the dataset curve is the mean of per-image curves, so its AuC is the mean AuC
    assert metrics.auc_from_curve(report.curves["gray"]["plain"]) == pytest.approx(agg.mean)


def test_random_baseline_uses_another_image_and_is_reproducible(folder: Path) -> None:
    cfg = _config(folder, metrics=("auc",), models=("random",), baselines=False)
    r0 = evaluate(cfg)
    again = evaluate(cfg)
    other = evaluate(_config(folder, metrics=("auc",), models=("random",), baselines=False, seed=5))
    v0 = [r.values["random"]["auc"] for r in r0.images]
    assert v0 == [r.values["random"]["auc"] for r in again.images]
    assert v0 != [r.values["random"]["auc"] for r in other.images]
    # each value equals the AuC of the true ab against the partner image's ab
    files = [r.path for r in r0.images]
    partners = random_partners(range(4), 0)
    for i, r in enumerate(r0.images):
        pred = torch.from_numpy(_true_ab(files[partners[i]]))
        expected = metrics.auc(pred, torch.from_numpy(_true_ab(r.path)))
        assert r.values["random"]["auc"] == pytest.approx(expected, abs=0.05)


def test_gray_images_excluded_from_auc_and_bad_files_skipped(folder: Path) -> None:
    Image.fromarray(np.full((20, 20), 120, np.uint8)).save(folder / "gray.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    report = evaluate(_config(folder))
    assert report.n_files == 6 and report.n_evaluated == 5 and report.n_gray == 1
    assert [p.name for p, _ in report.failed] == ["broken.jpg"]
    assert "broken.jpg" in report.failed[0][1]
    gray_row = next(r for r in report.images if r.path.name == "gray.png")
    assert gray_row.gray and "auc" not in gray_row.values["gray"]
    assert "psnr" in gray_row.values["gray"]  # other metrics still computed
    assert report.aggregates["gray"]["auc"].n == 4
    assert report.aggregates["gray"]["psnr"].n == 5


def test_psnr_ssim_colorfulness_per_image(folder: Path) -> None:
    report = evaluate(_config(folder, metrics=("psnr", "ssim", "colorfulness")))
    assert report.metric_names == ["psnr", "ssim", "colorfulness"]
    for r in report.images:
        assert r.values["ground-truth"]["ssim"] == pytest.approx(1.0, abs=1e-4)
        assert r.values["ground-truth"]["psnr"] > 60
        assert r.values["gray"]["colorfulness"] < 0.5
        assert r.values["ground-truth"]["colorfulness"] > r.values["gray"]["colorfulness"]
        assert r.values["gray"]["ssim"] < 1.0


def test_full_resolution_metrics(folder: Path) -> None:
    report = evaluate(_config(folder, metrics=("auc", "ssim"), full_res=True))
    assert report.metric_names == [
        "auc",
        "auc_rebal",
        "ssim",
        "auc_full",
        "auc_rebal_full",
        "ssim_full",
    ]
    for r in report.images:
        assert r.values["ground-truth"]["auc_full"] == pytest.approx(100.0)
        gray_full = r.values["gray"]["auc_full"]
        assert 0 < gray_full < 100


def test_outputs_written(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = evaluate(_config(folder, out_dir=out))
    data = json.loads((out / "results.json").read_text())
    assert data["counts"] == {"files": 4, "evaluated": 4, "gray_excluded_from_auc": 0, "failed": 0}
    assert set(data["aggregate"]) == {"gray", "random", "ground-truth"}
    assert len(data["curves"]["gray"]["plain"]) == 151
    assert data["aggregate"]["ground-truth"]["auc"]["mean"] == pytest.approx(100.0)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4 * 3 and {r["model"] for r in rows} == {"gray", "random", "ground-truth"}
    for name in ("auc_curve.png", "contact_sheet.png"):
        with Image.open(out / name) as im:
            assert im.width > 200 and im.height > 200
    assert set(report.outputs) == {"json", "csv", "auc_curve", "contact_sheet"}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_empty_and_unusable_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmptyDataset, match="no image files"):
        evaluate(_config(empty))
    (empty / "bad.png").write_bytes(b"")
    with pytest.raises(EmptyDataset, match="none of the 1"):
        evaluate(_config(empty))
    with pytest.raises(UsageError):
        evaluate(_config(tmp_path / "missing"))
    with pytest.raises(UsageError, match="nothing to evaluate"):
        evaluate(_config(empty, baselines=False))


def test_trained_model_row_matches_its_predictions(folder: Path, tmp_path: Path) -> None:
    from colorcli.checkpoint import load_model, save_model
    from colorcli.color.bins import reference_bins
    from colorcli.models import create_model

    torch.manual_seed(0)
    net = create_model("eccv16", q=313, width=0.0625)
    path = save_model(
        tmp_path / "tiny.pt",
        net,
        arch="eccv16",
        arch_kwargs={"q": 313, "width": 0.0625},
        bins=reference_bins(),
    )
    report = evaluate(_config(folder, metrics=("auc",), models=(str(path),), baselines=False))
    assert [m.name for m in report.models] == [str(path)]
    assert report.models[0].kind == "model"
    loaded = load_model(path, device="cpu")
    for r in report.images:
        ab = torch.from_numpy(_true_ab(r.path)).float()
        rgb = np.asarray(Image.open(r.path).convert("RGB"), dtype=np.float32) / 255.0
        rgb = np.clip(cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA), 0, 1)
        lum = torch.from_numpy(rgb2lab(rgb.astype(np.float64))[..., 0]).float()[None, None]
        pred = loaded.predict_ab(lum)
        assert r.values[str(path)]["auc"] == pytest.approx(metrics.auc(pred, ab[None]), abs=0.1)
    # --temperature overrides the file's annealed-mean T: the row follows predict_ab(T=...)
    hot = evaluate(
        _config(folder, metrics=("colorfulness",), models=(str(path),), baselines=False),
    )
    cold_config = replace(
        _config(folder, metrics=("colorfulness",), models=(str(path),), baselines=False),
        temperature=0.05,
    )
    cold = evaluate(cold_config)
    assert "T = 0.05" in cold.models[0].description
    for r_hot, r_cold in zip(hot.images, cold.images, strict=True):
        rgb = np.asarray(Image.open(r_cold.path).convert("RGB"), dtype=np.float32) / 255.0
        rgb = np.clip(cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA), 0, 1)
        lab = rgb2lab(rgb.astype(np.float64))
        lum = torch.from_numpy(lab[..., 0]).float()[None, None]
        pred = loaded.predict_ab(lum, temperature=0.05)
        ref = metrics.colorfulness(
            lab2rgb(np.concatenate([lab[..., :1], pred[0].permute(1, 2, 0).numpy()], axis=-1))
        )
        assert r_cold.values[str(path)]["colorfulness"] == pytest.approx(ref, abs=0.05)
        assert r_cold.values[str(path)]["colorfulness"] != r_hot.values[str(path)]["colorfulness"]


def test_prior_from_rebalance_file(folder: Path, tmp_path: Path) -> None:
    from colorcli.color.bins import reference_bins
    from colorcli.color.prior import rebalance_weights, smooth_prior
    from colorcli.data import save_rebalance

    bins = reference_bins()
    # a prior that says "everything is near neutral": saturated pixels become very heavy
    prior = np.exp(-(bins**2).sum(1) / (2 * 15.0**2))
    prior /= prior.sum()
    smoothed = smooth_prior(prior, bins)
    path = save_rebalance(
        tmp_path / "reb.npz",
        bins=bins,
        prior=prior,
        prior_smoothed=smoothed,
        weights=rebalance_weights(smoothed, 0.5),
        settings={"test": True},
    )
    from_file = evaluate(
        _config(folder, metrics=("auc",), prior=path, models=("gray",), baselines=False)
    )
    from_set = evaluate(_config(folder, metrics=("auc",), models=("gray",), baselines=False))
    assert from_file.prior_source == f"file {path}"
    # reference for one image: weights of the nearest bin under the file's prior
    r = from_file.images[0]
    ab = torch.from_numpy(_true_ab(r.path))[None]
    w = metrics.rebalanced_pixel_weights(ab, bins, smoothed)
    expected = metrics.auc(torch.zeros_like(ab), ab, w)
    assert r.values["gray"]["auc_rebal"] == pytest.approx(expected, abs=0.05)
    assert r.values["gray"]["auc_rebal"] != pytest.approx(
        from_set.images[0].values["gray"]["auc_rebal"]
    )


# -- realism (a critic) ---------------------------------------------------------------------------


def _save_critic(path: Path, shift: float = 0.0) -> Path:
    """A small random PatchGAN critic; ``shift`` is added to its output bias, so every image
    logit moves by exactly ``shift``."""
    from colorcli.critic import save_critic
    from colorcli.models import create_model

    torch.manual_seed(3)
    kw = {"width": 4, "n_layers": 2, "norm": "instance"}
    net = create_model("patchgan", **kw)
    last: Any = net.net[-1]  # type: ignore[index]
    with torch.no_grad():
        last.bias += shift
    return save_critic(path, net, arch="patchgan", arch_kwargs=kw, input_size=SIZE, meta={})


def _lum(path: Path) -> torch.Tensor:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    rgb = np.clip(cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA), 0, 1)
    return torch.from_numpy(rgb2lab(rgb.astype(np.float64))[..., 0]).float()[None, None]


@pytest.fixture()
def mixed_critic(folder: Path, tmp_path: Path) -> Path:
    """A critic whose realism is above 0.5 for about half of the (image, baseline) pairs."""
    first = _save_critic(tmp_path / "c0.pt")
    report = evaluate(_config(folder, metrics=("realism",), critic=first))
    p = np.array([r.values[m.name]["realism"] for r in report.images for m in report.models])
    logits = np.log(p / (1 - p))
    shift = -float(np.median(logits)) + 1e-3  # no logit exactly at 0
    return _save_critic(tmp_path / "critic.pt", shift)


def test_realism_per_image_fooling_rate_and_worst(
    folder: Path, mixed_critic: Path, tmp_path: Path
) -> None:
    from colorcli.critic import load_critic

    for i in range(4, 10):
        _photo(folder / f"img{i}.png", seed=i)
    out = tmp_path / "out"
    report = evaluate(
        _config(folder, metrics=("auc", "realism"), critic=mixed_critic, out_dir=out, worst=3)
    )
    assert report.metric_names == ["auc", "auc_rebal", "realism"]
    crit = load_critic(mixed_critic, device="cpu")
    for r in report.images:
        lum, ab = _lum(r.path), torch.from_numpy(_true_ab(r.path)).float()[None]
        expect_gt = float(crit.realism(lum, ab)[0])
        expect_gray = float(crit.realism(lum, torch.zeros_like(ab))[0])
        assert r.values["ground-truth"]["realism"] == pytest.approx(expect_gt, abs=1e-4)
        assert r.values["gray"]["realism"] == pytest.approx(expect_gray, abs=1e-4)
    n_judged = 0
    for m in ("gray", "random", "ground-truth"):
        scores = [r.values[m]["realism"] for r in report.images]
        summary = report.realism[m]
        assert summary.n == 10
        assert summary.judged_real == sum(1 for v in scores if v > 0.5)
        assert summary.rate == pytest.approx(np.mean([v > 0.5 for v in scores]))
        assert report.aggregates[m]["realism"].mean == pytest.approx(np.mean(scores))
        n_judged += summary.judged_real
        if m == "ground-truth":
            assert summary.worst == []
        else:
            lowest = sorted(zip(scores, [r.path for r in report.images], strict=True))[:3]
            assert summary.worst == [(p, v) for v, p in lowest]
    assert 0 < n_judged < 30  # the critic is genuinely mixed

    data = json.loads((out / "results.json").read_text())
    rows = data["realism"]["models"]
    assert data["realism"]["threshold"] == 0.5
    assert data["realism"]["critic"]["path"] == str(mixed_critic)
    assert rows["gray"]["fooling_rate"] == pytest.approx(report.realism["gray"].rate)
    assert rows["ground-truth"]["true_positive_rate"] == pytest.approx(
        report.realism["ground-truth"].rate
    )
    assert [w["path"] for w in rows["random"]["worst"]] == [
        str(p) for p, _ in report.realism["random"].worst
    ]
    assert "fooling_rate" not in rows["ground-truth"]
    csv_rows = list(csv.DictReader((out / "results.csv").open()))
    assert all(row["realism"] for row in csv_rows)
    assert report.outputs["worst_realism"] == out / "worst_realism.png"
    with Image.open(out / "worst_realism.png") as im:
        # two blocks (gray, random; ground-truth is not a colorization) of 3 thumbnails
        assert im.height > 2 * 3 * 128 and im.width >= 100 + 3 * 134


def test_realism_needs_a_critic_and_a_fitting_size(
    folder: Path, tmp_path: Path, tiny_model: Path
) -> None:
    from colorcli.errors import BadWeights

    critic = _save_critic(tmp_path / "c.pt")
    with pytest.raises(UsageError, match="needs a critic"):
        evaluate(_config(folder, metrics=("realism",)))
    with pytest.raises(UsageError, match="add 'realism'"):
        evaluate(_config(folder, metrics=("auc",), critic=critic))
    with pytest.raises(UsageError, match="too small for the critic"):
        evaluate(_config(folder, metrics=("realism",), critic=critic, size=8))
    with pytest.raises(BadWeights, match="not a critic"):
        evaluate(_config(folder, metrics=("realism",), critic=tiny_model))
    # realism alone: no AuC contact sheet, but the worst-realism sheet
    out = tmp_path / "o"
    report = evaluate(_config(folder, metrics=("realism",), critic=critic, out_dir=out))
    assert report.metric_names == ["realism"]
    assert set(report.outputs) == {"json", "csv", "worst_realism"}


# --- issue 13: finished work is never lost, honest figures ---------------------------------------


def test_existing_report_is_refused_without_overwrite(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    evaluate(_config(folder, out_dir=out, metrics=("auc",)))
    before = (out / "results.json").read_bytes()
    seen: list[object] = []
    with pytest.raises(UsageError, match=r"holds an evaluation report already.*--overwrite"):
        evaluate(_config(folder, out_dir=out), on_image=seen.append)
    assert not seen and (out / "results.json").read_bytes() == before  # refused before any work
    (out / "worst_realism.png").write_bytes(b"stale, from an earlier run with --critic")
    report = evaluate(_config(folder, out_dir=out, metrics=("ssim",), overwrite=True))
    assert json.loads((out / "results.json").read_text())["settings"]["metrics"] == ["ssim"]
    assert not (out / "worst_realism.png").exists() and "contact_sheet" not in report.outputs
    assert evaluate(_config(folder, out_dir=tmp_path / "new" / "deeper")).outputs


def test_unwritable_out_is_refused_before_the_evaluation(folder: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    seen: list[object] = []
    with pytest.raises(UsageError, match="cannot write"):
        evaluate(_config(folder, out_dir=blocker / "report"), on_image=seen.append)
    with pytest.raises(UsageError, match="not a folder"):
        evaluate(_config(folder, out_dir=blocker), on_image=seen.append)
    assert not seen
    probe_root = tmp_path / "created" / "by" / "probe"
    (tmp_path / "empty_set").mkdir()
    with pytest.raises(EmptyDataset):  # the up-front check creates no folder
        evaluate(_config(tmp_path / "empty_set", out_dir=probe_root))
    assert not (tmp_path / "created").exists()


def test_a_failed_write_keeps_the_results(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import colorcli.evaluate as ev

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("colorcli.evaluate.output.atomic_write_bytes", full_disk)
    with pytest.raises(ev.ReportNotWritten, match="No space left on device") as info:
        evaluate(_config(folder, out_dir=tmp_path / "out", metrics=("auc",)))
    report = info.value.report
    assert report.n_evaluated == 4 and report.aggregates["gray"]["auc"].n == 4
    assert report.outputs == {}


def test_ground_truth_psnr_is_infinite_and_csv_names_the_grayscale_column(
    folder: Path, tmp_path: Path
) -> None:
    """Ground truth showed PSNR 144 dB (float round-off); the CSV's "gray" column (input was
    grayscale) read like the gray baseline's name."""
    out = tmp_path / "out"
    report = evaluate(_config(folder, out_dir=out, metrics=("psnr",)))
    assert all(r.values["ground-truth"]["psnr"] == float("inf") for r in report.images)
    stat = report.aggregates["ground-truth"]["psnr"]
    assert stat.mean == float("inf") and stat.n == 4
    assert np.isfinite(report.aggregates["gray"]["psnr"].mean)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert "input_grayscale" in rows[0] and "gray" not in rows[0]
    assert {r["psnr"] for r in rows if r["model"] == "ground-truth"} == {"inf"}
    data = json.loads((out / "results.json").read_text())
    assert data["aggregate"]["ground-truth"]["psnr"]["mean"] == "inf"
    assert "input_grayscale" in data["per_image"][0] and "gray" not in data["per_image"][0]

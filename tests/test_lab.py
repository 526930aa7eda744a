from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from colorcli.color.lab import lab_to_rgb, rgb_to_lab, rgb_to_luminance


def _cube(n: int = 33) -> np.ndarray:
    g = np.linspace(0.0, 1.0, n)
    return np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(n, n * n, 3)


def test_rgb_to_lab_matches_skimage_dense_cube() -> None:
    cube = _cube()
    ref = rgb2lab(cube)
    out = rgb_to_lab(torch.from_numpy(cube).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(out - ref).max() < 1e-4


def test_lab_to_rgb_matches_skimage_including_out_of_gamut() -> None:
    rng = np.random.default_rng(0)
    lab = np.stack(
        [rng.uniform(0, 100, 5000), rng.uniform(-110, 110, 5000), rng.uniform(-110, 110, 5000)],
        -1,
    ).reshape(50, 100, 3)
    with pytest.warns(UserWarning):  # skimage warns about clipped negative Z; we clip silently
        ref = lab2rgb(lab)
    out = lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(out - ref).max() < 1e-4


def test_round_trip_and_batching() -> None:
    cube = torch.from_numpy(_cube(17)).permute(2, 0, 1)
    batch = torch.stack([cube, cube.flip(-1)]).unsqueeze(0)  # (1, 2, 3, H, W)
    back = lab_to_rgb(rgb_to_lab(batch))
    assert back.shape == batch.shape
    assert torch.allclose(back, batch, atol=1e-10)


def test_float32_close_to_float64() -> None:
    cube = torch.from_numpy(_cube(17)).permute(2, 0, 1)
    lab64 = rgb_to_lab(cube)
    lab32 = rgb_to_lab(cube.float())
    assert lab32.dtype == torch.float32
    assert (lab32.double() - lab64).abs().max() < 2e-3


def test_luminance_equals_lab_l() -> None:
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(rgb_to_luminance(x), rgb_to_lab(x)[:, :1])


def test_gradients_finite() -> None:
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    x[0, :, 0, 0] = 0.0  # black pixel: cube-root branch boundary
    x.requires_grad_(True)
    rgb_to_lab(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert torch.autograd.gradcheck(
        rgb_to_lab, (torch.rand(1, 3, 2, 2, dtype=torch.float64, requires_grad=True) * 0.8 + 0.1,)
    )


def test_bad_shape() -> None:
    with pytest.raises(ValueError):
        rgb_to_lab(torch.rand(4, 8, 8))
    with pytest.raises(TypeError):
        rgb_to_lab(torch.zeros(3, 2, 2, dtype=torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(rgb_to_lab(x.cuda()).cpu(), rgb_to_lab(x), atol=1e-3)

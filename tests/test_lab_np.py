"""The two Lab implementations agree on real photos: ``color.lab`` (torch, float64 here, the
reference: it matches scikit-image to 1e-4, test_lab.py) and ``color.lab_np`` (numpy, float32
row strips and lookup tables, what colorize runs at full resolution). Independent of the
scikit-image tests of each (test_lab.py, test_colorize.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorcli.color import constants
from colorcli.color import lab as torch_lab
from colorcli.color.lab import lab_to_rgb, rgb_to_lab
from colorcli.color.lab_np import lab_to_rgb_image, luminance

REPO = Path(__file__).resolve().parent.parent
#: Colour photos of several kinds (a sepia print, landscapes, a saturated autochrome, a close-up
#: of vivid colours) and a gray one; "examples/" ships with the repository, the rest are shared
#: photo sets (skipped where absent).
PHOTOS = [
    "examples/coffee_sepia.jpg",
    "examples/astronaut_gray.jpg",
    "kodak24/kodim01.jpg",
    "kodak24/kodim23.jpg",
    "bsds500/test/100039.jpg",
    "legacy/old_d.png",
    "mcmaster18/1.jpg",
]


def _open(name: str, request: pytest.FixtureRequest) -> Image.Image:
    root = REPO if name.startswith("examples/") else request.getfixturevalue("shared_data")
    with Image.open(root / name) as img:
        img.load()
        return img


def _torch_lab(rgb01: np.ndarray) -> np.ndarray:
    """(H, W, 3) float64 RGB in [0, 1] -> (H, W, 3) float64 Lab with color.lab."""
    return rgb_to_lab(torch.from_numpy(rgb01).permute(2, 0, 1)).permute(1, 2, 0).numpy()


def _torch_rgb(lab: np.ndarray) -> np.ndarray:
    """(H, W, 3) float64 Lab -> (H, W, 3) float64 RGB in [0, 1] with color.lab (clipped)."""
    return lab_to_rgb(torch.from_numpy(lab).permute(2, 0, 1)).permute(1, 2, 0).numpy()


def test_one_set_of_constants() -> None:
    # color.lab re-exports the constants that color.lab_np uses: one source for both
    assert torch_lab.XYZ_FROM_RGB is constants.XYZ_FROM_RGB
    assert torch_lab.WHITE_D65 is constants.WHITE_D65
    assert torch_lab.LAB_EPSILON == constants.LAB_EPSILON == 0.008856


@pytest.mark.parametrize("name", PHOTOS)
def test_luminance_agrees_with_torch(name: str, request: pytest.FixtureRequest) -> None:
    """L within 1e-4 (measured: 2e-5 at most). The numpy path computes in float32, whose
    rounding is 6e-8 relative, i.e. about 6e-6 L units per operation at L = 100; a handful of
    operations stay well under 1e-4, while a wrong constant or curve would be off by 1e-3 or
    more. 8-bit, 16-bit (the same photo times 257) and gray (H, W) inputs."""
    img = _open(name, request)
    rgb = np.asarray(img.convert("RGB"))
    ref = _torch_lab(rgb / 255.0)[..., 0]
    assert np.abs(luminance(rgb) - ref).max() < 1e-4
    assert np.abs(luminance(rgb.astype(np.uint16) * 257) - ref).max() < 1e-4
    gray = np.asarray(img.convert("L"))
    ref_gray = _torch_lab(np.repeat(gray[..., None] / 255.0, 3, axis=2))[..., 0]
    assert np.abs(luminance(gray) - ref_gray).max() < 1e-4


@pytest.mark.parametrize("name", PHOTOS)
def test_lab_to_rgb_agrees_with_torch(name: str, request: pytest.FixtureRequest) -> None:
    """The photo's torch Lab back to sRGB with the numpy path gives the photo again, exactly:
    the output tables sample the sRGB curve finely enough that their error stays under 0.4 code
    values (8-bit: 0.03), so an integer code value never rounds to its neighbour. Saturated
    beyond the gamut (ab x 1.8: up to a third of the channels clip), the numpy output equals
    torch's rounded ``lab_to_rgb`` up to one code value, on under 1 % of the channel values at
    8 bits (measured: 0.25 %) and 10 % at 16 bits (measured: 4 %): float32 against float64 at
    a rounding boundary, and at 16 bits the tables' sampling of the curve."""
    rgb = np.asarray(_open(name, request).convert("RGB"))
    lab = _torch_lab(rgb / 255.0)
    lum, ab = lab[..., 0].astype(np.float32), lab[..., 1:].astype(np.float32)
    np.testing.assert_array_equal(lab_to_rgb_image(lum, ab, 8), rgb)
    # 16-bit codes that are not multiples of 257, as a real 16-bit scan has
    offsets = (np.arange(rgb.size) % 200).reshape(rgb.shape)
    rgb16 = np.clip(rgb.astype(np.int64) * 257 - offsets, 0, 65535).astype(np.uint16)
    lab16 = _torch_lab(rgb16 / 65535.0).astype(np.float32)
    out16 = lab_to_rgb_image(lab16[..., 0], lab16[..., 1:], 16)
    back16 = np.abs(out16.astype(np.int64) - rgb16.astype(np.int64))
    assert back16.max() <= 1 and (back16 > 0).mean() < 1e-3

    vivid = np.dstack([lab[..., :1], lab[..., 1:] * 1.8])
    ref = _torch_rgb(vivid)
    vivid_ab = vivid[..., 1:].astype(np.float32)
    diff8 = np.abs(lab_to_rgb_image(lum, vivid_ab, 8).astype(int) - np.round(ref * 255))
    assert diff8.max() <= 1 and (diff8 > 0).mean() < 0.01
    diff16 = np.abs(lab_to_rgb_image(lum, vivid_ab, 16).astype(int) - np.round(ref * 65535))
    assert diff16.max() <= 1 and (diff16 > 0).mean() < 0.1

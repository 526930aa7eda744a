"""sRGB <-> CIE Lab (D65, 2-degree observer) in torch, and the network scalings of L and ab.

This module is the single home of the Lab scaling constants (50, 100, 110). The formulas follow
``skimage.color.rgb2lab`` / ``lab2rgb`` exactly (same matrices, thresholds and white point), so
results agree with scikit-image to float precision. All functions are batched over any leading
dimensions with channels at dim -3: ``(..., 3, H, W)``; they are differentiable and run on any
device in float32 or float64.
"""

from __future__ import annotations

import torch

# The colorimetric constants live in color.constants (torch-free, shared with color.lab_np);
# re-exported here, the Lab module.
from colorcli.color.constants import LAB_EPSILON as LAB_EPSILON
from colorcli.color.constants import LAB_F_THRESHOLD as LAB_F_THRESHOLD
from colorcli.color.constants import LAB_SLOPE as LAB_SLOPE
from colorcli.color.constants import WHITE_D65 as WHITE_D65
from colorcli.color.constants import XYZ_FROM_RGB as XYZ_FROM_RGB

# Network normalisation used by the reference eccv16/siggraph17 networks.
L_CENTER = 50.0
L_RANGE = 100.0
AB_SCALE = 110.0


def _matrix(like: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    m = torch.tensor(XYZ_FROM_RGB, dtype=torch.float64)
    if inverse:
        m = torch.linalg.inv(m)
    return m.to(device=like.device, dtype=like.dtype)


def _white(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(WHITE_D65, dtype=like.dtype, device=like.device).view(3, 1, 1)


def _check(x: torch.Tensor, name: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (..., 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def _apply_matrix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # x: (..., 3, H, W); contract the channel dim with m (3, 3).
    return torch.einsum("ij,...jhw->...ihw", m, x)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB transfer curve, inverse direction. Values in [0, 1]."""
    # clamp inside pow keeps gradients finite for the branch that torch.where discards
    high = torch.pow((rgb.clamp(min=0.04045) + 0.055) / 1.055, 2.4)
    return torch.where(rgb > 0.04045, high, rgb / 12.92)


def linear_to_srgb(lin: torch.Tensor) -> torch.Tensor:
    """sRGB transfer curve, forward direction (no clipping)."""
    high = 1.055 * torch.pow(lin.clamp(min=0.0031308), 1.0 / 2.4) - 0.055
    return torch.where(lin > 0.0031308, high, lin * 12.92)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(..., 3, H, W)`` in [0, 1] -> Lab ``(..., 3, H, W)``.

    L in [0, 100]; a and b roughly in [-110, 110].
    """
    _check(rgb, "rgb")
    xyz = _apply_matrix(_matrix(rgb), srgb_to_linear(rgb)) / _white(rgb)
    eps = LAB_EPSILON
    f = torch.where(
        xyz > eps, torch.pow(xyz.clamp(min=eps), 1.0 / 3.0), LAB_SLOPE * xyz + 16.0 / 116.0
    )
    fx, fy, fz = f.unbind(dim=-3)
    lum = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack([lum, a, b], dim=-3)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Lab ``(..., 3, H, W)`` -> sRGB ``(..., 3, H, W)``, clipped to [0, 1] unless ``clip=False``.

    Like scikit-image, negative Z (out-of-gamut b) is clipped to zero before the inverse transform.
    """
    _check(lab, "lab")
    lum, a, b = lab.unbind(dim=-3)
    fy = (lum + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)
    f = torch.stack([fx, fy, fz], dim=-3)
    thr = LAB_F_THRESHOLD
    xyz = torch.where(f > thr, torch.pow(f, 3.0), (f - 16.0 / 116.0) / LAB_SLOPE)
    xyz = xyz * _white(lab)
    rgb = linear_to_srgb(_apply_matrix(_matrix(lab, inverse=True), xyz))
    return rgb.clamp(0.0, 1.0) if clip else rgb


def rgb_to_luminance(rgb: torch.Tensor) -> torch.Tensor:
    """The Lab L channel ``(..., 1, H, W)`` of sRGB ``(..., 3, H, W)`` (cheaper than a full Lab)."""
    _check(rgb, "rgb")
    y = _apply_matrix(_matrix(rgb)[1:2], srgb_to_linear(rgb))
    eps = LAB_EPSILON
    fy = torch.where(y > eps, torch.pow(y.clamp(min=eps), 1.0 / 3.0), LAB_SLOPE * y + 16.0 / 116.0)
    return 116.0 * fy - 16.0


def normalize_l(lum: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> the eccv16 network input (L - 50) / 100, in [-0.5, 0.5]."""
    return (lum - L_CENTER) / L_RANGE


def ab_from_network(ab_unit: torch.Tensor) -> torch.Tensor:
    """Network ab output (unit scale) -> ab in Lab units (times 110)."""
    return ab_unit * AB_SCALE


def l_to_unit(lum: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> [-1, 1] (pix2pix-style networks)."""
    return lum / L_CENTER - 1.0


def ab_to_unit(ab: torch.Tensor) -> torch.Tensor:
    """ab in Lab units -> roughly [-1, 1] (pix2pix-style networks; divided by 110)."""
    return ab / AB_SCALE


def ab_from_unit(ab_unit: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (tanh output) -> ab in Lab units."""
    return ab_unit * AB_SCALE

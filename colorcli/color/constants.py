"""The CIE Lab constants (sRGB primaries, D65 white, the Lab curve), as plain Python floats.

Torch-free, so that both Lab implementations read them from here: ``color.lab`` (torch,
batched, differentiable; it re-exports these names) and ``color.lab_np`` (numpy, full
resolution, used by the onnx path, which never imports torch). The values are scikit-image's
(``skimage.color.rgb2lab`` / ``lab2rgb``), so both agree with it to float precision.
"""

from __future__ import annotations

#: Linear sRGB -> CIE XYZ (rows X, Y, Z), as in scikit-image.
XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
#: The D65 white point (X, Y, Z), 2-degree observer.
WHITE_D65 = (0.95047, 1.0, 1.08883)
#: Lab's f(t): the cube root above this t (= (6/29)^3, rounded as in scikit-image) ...
LAB_EPSILON = 0.008856
#: ... and the line ``LAB_SLOPE * t + 16/116`` below it.
LAB_SLOPE = 7.787
#: The inverse f^-1(f): cubing above this f (f(LAB_EPSILON) = 6/29), the line below it.
LAB_F_THRESHOLD = 0.2068966
#: An image (or crop) is effectively grayscale when no pixel has |a| > 5 or |b| > 5 (Lab units):
#: the test of Zhang et al.'s training code, used by the prior, training, eval and the Turing page.
GRAY_THRESHOLD = 5.0

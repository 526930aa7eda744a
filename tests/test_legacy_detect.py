"""The legacy detector on the archivist's folder (data/legacy): eight early colour prints
(autochromes, faded colour snapshots) and four monochrome prints (sepia, toned, scratched),
as judged by eye. Every one must be classified so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from colorcli import imageio
from colorcli.color.legacy import detect_legacy

BY_EYE = {
    "old_a.png": None,  # colour snapshot: boy with glasses, orange collar
    "old_b.png": None,  # autochrome: girl in a blue dress among green leaves
    "old_c.png": None,  # autochrome: porter, green bundle and blue rags on a brown ground
    "old_d.png": None,  # autochrome: the red Moulin Rouge
    "old_e.png": None,  # faded colour print: woman with a red umbrella
    "old_f.png": None,  # colour postcard: harbour, blue sky
    "old_g.png": None,  # autochrome: girl with pink roses
    "old_h.png": None,  # autochrome: bearded man, green coat
    "old_w_scratch_a.png": "tinted",  # sepia photobooth strip with white scratches
    "old_w_scratch_b.png": "tinted",  # toned portrait with cracks
    "old_w_scratch_c.png": "tinted",  # faded toned portrait
    "old_w_scratch_d.png": "tinted",  # sepia couple with heavy cracks
}


@pytest.mark.parametrize("name", sorted(BY_EYE))
def test_legacy_folder_as_judged_by_eye(shared_data: Path, name: str) -> None:
    pixels = imageio.read_image(shared_data / "legacy" / name).pixels
    assert detect_legacy(pixels) == BY_EYE[name]


def test_small_colour_object_in_a_one_hue_scene_is_colour() -> None:
    # a sepia-looking scene (one hue whose chroma follows L) with a small red object: colour
    h, w = 96, 128
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    lum = 30 + 50 * (x / w) + 10 * np.sin(y / 7)
    lab = np.dstack([lum, 0.1 * lum + 2, 0.3 * lum + 4])
    tinted = np.round(lab2rgb(lab) * 255).astype(np.uint8)
    assert detect_legacy(tinted) == "tinted"
    lab[40:52, 60:76, 1:] = (55.0, 30.0)  # about 1.6 % of the picture, a red hue
    spot = np.round(lab2rgb(lab) * 255).astype(np.uint8)
    assert detect_legacy(spot) is None
    # scratches and dust (white specks, no hue) leave a tinted print tinted
    scratched = tinted.copy()
    scratched[::9, :] = 250
    scratched[:, ::23] = 245
    assert detect_legacy(scratched) == "tinted"
    assert abs(rgb2lab(scratched / 255.0)[..., 0].mean() - lum.mean()) < 25

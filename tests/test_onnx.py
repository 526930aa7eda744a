"""The ONNX Runtime backend: export, metadata, numpy decoding, agreement with torch, the
backend choice, and a torch-free colorize (skipped without onnxruntime and onnx)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from colorcli.checkpoint import load_model, save_model
from colorcli.cli import app
from colorcli.color.bins import reference_bins
from colorcli.color.encode import decode
from colorcli.colorize import Colorizer
from colorcli.errors import UsageError
from colorcli.models import create_model
from colorcli.onnx import backend as onnx_backend
from colorcli.onnx.export import export_onnx
from colorcli.onnx.runtime import OnnxModel, decode_np, upsample_bilinear

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples").glob("*.*g"))
runner = CliRunner()


def _sharpen(model: torch.nn.Module, gain: float) -> None:
    """Scale the last layer so that the untrained logits are peaked like a trained model's
    (a flat softmax would make any two backends agree)."""
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(gain)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """eccv16 (width 1/16) and effnet-unet (random init): model file and exported twin."""
    out: dict[str, tuple[Path, Path]] = {}
    folder = tmp_path_factory.mktemp("onnx")
    specs = {
        "eccv16": ({"q": 313, "width": 0.0625}, 40.0),
        "effnet-unet": ({"q": 313, "pretrained": False}, 60.0),
    }
    for arch, (kwargs, gain) in specs.items():
        torch.manual_seed(0)
        model = create_model(arch, **kwargs)
        _sharpen(model, gain)
        path = folder / f"{arch}.safetensors"
        save_model(path, model, arch=arch, arch_kwargs=kwargs, bins=reference_bins(), input_size=96)
        twin = folder / f"{arch}.onnx"
        result = export_onnx(path, twin)
        assert result.path == twin and result.max_ab_diff < 0.05
        out[arch] = (path, twin)
    return out


@pytest.mark.parametrize("arch", ["eccv16", "effnet-unet"])
def test_export_metadata_and_dynamic_shapes(
    models: dict[str, tuple[Path, Path]], arch: str
) -> None:
    path, twin = models[arch]
    meta = onnx_backend.read_meta(twin)
    loaded = load_model(path, "cpu")
    assert meta["format"] == "colorcli-onnx" and meta["arch"] == arch
    assert meta["kind"] == "classification" and meta["input_size"] == 96
    assert meta["size_multiple"] == loaded.size_multiple
    assert meta["decode"] == {"method": "annealed", "temperature": 0.38}
    assert np.allclose(np.asarray(meta["bins"]), reference_bins())
    assert meta["source_sha256"] == onnx_backend.file_sha256(path)
    exported = OnnxModel.open(twin)
    gen = torch.Generator().manual_seed(1)
    for shape in ((1, 1, 64, 96), (2, 1, 70, 45), (1, 1, 33, 130)):  # not multiples too
        x = torch.rand(shape, generator=gen) * 100
        ref = loaded.predict_ab(x).numpy()
        got = exported.predict_ab(x.numpy())
        assert got.shape == ref.shape == (shape[0], 2, *shape[2:])
        assert got.dtype == np.float32
        assert np.abs(got - ref).max() < 1e-3
        for t in (1.0, 0.1):
            ref_t = loaded.predict_ab(x, temperature=t).numpy()
            assert np.abs(exported.predict_ab(x.numpy(), temperature=t) - ref_t).max() < 1e-3


@pytest.mark.parametrize("arch", ["eccv16", "effnet-unet"])
def test_colorize_agrees_with_torch_on_photos(
    models: dict[str, tuple[Path, Path]], arch: str
) -> None:
    """ab within 0.5 of the torch backend on the example photos (the twin beside the model)."""
    from PIL import Image

    path, _ = models[arch]
    on_torch = Colorizer.load(path, "cpu", backend="torch")
    on_onnx = Colorizer.load(path, "cpu", backend="onnx")
    assert on_onnx.backend == "onnx" and on_torch.backend == "torch"
    assert on_onnx.size == on_torch.size == 96
    from colorcli import imageio

    spread = 0.0
    for photo in EXAMPLES:
        with Image.open(photo) as img:
            decoded = imageio.decoded_from_pil(img)
        prep = on_torch.prepare(decoded)
        ab_t = on_torch.predict_ab(prep.l_small[None])
        ab_o = on_onnx.predict_ab(prep.l_small[None])
        assert ab_o.shape == ab_t.shape
        assert np.abs(ab_o - ab_t).max() < 0.5
        spread = max(spread, float(ab_t.std()))
        rgb_t = on_torch.finish(prep, ab_t[0])
        rgb_o = on_onnx.finish(prep, ab_o[0])
        assert np.abs(rgb_t.astype(int) - rgb_o.astype(int)).max() <= 2
    assert spread > 1.0  # the sharpened model does predict colours


def test_numpy_decode_matches_torch() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 313, 5, 7, generator=gen) * 4
    bins = reference_bins()
    for method in ("annealed", "mean", "mode"):
        ref = decode(logits, bins, method=method, temperature=0.38).numpy()  # type: ignore[arg-type]
        got = decode_np(logits.numpy(), bins.astype(np.float32), method, 0.38)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() < 1e-3


@pytest.mark.parametrize(("src", "dst"), [((6, 8), (24, 32)), ((5, 3), (17, 11)), ((4, 4), (4, 4))])
def test_numpy_bilinear_matches_interpolate(src: tuple[int, int], dst: tuple[int, int]) -> None:
    x = torch.rand(2, 2, *src, generator=torch.Generator().manual_seed(3)) * 100
    ref = F.interpolate(x, size=dst, mode="bilinear", align_corners=False).numpy()
    got = upsample_bilinear(x.numpy(), dst)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-4


def test_choose_backend(
    models: dict[str, tuple[Path, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = models["eccv16"]
    assert onnx_backend.choose(path, "cpu", "torch") is None
    with pytest.raises(UsageError, match="backend must be one of"):
        onnx_backend.choose(path, "cpu", "tensorrt")
    with pytest.raises(UsageError, match="CPU"):
        onnx_backend.choose(path, "cuda", "onnx")
    assert onnx_backend.choose(path, "cuda", "auto") is None
    with pytest.raises(UsageError, match="half"):
        onnx_backend.choose(path, "cpu", "onnx", half=True)
    assert isinstance(onnx_backend.choose(path, "cpu", "auto"), OnnxModel)  # the twin beside
    monkeypatch.setattr(onnx_backend, "onnxruntime_available", lambda: False)
    assert onnx_backend.choose(path, "cpu", "auto") is None
    with pytest.raises(UsageError, match=r"colorcli\[onnx\]"):
        onnx_backend.choose(path, "cpu", "onnx")


def test_choose_opens_one_session(
    models: dict[str, tuple[Path, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin's metadata is checked on the session that then runs it (a session is a tenth
    of a second of a cold start); a stale twin beside the model (another model's export) is
    passed over for the right one in the cache."""
    import onnxruntime as ort

    opened: list[str] = []
    real = ort.InferenceSession

    def counting(path: str, *args: object, **kwargs: object) -> object:
        opened.append(Path(path).name)
        return real(path, *args, **kwargs)

    path, twin = models["eccv16"]
    monkeypatch.setattr(ort, "InferenceSession", counting)
    model = onnx_backend.choose(path, "cpu", "onnx")
    assert isinstance(model, OnnxModel) and model.path == twin
    assert opened == [twin.name]

    src, _ = models["effnet-unet"]
    lone = tmp_path / "m.safetensors"
    lone.write_bytes(src.read_bytes())
    (tmp_path / "m.onnx").write_bytes(twin.read_bytes())  # eccv16's export: not this model's
    monkeypatch.setenv("COLORCLI_CACHE", str(tmp_path / "cache"))
    cached = onnx_backend.cached_twin(onnx_backend.file_sha256(lone))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(models["effnet-unet"][1].read_bytes())
    opened.clear()
    model = onnx_backend.choose(lone, "cpu", "auto")
    assert model is not None and model.path == cached and model.meta["arch"] == "effnet-unet"
    assert opened == ["m.onnx", cached.name]


def test_auto_exports_once_into_the_cache(
    models: dict[str, tuple[Path, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No twin beside the model: exported into the cache (named by sha256), then reused; a
    twin of another model file (other sha256) does not count."""
    src, _ = models["eccv16"]
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(src.read_bytes())
    monkeypatch.setenv("COLORCLI_CACHE", str(tmp_path / "cache"))
    first = onnx_backend.choose(lone, "cpu", "auto")
    assert isinstance(first, OnnxModel)
    cached = onnx_backend.cached_twin(onnx_backend.file_sha256(lone))
    assert first.path == cached and cached.is_file()
    assert cached.parent == tmp_path / "cache" / "onnx"
    assert not list(cached.parent.glob(".*"))  # no temporary left behind

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported twice")

    monkeypatch.setattr("colorcli.onnx.export.export_onnx", no_export)
    again = onnx_backend.choose(lone, "cpu", "auto")
    assert again is not None and again.path == cached
    other = tmp_path / "other.safetensors"
    other.write_bytes(src.read_bytes() + b" ")  # another sha256: the cache twin is not its
    assert onnx_backend.find_twin(other) is None


def test_export_onnx_command(models: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    path, _ = models["eccv16"]
    out = tmp_path / "sub" / "m.onnx"
    res = runner.invoke(app, ["export-onnx", str(path), str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and "Wrote" in res.output
    assert onnx_backend.read_meta(out)["arch"] == "eccv16"
    res = runner.invoke(app, ["export-onnx", str(tmp_path / "missing.pt"), str(out)])
    assert res.exit_code == 2
    assert len(res.output.strip().splitlines()) == 1


def test_colorize_cli_backend_option(models: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    path, _ = models["eccv16"]
    photo = EXAMPLES[0]
    for backend in ("onnx", "torch"):
        out = tmp_path / backend
        args = ["colorize", str(photo), "--model", str(path), "--device", "cpu", "-o", str(out)]
        res = runner.invoke(app, [*args, "--backend", backend])
        assert res.exit_code == 0, res.output
        assert (out / photo.name).is_file()
    res = runner.invoke(app, ["colorize", str(photo), "--backend", "tensorrt"])
    assert res.exit_code == 2


TORCH_FREE = """
import sys, numpy as np
from pathlib import Path
from colorcli.colorize import Colorizer
c = Colorizer.load(sys.argv[1], "cpu", backend="onnx")
img = c.colorize(np.full((40, 60), 128, dtype=np.uint8))
assert img.size == (60, 40)
from colorcli.cli import app
try:
    app(["colorize", sys.argv[2], "--model", sys.argv[1], "--backend", "onnx", "-o", sys.argv[3]])
except SystemExit as exc:
    assert not exc.code, exc.code
assert (Path(sys.argv[3]) / Path(sys.argv[2]).name).is_file()
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
"""


def test_onnx_backend_never_imports_torch(
    models: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    """API and CLI colorize on the onnx backend, in a fresh process: torch stays unimported."""
    path, _ = models["eccv16"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(path), str(EXAMPLES[0]), str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "NO-TORCH", proc.stdout


def test_bad_onnx_files(tmp_path: Path) -> None:
    from colorcli.errors import BadWeights

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(BadWeights, match="not a readable ONNX model"):
        OnnxModel.open(junk)
    with pytest.raises(BadWeights, match="no such"):
        OnnxModel.open(tmp_path / "none.onnx")
    plain = tmp_path / "plain.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            torch.nn.Conv2d(1, 2, 3), (torch.zeros(1, 1, 8, 8),), str(plain), dynamo=False
        )
    with pytest.raises(BadWeights, match="without colorcli metadata"):
        OnnxModel.open(plain)

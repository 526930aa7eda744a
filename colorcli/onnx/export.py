"""Export a colorcli model file to ONNX (torch and the ``onnx`` package; the ``onnx`` extra).

The graph is the network alone with dynamic batch, height and width (TorchScript exporter,
opset 17); decoding, bins and sizes go into the metadata (``colorcli.onnx.format``). Before the
file appears under its name (atomic write) its ab is checked against the torch model's
``predict_ab`` on two inputs of different shapes, one of them not a multiple of the model's
size multiple.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from colorcli import fsutil
from colorcli.checkpoint import LoadedModel, load_model, resolve_model_spec
from colorcli.color.lab import AB_SCALE
from colorcli.errors import BadWeights, NotAvailable
from colorcli.onnx.format import FORMAT, META_KEY, VERSION, file_sha256
from colorcli.onnx.runtime import OnnxModel

OPSET = 17
#: Largest |ab| difference (Lab units) accepted between the exported and the torch model.
CHECK_TOLERANCE = 0.05


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_ab_diff: float  # largest |ab| difference to the torch model on the check inputs


def _metadata(loaded: LoadedModel, source: Path) -> dict[str, object]:
    bins = None if loaded.bins is None else loaded.bins.double().cpu().tolist()
    return {
        "format": FORMAT,
        "version": VERSION,
        "arch": loaded.arch,
        "kind": loaded.kind,
        "input_size": loaded.input_size,
        "size_multiple": loaded.size_multiple,
        "decode": {"method": loaded.decode_method, "temperature": loaded.temperature},
        "bins": bins,
        "ab_scale": AB_SCALE,
        "source": source.name,
        "source_sha256": file_sha256(source),
    }


def _check_inputs(loaded: LoadedModel) -> list[torch.Tensor]:
    m, side = loaded.size_multiple, loaded.input_size
    gen = torch.Generator().manual_seed(0)
    shapes = [(1, 1, side, side * 3 // 4), (2, 1, max(m, side // 2) + 3, side // 2 + 5)]
    return [torch.rand(s, generator=gen) * 100 for s in shapes]


def export_onnx(
    spec: str | os.PathLike[str] | None, out: str | os.PathLike[str], *, opset: int = OPSET
) -> ExportResult:
    """Export the model ``spec`` (path, ``hf://...`` or None for the default) to ``out``."""
    try:
        import onnx
    except ImportError:
        raise NotAvailable(
            "export-onnx needs the onnx package: pip install 'colorcli[onnx]'"
        ) from None
    source = resolve_model_spec(spec)
    loaded = load_model(spec, "cpu")
    if loaded.kind == "discriminator":
        raise BadWeights(f"{source}: a discriminator cannot colorize: nothing to export")
    meta = _metadata(loaded, source)
    m = loaded.size_multiple
    side = -(-loaded.input_size // m) * m
    dummy = torch.rand(1, 1, side, max(m, side - m)) * 100
    result: list[float] = []

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                loaded.model,
                (dummy,),
                str(tmp),
                input_names=["L"],
                output_names=["out"],
                dynamic_axes={"L": {0: "batch", 2: "height", 3: "width"}, "out": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, json.dumps(meta)
        onnx.save(proto, str(tmp))
        exported = OnnxModel.open(tmp)
        diff = 0.0
        for x in _check_inputs(loaded):
            ref = loaded.predict_ab(x).numpy()
            got = exported.predict_ab(x.numpy())
            diff = max(diff, float(np.abs(ref - got).max()))
        if not diff <= CHECK_TOLERANCE:
            raise BadWeights(
                f"{source}: the exported ONNX model differs from the torch model by {diff:.3g} "
                f"ab units (limit {CHECK_TOLERANCE})"
            )
        result.append(diff)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fsutil.atomic_write(out, write, tmp=out.with_name(f".{out.stem}.{os.getpid()}.tmp.onnx"))
    return ExportResult(out, result[0])

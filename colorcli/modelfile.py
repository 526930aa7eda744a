"""The container of colorcli's self-describing files: safetensors written, safetensors and
PyTorch read, and a one-line reason for everything else.

A colorcli safetensors file holds the state dict as its tensors (so ``safetensors.torch.load_file``
gives exactly ``model.state_dict()``) and the self-description as JSON in the header's
``__metadata__``::

    {"format": "colorcli-model", "colorcli": "<JSON of every field but state_dict>"}

Nothing here runs code from a file: safetensors is data by construction, PyTorch files are read
with ``torch.load(weights_only=True)``, and the container is recognised by its first bytes before
either reader sees it, so that a text file, a NumPy archive or random bytes get a plain reason
instead of an unpickler's. Missing paths raise ``MissingFile`` (a usage error, exit 2).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from colorcli.errors import BadWeights, MissingFile
from colorcli.fsutil import atomic_open

META_KEY = "colorcli"
SAFETENSORS = "safetensors"
TORCH = "pytorch"
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _check_path(path: Path, what: str) -> None:
    if not path.exists():
        raise MissingFile(f"{path}: no such file")
    if path.is_dir():
        hint = ""
        if (path / "model.pt").is_file():
            hint = f" (its model file is {path / 'model.pt'})"
        raise BadWeights(f"{path}: is a folder, not a {what}{hint}")


def _safetensors_header(path: Path, head: bytes, size: int) -> dict[str, Any] | None:
    """The parsed JSON header when ``head`` starts a safetensors file, else None; BadWeights
    when it starts one but the file is cut short or its header is broken."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (n,) = struct.unpack("<Q", head[:8])
    if n > _MAX_HEADER:
        return None
    if 8 + n > size:
        raise BadWeights(f"{path}: truncated safetensors file ({size} bytes, header needs {8 + n})")
    with open(path, "rb") as fh:
        fh.seek(8)
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadWeights(f"{path}: corrupt safetensors header ({_reason(exc)})") from exc
    if not isinstance(header, dict):
        raise BadWeights(f"{path}: corrupt safetensors header (not a JSON object)")
    ends = [
        int(v["data_offsets"][1])
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
    ]
    need = 8 + n + max(ends, default=0)
    if need > size:
        raise BadWeights(f"{path}: truncated safetensors file ({size} of {need} bytes)")
    return header


def _describe_foreign(head: bytes) -> str:
    if not head:
        return "an empty file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unrecognised content (neither safetensors nor a PyTorch file)"
    if all(c.isprintable() or c in "\r\n\t" for c in text.rstrip("\x00")):
        return "a text file"
    return "unrecognised content (neither safetensors nor a PyTorch file)"


def container(path: Path) -> str:
    """``"safetensors"`` or ``"pytorch"`` for a file one of the readers may open; BadWeights with
    what the file looks like otherwise (text, a zip archive that is not PyTorch's, ...)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(64)
    if _safetensors_header(path, head, size) is not None:
        return SAFETENSORS
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise BadWeights(f"{path}: truncated or corrupt PyTorch file ({_reason(exc)})") from exc
        if not any(n.endswith("/data.pkl") for n in names):
            first = names[0] if names else "nothing"
            raise BadWeights(
                f"{path}: a zip archive (e.g. NumPy .npz) holding {first}"
                f"{' ...' if len(names) > 1 else ''}, not a model file"
            )
        return TORCH
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return TORCH  # the legacy (pre-zip) torch.save layout starts with a pickle
    raise BadWeights(f"{path}: not a model file: {_describe_foreign(head)}")


def _torch_read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        marker = "Unsupported global:"
        if marker in text:  # a real pickled object, not just garbage
            what = text.split(marker, 1)[1].strip().split(" was ")[0]
            raise BadWeights(
                f"{path}: refused: the file holds Python objects, not just tensors "
                f"({what}; loading it could run code)"
            ) from exc
        raise BadWeights(f"{path}: corrupt PyTorch file (its pickle cannot be read)") from exc
    except Exception as exc:  # zip, EOF and OS errors from a corrupt or truncated file
        raise BadWeights(f"{path}: truncated or corrupt PyTorch file ({_reason(exc)})") from exc


def _safetensors_read(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(os.fspath(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            for k in f.keys():  # noqa: SIM118  (safe_open is not a Mapping)
                tensors[k] = f.get_tensor(k)
    except Exception as exc:  # SafetensorError: a header or buffer that does not add up
        raise BadWeights(f"{path}: corrupt safetensors file ({_reason(exc)})") from exc
    if META_KEY not in meta:
        return tensors  # a bare state dict (e.g. converted released weights)
    return {**_description(path, meta), "state_dict": tensors}


def _description(path: Path, meta: Mapping[str, str]) -> dict[str, Any]:
    try:
        desc = json.loads(meta[META_KEY])
    except ValueError as exc:
        raise BadWeights(f"{path}: corrupt colorcli metadata ({_reason(exc)})") from exc
    if not isinstance(desc, dict):
        raise BadWeights(f"{path}: corrupt colorcli metadata (not a JSON object)")
    return desc


def read_file(path: str | os.PathLike[str], what: str = "model file") -> Any:
    """The content of a safetensors or PyTorch file, without running code: for a colorcli file
    the self-description dict with ``state_dict`` ({name: tensor}); for a bare safetensors file
    its tensors; for a PyTorch file whatever ``torch.load(weights_only=True)`` returns.
    One-line BadWeights (MissingFile for a missing path) naming the file otherwise."""
    path = Path(path)
    _check_path(path, what)
    if container(path) == SAFETENSORS:
        return _safetensors_read(path)
    return _torch_read(path)


def read_metadata(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any] | None]:
    """(container, self-description or None) without reading the tensors of a safetensors file
    (a PyTorch file is read whole); the description lacks ``state_dict``."""
    path = Path(path)
    _check_path(path, "model file")
    kind = container(path)
    if kind == SAFETENSORS:
        with open(path, "rb") as fh:
            head = fh.read(64)
        header = _safetensors_header(path, head, path.stat().st_size) or {}
        meta = header.get("__metadata__") or {}
        return kind, (_description(path, meta) if META_KEY in meta else None)
    obj = _torch_read(path)
    if isinstance(obj, dict) and "format" in obj:
        return kind, {k: v for k, v in obj.items() if k != "state_dict"}
    return kind, None


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value  # NaN / Infinity included: json writes and reads them back


def write_safetensors(
    path: str | os.PathLike[str], state: Mapping[str, torch.Tensor], description: Mapping[str, Any]
) -> Path:
    """Write ``state`` as the tensors and ``description`` (plain data; tensors in it become nested
    lists) as the JSON metadata of a safetensors file, atomically (temp file + fsync + rename)."""
    from safetensors.torch import save

    desc = _jsonable(dict(description))
    meta = {"format": str(desc.get("format", "")), META_KEY: json.dumps(desc, sort_keys=True)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    data = save(tensors, metadata=meta)
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(final, fsync=True) as fh:
        fh.write(data)
    return final

"""What a model file says about itself: ``describe`` (for ``colorcli info``), the shipped and cached
models (``colorcli models``), and the Hub model card and upload of ``colorcli push``.

Everything here is read from the file's own self-description (``checkpoint``): nothing is typed
in twice. The model card's text is the template ``assets/model_card.md`` (``string.Template``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import string
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from colorcli import checkpoint, modelfile
from colorcli.errors import ColorcliError, UsageError

HUB_MODEL_FILE = "model.safetensors"
CARD_FILE = "README.md"
DEFAULT_LICENSE = "mit"
_HF_REPO = re.compile(r"^hf://([A-Za-z0-9][\w.-]*)/([\w.-]+)(?:@([^\s/]+))?/?$")
_SPLITS = {"train", "val", "valid", "validation", "test", "images"}


class HubError(ColorcliError):
    """The Hub refused or could not be reached (no token, no permission, network)."""


@dataclass
class ModelInfo:
    """The facts ``colorcli info`` shows; ``to_dict`` is its ``--json``."""

    source: str
    path: str
    container: str  # "safetensors", "pytorch" or "released eccv16"
    file_bytes: int
    arch: str
    kind: str
    parameters: int
    storage: str  # "float16" or "float32"
    bins: int | None
    decode_method: str
    temperature: float
    input_size: int
    size_multiple: int
    step: int | None
    train: dict[str, Any] = field(default_factory=dict)  # data, steps, batch size, objective...
    metrics: dict[str, float] = field(default_factory=dict)  # scalar held-out metrics
    notes: list[str] = field(default_factory=list)
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _data_folders(tc: Mapping[str, Any]) -> list[str]:
    out = [tc.get("data_dir"), *(tc.get("extra_data_dirs") or [])]
    return [str(p) for p in out if p]


def _training(tc: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("objective", "steps", "batch_size", "crop", "lr", "lam", "targets", "seed", "device")
    train = {k: tc[k] for k in keys if tc.get(k) is not None}
    data = _data_folders(tc)
    if data:
        train["data"] = data
    if tc.get("val_dir"):
        train["validation"] = str(tc["val_dir"])
    elif tc.get("val_split"):
        train["validation"] = f"{tc['val_split']:g} of the data held out"
    if tc.get("val_images"):
        train["val_images"] = tc["val_images"]
    src = tc.get("finetuned_from")
    if isinstance(src, Mapping) and src.get("path"):
        train["finetuned_from"] = str(src["path"])
    return train


def _metrics(raw: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
    scalars, notes = {}, []
    for k, v in raw.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, int | float):
            scalars[k] = float(v)
        elif isinstance(v, Mapping) and v.get("rule"):
            data = f" on {v['data']}" if v.get("data") else ""
            notes.append(f"{k.replace('_', ' ')}: {v['rule']}{data}")
    return scalars, notes


def describe(spec: str | os.PathLike[str] | None, cache_dir: str | None = None) -> ModelInfo:
    """The facts of the model ``spec`` (path, ``hf://owner/repo[@rev]/file`` or ``default``)."""
    path = checkpoint.resolve_model_spec(spec, cache_dir)
    loaded = checkpoint.load_model(path, "cpu")
    container, desc = modelfile.read_metadata(path)
    desc = desc or {}
    released = bool(loaded.meta.get("released"))
    metrics, notes = _metrics(loaded.meta.get("metrics") or {})
    if released:
        notes.append(str(loaded.meta["released"]))
    return ModelInfo(
        source="default" if spec in (None, "default") else str(spec),
        path=str(path),
        container="released eccv16" if released else container,
        file_bytes=path.stat().st_size,
        arch=loaded.arch,
        kind=loaded.kind,
        parameters=sum(p.numel() for p in loaded.model.parameters()),
        storage="float16" if desc.get("half") else "float32",
        bins=None if loaded.bins is None else int(loaded.bins.shape[0]),
        decode_method=str(loaded.decode_method),
        temperature=float(loaded.temperature),
        input_size=int(loaded.input_size),
        size_multiple=loaded.size_multiple,
        step=loaded.meta.get("step"),
        train=_training(loaded.meta.get("train_config") or {}),
        metrics=metrics,
        notes=notes,
        arch_kwargs=dict(loaded.arch_kwargs),
    )


# ----------------------------------------------------------------------------- models on disk


@dataclass
class KnownModel:
    """A model file ``colorcli models`` lists: ``spec`` is what ``--model`` takes."""

    spec: str
    path: str
    where: str  # "shipped" or "hub cache"
    arch: str | None
    size_bytes: int


def _arch_of(path: Path) -> str | None:
    """The architecture named in a colorcli file's description; None for anything else."""
    try:
        _, desc = modelfile.read_metadata(path)
    except ColorcliError:
        return None
    if not desc or desc.get("format") != checkpoint.FORMAT:
        return None
    return str(desc.get("arch"))


def shipped_models() -> list[KnownModel]:
    """The default (``$COLORCLI_WEIGHTS`` or the packaged / checkout copy), when it exists."""
    path = checkpoint.default_model_path()
    if not path.is_file():
        return []
    return [KnownModel("default", str(path), "shipped", _arch_of(path), path.stat().st_size)]


def cached_hub_models(cache_dir: str | os.PathLike[str] | None = None) -> list[KnownModel]:
    """colorcli model files in the Hugging Face cache, as ``hf://`` specs (``@commit`` unless the
    cached revision is ``main``). Only ``.safetensors``, ``.pt`` and ``.pth`` files under 2 GB
    are opened, and only those that hold a colorcli description are listed."""
    from huggingface_hub import constants, scan_cache_dir

    root = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE).expanduser()
    if not root.is_dir():
        return []
    try:
        info = scan_cache_dir(root)
    except Exception:  # a cache being written or foreign folders: nothing to list
        return []
    found = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
            at = "" if "main" in rev.refs else f"@{rev.commit_hash}"
            for f in sorted(rev.files, key=lambda f: f.file_name):
                rel = f.file_path.relative_to(rev.snapshot_path).as_posix()
                if not rel.endswith((".safetensors", ".pt", ".pth")) or f.size_on_disk > 2**31:
                    continue
                arch = _arch_of(f.file_path)
                if arch is not None:
                    spec = f"hf://{repo.repo_id}{at}/{rel}"
                    found.append(
                        KnownModel(spec, str(f.file_path), "hub cache", arch, f.size_on_disk)
                    )
    return found


# ----------------------------------------------------------------------------- model card


def parse_hf_repo(spec: str) -> tuple[str, str | None]:
    """``hf://owner/repo[@revision]`` -> (repo_id, revision or None); UsageError otherwise."""
    m = _HF_REPO.match(spec)
    if m is None:
        raise UsageError(f"bad Hub repository {spec!r} (expected hf://owner/repo[@revision])")
    owner, name, revision = m.groups()
    return f"{owner}/{name}", revision


def dataset_names(info: ModelInfo) -> list[str]:
    """Short names of the training folders (``data/bsds500/train`` -> ``bsds500``), sorted."""
    names = set()
    for folder in info.train.get("data", []):
        parts = [p for p in Path(folder).parts if p not in ("/", ".", "..")]
        while len(parts) > 1 and parts[-1].lower() in _SPLITS:
            parts.pop()
        if parts:
            names.add(parts[-1])
    return sorted(names)


def _yaml_list(items: list[str]) -> str:
    return "\n".join(f"  - {json.dumps(i)}" for i in items) if items else "  []"


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _human_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def render_card(
    info: ModelInfo,
    repo_id: str,
    revision: str | None = None,
    *,
    license: str = DEFAULT_LICENSE,
    datasets: list[str] | None = None,
    tags: list[str] | None = None,
) -> str:
    """The README.md model card of ``info`` pushed to ``repo_id``: YAML front matter for the Hub
    (library_name, license, tags, datasets, pipeline_tag) and a body from the file's metadata."""
    spec = f"hf://{repo_id}{'@' + revision if revision else ''}/{HUB_MODEL_FILE}"
    all_tags = ["colorcli", "colorization", "image-to-image", info.arch, *(tags or [])]
    train = info.train
    rows = [
        ("architecture", f"`{info.arch}` ({info.kind})"),
        ("parameters", f"{info.parameters:,}"),
        ("weights", f"{info.storage}, {_human_bytes(info.file_bytes)} (safetensors)"),
        ("bins", "—" if info.bins is None else str(info.bins)),
        ("decoding", f"{info.decode_method}, T = {info.temperature:g}"),
        ("input size", f"{info.input_size} px (sides padded to multiples of {info.size_multiple})"),
    ]
    model_table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    trows = [("training data", ", ".join(f"`{d}`" for d in train.get("data", [])) or "unknown")]
    for key, label in (
        ("validation", "validation"),
        ("objective", "objective"),
        ("steps", "steps planned"),
        ("batch_size", "batch size"),
        ("crop", "crop"),
        ("lr", "learning rate"),
        ("finetuned_from", "fine-tuned from"),
    ):
        if key in train:
            trows.append((label, str(train[key])))
    trows.append(("steps trained", "unknown" if info.step is None else f"{info.step:,}"))
    train_table = "\n".join(f"| {k} | {v} |" for k, v in trows)
    if info.metrics:
        metric_rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in info.metrics.items())
        metrics = f"| metric | value |\n|---|---|\n{metric_rows}"
    else:
        metrics = "The file records no held-out metrics."
    notes = "\n".join(f"- {n}" for n in info.notes)
    template = resources.files("colorcli").joinpath("assets/model_card.md").read_text("utf-8")
    return string.Template(template).substitute(
        license=json.dumps(license),
        tags=_yaml_list(all_tags),
        datasets=_yaml_list(dataset_names(info) if datasets is None else datasets),
        title=repo_id.split("/")[-1],
        repo_id=repo_id,
        arch=info.arch,
        kind=info.kind,
        spec=spec,
        model_table=model_table,
        train_table=train_table,
        metrics=metrics,
        val_images=train.get("val_images", "the"),
        notes=notes + "\n" if notes else "",
    )


# ----------------------------------------------------------------------------- push


@dataclass
class Upload:
    """Exactly what ``push`` sends: ``folder`` holds ``model.safetensors`` and ``README.md``."""

    repo_id: str
    revision: str | None
    folder: Path  # a temporary folder, gone once ``push_model`` returns, unless a dry run's
    info: ModelInfo
    files: list[str]


def stage(
    model: str,
    repo: str,
    folder: str | os.PathLike[str],
    *,
    license: str = DEFAULT_LICENSE,
    datasets: list[str] | None = None,
    tags: list[str] | None = None,
) -> Upload:
    """Write the upload of ``model`` to ``repo`` (``hf://owner/repo[@rev]``) into ``folder``
    (created; must be empty): the model as safetensors (converted when it is a ``.pt`` from
    before, the storage type kept) and the generated model card."""
    repo_id, revision = parse_hf_repo(repo)
    out = Path(folder)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: exists and is not an empty folder")
    info = describe(model)
    if info.container == "released eccv16":
        raise UsageError(
            f"{model}: the authors' released weights carry no description to publish "
            "(convert them with scripts/convert_model.py first)"
        )
    out.mkdir(parents=True, exist_ok=True)
    src = Path(info.path)
    target = out / HUB_MODEL_FILE
    if info.container == modelfile.SAFETENSORS:
        shutil.copyfile(src, target)
    else:
        checkpoint.copy_model(src, target, half=info.storage == "float16")
    info.file_bytes = target.stat().st_size
    card = render_card(info, repo_id, revision, license=license, datasets=datasets, tags=tags)
    (out / CARD_FILE).write_text(card, encoding="utf-8")
    return Upload(repo_id, revision, out, info, sorted(p.name for p in out.iterdir()))


def _hub_reason(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if status in (401, 403):
        return f"no permission ({status}): check your token's write access ({text[:120]})"
    if status is not None:
        return f"the Hub answered {status} ({text[:160]})"
    return f"cannot reach the Hub ({type(exc).__name__}: {text[:160]})"


def push(
    upload: Upload,
    *,
    private: bool = False,
    message: str | None = None,
    api_factory: Callable[[], Any] | None = None,
) -> str:
    """Create ``upload.repo_id`` if needed (private when asked), the revision's branch if one is
    named, and commit the staged folder; returns the commit URL. Authentication is
    huggingface_hub's (``HF_TOKEN`` or the token ``hf auth login`` stored)."""
    import huggingface_hub

    if api_factory is None:
        if huggingface_hub.get_token() is None:
            raise HubError("no Hugging Face token: run 'hf auth login' or set HF_TOKEN")
        api_factory = huggingface_hub.HfApi
    msg = message or f"Upload {upload.info.arch} colorizer with colorcli"
    where = f"hf://{upload.repo_id}"
    try:
        api = api_factory()
        api.create_repo(upload.repo_id, private=private, exist_ok=True)
        if upload.revision:
            api.create_branch(upload.repo_id, branch=upload.revision, exist_ok=True)
        commit = api.upload_folder(
            repo_id=upload.repo_id,
            folder_path=str(upload.folder),
            revision=upload.revision,
            commit_message=msg,
        )
    except ColorcliError:
        raise
    except Exception as exc:  # HTTP, auth, network: one line
        raise HubError(f"{where}: push failed: {_hub_reason(exc)}") from exc
    return str(getattr(commit, "commit_url", commit))


def push_model(
    model: str,
    repo: str,
    *,
    dry_run: str | os.PathLike[str] | None = None,
    private: bool = False,
    message: str | None = None,
    license: str = DEFAULT_LICENSE,
    datasets: list[str] | None = None,
) -> tuple[Upload, str | None]:
    """``colorcli push``: stage into ``dry_run`` and stop there, or stage into a temporary folder
    and push. Returns the upload and the commit URL (None for a dry run)."""
    if dry_run is not None:
        return stage(model, repo, dry_run, license=license, datasets=datasets), None
    parse_hf_repo(repo)  # a bad spec fails before the model is read
    with tempfile.TemporaryDirectory(prefix="colorcli-push-") as tmp:
        upload = stage(model, repo, Path(tmp) / "upload", license=license, datasets=datasets)
        url = push(upload, private=private, message=message)
    return upload, url

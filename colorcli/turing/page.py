"""Making the Turing-test page: choosing the photos, recolorizing half of them, encoding them as
JPEG and writing ``OUT/index.html`` (the template ``page.html`` with the images embedded as data
URIs, the truth lightly obfuscated) and ``OUT/key.json`` (the truth in the clear)."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from colorcli import imageio
from colorcli.color.constants import GRAY_THRESHOLD
from colorcli.errors import BadImage, ColorcliError, EmptyDataset, UsageError
from colorcli.events import OnImage
from colorcli.fsutil import atomic_open
from colorcli.turing.answers import ANSWERS_FORMAT, COLORIZED, FORMAT_VERSION, KEY_FORMAT, REAL


@dataclass(frozen=True)
class TuringConfig:
    """What ``colorcli turing DATA_DIR`` was asked to do.

    n: photos on the page (half real, half colorized; the colorized half gets the odd one).
    size: longer side of the displayed images in px (smaller photos are not enlarged).
    quality: JPEG quality of every image. seed: which photos, which half is colorized.
    """

    data_dir: Path
    out_dir: Path
    model: str | None = None
    n: int = 20
    seed: int = 0
    size: int = 256
    quality: int = 90
    device: str | None = None
    temperature: float | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.n < 2:
            raise UsageError(f"--n must be at least 2 (one real, one colorized), got {self.n}")
        if not 16 <= self.size <= 4096:
            raise UsageError(f"--size must be between 16 and 4096, got {self.size}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality must be between 1 and 100, got {self.quality}")
        if self.temperature is not None and self.temperature <= 0:
            raise UsageError(f"--temperature must be > 0, got {self.temperature}")

    @property
    def model_name(self) -> str:
        return "default" if self.model is None else str(self.model)


@dataclass
class PageImage:
    """One image of the page: neutral id, truth, source photo and the JPEG shown."""

    id: str
    truth: str
    source: Path
    jpeg: bytes
    width: int
    height: int


@dataclass
class PageResult:
    """What ``make_page`` wrote and what it skipped."""

    page_id: str
    html_path: Path
    key_path: Path
    images: list[PageImage]
    n_files: int
    n_gray: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def n_real(self) -> int:
        return sum(1 for im in self.images if im.truth == REAL)

    @property
    def n_colorized(self) -> int:
        return sum(1 for im in self.images if im.truth == COLORIZED)


def display_rgb(path: Path, size: int) -> np.ndarray:
    """Read ``path`` as ``(H, W, 3)`` uint8 sRGB whose longer side is at most ``size`` (area
    averaging; aspect ratio kept; smaller photos are left as they are). Raises BadImage."""
    rgb = imageio.read_rgb(path, max_side=2 * size)  # cheap JPEG draft decode, then exact resize
    h, w = rgb.shape[:2]
    if h < 2 or w < 2:
        raise BadImage(f"{path}: image is too small ({w}x{h})")
    scale = size / max(h, w)
    if scale < 1.0:
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, new, interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(np.asarray(rgb) * 255.0), 0, 255).astype(np.uint8)


def is_colourful(rgb: np.ndarray, threshold: float = GRAY_THRESHOLD) -> bool:
    """True when some pixel of ``(H, W, 3)`` uint8 sRGB has |a| or |b| > ``threshold``."""
    from skimage.color import rgb2lab

    ab = rgb2lab(rgb)[..., 1:]
    return bool(np.abs(ab).max() > threshold)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG of ``(H, W, 3)`` uint8 with no metadata (4:2:0, the same for every image)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=quality, subsampling=2)
    return buf.getvalue()


def split_truths(k: int, rng: np.random.Generator) -> list[str]:
    """``k // 2`` REAL and ``k - k // 2`` COLORIZED labels in a seeded random order."""
    labels = [REAL] * (k // 2) + [COLORIZED] * (k - k // 2)
    return [labels[i] for i in rng.permutation(k)]


def page_id_of(model: str, images: Sequence[PageImage]) -> str:
    """16 hex digits of SHA-256 over the model name and every (id, truth, JPEG SHA-256)."""
    content = {
        "model": model,
        "images": [[im.id, im.truth, hashlib.sha256(im.jpeg).hexdigest()] for im in images],
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes of ``text`` (the page's JS computes the same on ASCII)."""
    h = 0x811C9DC5
    for byte in text.encode():
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def obfuscate_truth(truth: str, salt: str, image_id: str) -> int:
    """The bit stored in the page for ``truth``: (1 for colorized) XOR the hash bit."""
    return int(truth == COLORIZED) ^ (fnv1a32(salt + image_id) & 1)


def reveal_truth(bit: int, salt: str, image_id: str) -> str:
    """Inverse of ``obfuscate_truth`` (what the page's JS does)."""
    return COLORIZED if bit ^ (fnv1a32(salt + image_id) & 1) else REAL


def _check_out_dir(config: TuringConfig) -> tuple[Path, Path]:
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    html_path, key_path = out / "index.html", out / "key.json"
    if not config.overwrite:
        for target in (html_path, key_path):
            if target.exists():
                raise UsageError(f"{target}: already exists (use --overwrite to replace it)")
    return html_path, key_path



class ArrayColorizer(Protocol):
    """What the page needs of a colorizer (``colorcli.colorize.Colorizer`` is one)."""

    def colorize_array(self, array: np.ndarray) -> np.ndarray: ...


def make_page(
    config: TuringConfig,
    colorizer: ArrayColorizer | None = None,
    on_image: OnImage | None = None,
) -> PageResult:
    """Choose, colorize and encode the photos; write ``OUT/index.html`` and ``OUT/key.json``.

    ``colorizer`` defaults to ``Colorizer.load(config.model, config.device, legacy="off")``.
    ``on_image(done, total, path)`` is called after each photo read. Unreadable files and
    grayscale photos are skipped (reported in the result) and the next photo of the shuffled
    folder takes their place. Raises UsageError for a bad DATA_DIR or existing outputs (unless
    ``overwrite``), EmptyDataset when fewer than 2 usable photos are found.
    """
    data_dir = Path(config.data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"{data_dir}: not a folder")
    html_path, key_path = _check_out_dir(config)
    files = list(imageio.iter_folder_images(data_dir))
    if not files:
        raise EmptyDataset(f"{data_dir}: no image files")
    if colorizer is None:
        colorizer = _load_colorizer(config)

    rng = np.random.default_rng(config.seed)
    chosen, skipped, n_gray = _choose_photos(files, config, rng, on_image)
    if len(chosen) < 2:
        raise EmptyDataset(
            f"{data_dir}: {len(chosen)} usable colour photo(s) of {len(files)} files "
            f"({n_gray} grayscale, {len(skipped)} unreadable); the test needs at least 2"
        )

    truths = split_truths(len(chosen), rng)
    images = _page_images(chosen, truths, colorizer, config.quality)
    page_id = page_id_of(config.model_name, images)
    salt = secrets.token_hex(8)
    key = _key_json(config, page_id, images)
    page = build_html(page_id, config.model_name, images, salt)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(key_path) as fh:
        fh.write((json.dumps(key, indent=2) + "\n").encode())
    with atomic_open(html_path) as fh:
        fh.write(page.encode())
    return PageResult(page_id, html_path, key_path, images, len(files), n_gray, skipped)


def _load_colorizer(config: TuringConfig) -> ArrayColorizer:
    from colorcli.inference import Colorizer

    settings: dict[str, Any] = {"legacy": "off"}
    if config.temperature is not None:
        settings["temperature"] = config.temperature
    return Colorizer.load(config.model, config.device, **settings)


def _choose_photos(
    files: Sequence[Path], config: TuringConfig, rng: np.random.Generator, on_image: OnImage | None
) -> tuple[list[tuple[Path, np.ndarray]], list[tuple[Path, str]], int]:
    """The first ``config.n`` usable photos of ``files`` in a seeded order, as (path, display
    RGB); the unreadable ones (path, reason); how many were grayscale."""
    chosen: list[tuple[Path, np.ndarray]] = []
    skipped: list[tuple[Path, str]] = []
    n_gray = 0
    order = rng.permutation(len(files))
    for done, i in enumerate(order, 1):
        if len(chosen) == config.n:
            break
        path = files[int(i)]
        try:
            rgb = display_rgb(path, config.size)
        except ColorcliError as exc:
            skipped.append((path, str(exc)))
        else:
            if is_colourful(rgb):
                chosen.append((path, rgb))
            else:
                n_gray += 1
        if on_image is not None:
            on_image(done, len(files), path)
    return chosen, skipped, n_gray


def _page_images(
    chosen: Sequence[tuple[Path, np.ndarray]],
    truths: Sequence[str],
    colorizer: ArrayColorizer,
    quality: int,
) -> list[PageImage]:
    """The page's images, numbered in order: the photo itself or its recolorization, as JPEG."""
    width = max(2, len(str(len(chosen))))
    images: list[PageImage] = []
    for k, ((path, rgb), truth) in enumerate(zip(chosen, truths, strict=True), 1):
        shown = rgb if truth == REAL else imageio.to_uint8(colorizer.colorize_array(rgb))
        images.append(
            PageImage(
                id=f"i{k:0{width}d}",
                truth=truth,
                source=path,
                jpeg=encode_jpeg(shown, quality),
                width=int(shown.shape[1]),
                height=int(shown.shape[0]),
            )
        )
    return images


def _key_json(config: TuringConfig, page_id: str, images: Sequence[PageImage]) -> dict[str, Any]:
    """The content of ``key.json``: the page's truth in the clear, for scoring."""
    data_dir = Path(config.data_dir)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {
        "format": KEY_FORMAT,
        "version": FORMAT_VERSION,
        "page_id": page_id,
        "model": config.model_name,
        "created": created,
        "seed": config.seed,
        "size": config.size,
        "quality": config.quality,
        "data_dir": str(data_dir),
        "n_images": len(images),
        "images": [
            {"image": im.id, "truth": im.truth, "source": _relative(im.source, data_dir)}
            for im in images
        ],
    }


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _script_json(obj: object) -> str:
    """JSON safe to embed in a <script> element (no '</' or '<!--' sequences)."""
    return json.dumps(obj, separators=(",", ":")).replace("<", "\\u003c")


def build_html(page_id: str, model: str, images: Sequence[PageImage], salt: str) -> str:
    """The whole self-contained page (inline CSS and JS, images as data URIs)."""
    config = {
        "format": ANSWERS_FORMAT,
        "version": FORMAT_VERSION,
        "pageId": page_id,
        "model": model,
        "salt": salt,
        "trials": [
            {
                "id": im.id,
                "t": obfuscate_truth(im.truth, salt, im.id),
                "w": im.width,
                "h": im.height,
                "src": "data:image/jpeg;base64," + base64.b64encode(im.jpeg).decode("ascii"),
            }
            for im in images
        ],
    }
    return (
        page_template()
        .replace("@@N@@", str(len(images)))
        .replace("@@PAGE_ID@@", html.escape(page_id))
        .replace("@@CONFIG@@", _script_json(config))
    )


def page_template() -> str:
    """The page (``page.html``, package data) with its @@N@@, @@PAGE_ID@@ and @@CONFIG@@ slots."""
    return resources.files("colorcli.turing").joinpath("page.html").read_text(encoding="utf-8")

"""Perceptual realism: a "real or colorized?" Turing test as a self-contained web page, and the
scoring of the answers participants download from it.

Making a page (``make_page``):

    DATA_DIR (colour photos) -> seeded shuffle -> the first ``n`` usable photos (unreadable files
    and effectively grayscale photos are skipped) -> each resized to ``size`` px on its longer
    side -> half of them (seeded) recolorized from their own L by the model, the other half kept
    -> JPEG (same quality and settings for both) -> ``OUT/index.html`` (one file: images as
    base64 data URIs, inline CSS and JS, no external resource at all) + ``OUT/key.json``.

Each photo appears once, either real or colorized, so a participant never sees the same scene
twice. A colorized image keeps the L channel of its real counterpart exactly (before the final
sRGB gamut clipping and JPEG): only the colour differs. The page shows the images in an order
shuffled anew for each participant, records 'real' or 'colorized' and the response time for
each, and at the end offers the answers as a JSON download (``ANSWERS_FORMAT``).

The truth is in the page, lightly obfuscated (each bit is XORed with a bit of an FNV-1a hash of a
per-page salt and the image id) so that it is not in plain sight; it stops accidental discovery,
not a determined participant reading the source. ``key.json`` holds the truth in the clear for
scoring.

Scoring (``score_answer_files``): answer files are validated one by one (a bad file is reported
and skipped, the others are scored) and pooled. Positive = "real":

    confusion matrix  rows truth (real, colorized) x columns answer (real, colorized)
    TPR = P(answer real | real)       FPR = P(answer real | colorized) = the fooling rate

with 95 % Wilson score intervals over all pooled trials (trials treated as independent) and,
with two or more participants, a participant-level (cluster) percentile bootstrap of the pooled
fooling rate, which accounts for participants differing from one another.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from colorcli import imageio
from colorcli.errors import BadImage, ColorcliError, EmptyDataset, UsageError
from colorcli.fsutil import atomic_open

if TYPE_CHECKING:
    from colorcli.colorize import Colorizer

ANSWERS_FORMAT = "colorcli-turing-answers"
KEY_FORMAT = "colorcli-turing-key"
FORMAT_VERSION = 1
REAL = "real"
COLORIZED = "colorized"
LABELS = (REAL, COLORIZED)
#: Two-sided 95 % normal quantile (scipy.stats.norm.ppf(0.975)).
Z95 = 1.959963984540054
#: Pixels with |a| or |b| above this make a photo colourful enough for the test (as in eval).
GRAY_THRESHOLD = 5.0


class BadAnswerFile(ColorcliError):
    """An answer or key file that is not JSON, has the wrong schema or belongs to another page."""


# ------------------------------------------------------------------------------------------
# Making the page


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


OnImage = Callable[[int, int, Path], None]


def make_page(
    config: TuringConfig,
    colorizer: Colorizer | None = None,
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
        from colorcli.colorize import Colorizer

        settings: dict[str, Any] = {"legacy": "off"}
        if config.temperature is not None:
            settings["temperature"] = config.temperature
        colorizer = Colorizer.load(config.model, config.device, **settings)

    rng = np.random.default_rng(config.seed)
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
    if len(chosen) < 2:
        raise EmptyDataset(
            f"{data_dir}: {len(chosen)} usable colour photo(s) of {len(files)} files "
            f"({n_gray} grayscale, {len(skipped)} unreadable); the test needs at least 2"
        )

    truths = split_truths(len(chosen), rng)
    width = max(2, len(str(len(chosen))))
    images: list[PageImage] = []
    for k, ((path, rgb), truth) in enumerate(zip(chosen, truths, strict=True), 1):
        shown = rgb if truth == REAL else imageio.to_uint8(colorizer.colorize_array(rgb))
        images.append(
            PageImage(
                id=f"i{k:0{width}d}",
                truth=truth,
                source=path,
                jpeg=encode_jpeg(shown, config.quality),
                width=int(shown.shape[1]),
                height=int(shown.shape[0]),
            )
        )
    page_id = page_id_of(config.model_name, images)
    salt = secrets.token_hex(8)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    key = {
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
    page = build_html(page_id, config.model_name, images, salt)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(key_path) as fh:
        fh.write((json.dumps(key, indent=2) + "\n").encode())
    with atomic_open(html_path) as fh:
        fh.write(page.encode())
    return PageResult(page_id, html_path, key_path, images, len(files), n_gray, skipped)


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
        _PAGE.replace("@@N@@", str(len(images)))
        .replace("@@PAGE_ID@@", html.escape(page_id))
        .replace("@@CONFIG@@", _script_json(config))
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<title>Real or colorized?</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #202124; color: #e8eaed;
         display: flex; flex-direction: column; align-items: center; min-height: 100vh; }
  main { max-width: 760px; padding: 1.5rem; text-align: center; }
  h1 { font-weight: 600; font-size: 1.6rem; }
  p { line-height: 1.5; }
  .hidden { display: none !important; }
  #stage { min-height: 60vh; display: flex; align-items: center; justify-content: center; }
  #photo { box-shadow: 0 0 12px #000; }
  .buttons { margin: 1rem 0; display: flex; gap: 1rem; justify-content: center; }
  button { font-size: 1.1rem; padding: 0.6rem 1.6rem; border-radius: 6px; border: 0;
           cursor: pointer; background: #8ab4f8; color: #202124; }
  button:disabled { opacity: 0.4; cursor: default; }
  #answer-colorized { background: #f28b82; }
  input { font-size: 1rem; padding: 0.4rem; width: 16rem; }
  kbd { background: #3c4043; padding: 0 0.3rem; border-radius: 3px; }
  #progress { color: #9aa0a6; }
  small { color: #9aa0a6; }
</style>
</head>
<body>
<main>
  <section id="intro">
    <h1>Real or colorized?</h1>
    <p>You will see @@N@@ photographs, one at a time. Some are genuine colour photographs; the
    others were colorized automatically by a computer from a black-and-white version. For each
    photo, decide whether its colours are <b>real</b> or <b>colorized</b>. Go with your first
    impression; there is no time limit and no going back.</p>
    <p>Keys: <kbd>R</kbd> real, <kbd>C</kbd> colorized.</p>
    <p><label>Your name or a code (optional):<br>
    <input id="participant" type="text" maxlength="64" autocomplete="off"></label></p>
    <div class="buttons"><button id="start" type="button">Start</button></div>
  </section>
  <section id="trial" class="hidden">
    <p id="progress">0 / @@N@@</p>
    <div id="stage"><img id="photo" alt="photograph to judge"></div>
    <p>Are this photo's colours real or colorized?</p>
    <div class="buttons">
      <button id="answer-real" type="button" disabled>Real <small>(R)</small></button>
      <button id="answer-colorized" type="button" disabled>Colorized <small>(C)</small></button>
    </div>
  </section>
  <section id="done" class="hidden">
    <h1>Thank you!</h1>
    <p id="summary"></p>
    <p>Please download your answers and send the file to the person running this test.</p>
    <div class="buttons"><button id="download" type="button">Download answers</button></div>
    <p><small id="filename"></small></p>
  </section>
  <p><small>page @@PAGE_ID@@</small></p>
</main>
<script>
(function () {
  "use strict";
  var CFG = @@CONFIG@@;
  var $ = function (id) { return document.getElementById(id); };
  function fnv1a(s) {
    var h = 0x811c9dc5;
    for (var i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h >>> 0;
  }
  function truthOf(tr) { return ((fnv1a(CFG.salt + tr.id) & 1) ^ tr.t) ? "colorized" : "real"; }
  function randomInt(n) {
    var buf = new Uint32Array(1);
    window.crypto.getRandomValues(buf);
    return buf[0] % n;
  }
  function shuffled(list) {
    var a = list.slice();
    for (var i = a.length - 1; i > 0; i--) {
      var j = randomInt(i + 1), tmp = a[i];
      a[i] = a[j]; a[j] = tmp;
    }
    return a;
  }
  function randomId() {
    var buf = new Uint8Array(4), s = "p-";
    window.crypto.getRandomValues(buf);
    for (var i = 0; i < buf.length; i++) { s += (buf[i] + 256).toString(16).slice(1); }
    return s;
  }
  var order = shuffled(CFG.trials);
  var trials = [], k = 0, shownAt = 0, ready = false, screen = "intro";
  var participant = "", started = "", finished = "", result = null;
  function show(name) {
    ["intro", "trial", "done"].forEach(function (s) {
      $(s).classList.toggle("hidden", s !== name);
    });
    screen = name;
  }
  function setReady(on) {
    ready = on;
    $("answer-real").disabled = !on;
    $("answer-colorized").disabled = !on;
  }
  function next() {
    if (k >= order.length) { finish(); return; }
    var tr = order[k], img = $("photo");
    setReady(false);
    img.onload = function () { shownAt = performance.now(); setReady(true); };
    // shown up to twice its stored size, to fit 92 % of the width and 65 % of the height
    var scale = Math.min(2, 0.92 * window.innerWidth / tr.w, 0.65 * window.innerHeight / tr.h);
    img.style.width = Math.max(1, Math.round(tr.w * scale)) + "px";
    img.style.height = Math.max(1, Math.round(tr.h * scale)) + "px";
    img.setAttribute("data-image", tr.id);
    img.src = tr.src;
    $("progress").textContent = (k + 1) + " / " + order.length;
  }
  function answer(a) {
    if (!ready || screen !== "trial") { return; }
    setReady(false);
    var tr = order[k];
    trials.push({ order: k, image: tr.id, truth: truthOf(tr), answer: a,
                  ms: Math.round(performance.now() - shownAt) });
    k += 1;
    next();
  }
  function start() {
    participant = $("participant").value.trim() || randomId();
    started = new Date().toISOString();
    show("trial");
    next();
  }
  function finish() {
    finished = new Date().toISOString();
    var right = 0, fooled = 0, nCol = 0;
    trials.forEach(function (t) {
      if (t.truth === t.answer) { right += 1; }
      if (t.truth === "colorized") { nCol += 1; if (t.answer === "real") { fooled += 1; } }
    });
    $("summary").textContent = "You judged " + right + " of " + trials.length +
      " photos correctly and took " + fooled + " of the " + nCol +
      " colorized photos for real ones.";
    result = { format: CFG.format, version: CFG.version, page_id: CFG.pageId, model: CFG.model,
               participant: participant, started: started, finished: finished,
               n_images: order.length, trials: trials };
    $("filename").textContent = fileName();
    show("done");
  }
  function fileName() {
    var who = participant.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 40) || "anonymous";
    return "turing-" + CFG.pageId.slice(0, 8) + "-" + who + ".json";
  }
  function download() {
    var blob = new Blob([JSON.stringify(result, null, 2) + "\\n"], { type: "application/json" });
    var url = URL.createObjectURL(blob), a = document.createElement("a");
    a.href = url;
    a.download = fileName();
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 5000);
  }
  $("start").addEventListener("click", start);
  $("answer-real").addEventListener("click", function () { answer("real"); });
  $("answer-colorized").addEventListener("click", function () { answer("colorized"); });
  $("download").addEventListener("click", download);
  window.addEventListener("beforeunload", function (e) {
    if (screen === "trial") { e.preventDefault(); e.returnValue = ""; }  // answers would be lost
  });
  document.addEventListener("keydown", function (e) {
    if (screen === "intro" && e.key === "Enter") { start(); return; }
    if (screen !== "trial" || e.repeat) { return; }
    var key = e.key.toLowerCase();
    if (key === "r") { answer("real"); } else if (key === "c") { answer("colorized"); }
  });
})();
</script>
</body>
</html>
"""


# ------------------------------------------------------------------------------------------
# Answer and key files


@dataclass(frozen=True)
class TrialAnswer:
    image: str
    truth: str
    answer: str
    ms: float


@dataclass
class AnswerFile:
    """One participant's validated answers."""

    path: Path
    page_id: str
    model: str
    participant: str
    trials: list[TrialAnswer]

    @property
    def confusion(self) -> Confusion:
        return Confusion.from_trials(self.trials)


@dataclass
class Key:
    """The truth of a page (``OUT/key.json``)."""

    path: Path
    page_id: str
    model: str
    truths: dict[str, str]


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadAnswerFile(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadAnswerFile(f"{path}: is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise BadAnswerFile(f"{path}: not a JSON file (not UTF-8 text)") from None
    except OSError as exc:
        raise BadAnswerFile(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadAnswerFile(
            f"{path}: not a JSON file ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def _need(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadAnswerFile(f"{path}: field {name!r} is missing or not a {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "string", int: "integer", float: "number", list: "list", dict: "object"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _check_format(obj: Any, path: Path, expected: str, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or obj.get("format") != expected:
        raise BadAnswerFile(f"{path}: not a colorcli Turing {what} file (no format {expected!r})")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadAnswerFile(f"{path}: field 'version' is missing or not a positive integer")
    if version > FORMAT_VERSION:
        raise BadAnswerFile(
            f"{path}: {what} format version {version} is newer than this colorcli "
            f"understands ({FORMAT_VERSION}); upgrade colorcli"
        )
    return obj


def load_key(path: str | Path) -> Key:
    """Read a page's ``key.json`` (or the folder holding it). Raises BadAnswerFile."""
    path = Path(path)
    if path.is_dir():
        path = path / "key.json"
    obj = _check_format(_load_json(path), path, KEY_FORMAT, "key")
    page_id = _need(obj, "page_id", str, path)
    model = _need(obj, "model", str, path)
    truths: dict[str, str] = {}
    for i, entry in enumerate(_need(obj, "images", list, path)):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("image"), str)
            or entry.get("truth") not in LABELS
        ):
            raise BadAnswerFile(f"{path}: images[{i}] needs 'image' and 'truth' (real/colorized)")
        if entry["image"] in truths:
            raise BadAnswerFile(f"{path}: image {entry['image']!r} is listed twice")
        truths[entry["image"]] = entry["truth"]
    if not truths:
        raise BadAnswerFile(f"{path}: no images")
    return Key(path, page_id, model, truths)


def read_answers(path: str | Path, key: Key | None = None) -> AnswerFile:
    """Read and validate one participant's answers (the page's download).

    Checks the format tag and version, the fields and their types, that every trial has a
    known truth and answer ('real'/'colorized') and a response time >= 0, that no image is
    answered twice and that the session is complete (``n_images`` trials). With ``key``: the
    page id must match and each trial's image and truth must be the key's. Raises
    BadAnswerFile naming the file and the first problem.
    """
    path = Path(path)
    obj = _check_format(_load_json(path), path, ANSWERS_FORMAT, "answers")
    page_id = _need(obj, "page_id", str, path)
    model = _need(obj, "model", str, path)
    participant = _need(obj, "participant", str, path)
    n_images = _need(obj, "n_images", int, path)
    raw = _need(obj, "trials", list, path)
    if not raw:
        raise BadAnswerFile(f"{path}: no trials")
    trials: list[TrialAnswer] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise BadAnswerFile(f"{path}: trials[{i}] is not an object")
        image, truth, answer, ms = t.get("image"), t.get("truth"), t.get("answer"), t.get("ms")
        if not isinstance(image, str) or not image:
            raise BadAnswerFile(f"{path}: trials[{i}]: 'image' is missing or not a string")
        for name, value in (("truth", truth), ("answer", answer)):
            if value not in LABELS:
                raise BadAnswerFile(
                    f"{path}: trials[{i}]: {name!r} must be 'real' or 'colorized', got {value!r}"
                )
        if (
            isinstance(ms, bool)
            or not isinstance(ms, (int, float))
            or not math.isfinite(ms)
            or ms < 0
        ):
            raise BadAnswerFile(f"{path}: trials[{i}]: 'ms' must be a number >= 0, got {ms!r}")
        if image in seen:
            raise BadAnswerFile(f"{path}: image {image!r} is answered twice")
        seen.add(image)
        trials.append(TrialAnswer(image, str(truth), str(answer), float(ms)))
    if len(trials) != n_images:
        raise BadAnswerFile(
            f"{path}: incomplete session ({len(trials)} of {n_images} images answered)"
        )
    if key is not None:
        if page_id != key.page_id:
            raise BadAnswerFile(
                f"{path}: answers are for page {page_id}, not for page {key.page_id} of {key.path}"
            )
        for t in trials:
            expected = key.truths.get(t.image)
            if expected is None:
                raise BadAnswerFile(f"{path}: image {t.image!r} is not on the page of {key.path}")
            if expected != t.truth:
                raise BadAnswerFile(
                    f"{path}: image {t.image!r} is recorded as {t.truth}, but {key.path} says "
                    f"{expected}"
                )
        if len(trials) != len(key.truths):
            raise BadAnswerFile(
                f"{path}: incomplete session ({len(trials)} of the page's "
                f"{len(key.truths)} images answered)"
            )
    return AnswerFile(path, page_id, model, participant, trials)


# ------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class Confusion:
    """Counts of truth x answer; positive = "real"."""

    real_real: int = 0  # true positives: real photo, answered real
    real_colorized: int = 0  # false negatives
    colorized_real: int = 0  # false positives: the colorizer fooled the participant
    colorized_colorized: int = 0  # true negatives

    @classmethod
    def from_trials(cls, trials: Sequence[TrialAnswer]) -> Confusion:
        counts = {(a, b): 0 for a in LABELS for b in LABELS}
        for t in trials:
            counts[(t.truth, t.answer)] += 1
        return cls(
            counts[(REAL, REAL)],
            counts[(REAL, COLORIZED)],
            counts[(COLORIZED, REAL)],
            counts[(COLORIZED, COLORIZED)],
        )

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.real_real + other.real_real,
            self.real_colorized + other.real_colorized,
            self.colorized_real + other.colorized_real,
            self.colorized_colorized + other.colorized_colorized,
        )

    @property
    def n_real(self) -> int:
        return self.real_real + self.real_colorized

    @property
    def n_colorized(self) -> int:
        return self.colorized_real + self.colorized_colorized

    @property
    def n(self) -> int:
        return self.n_real + self.n_colorized

    @property
    def tpr(self) -> float:
        """P(answer real | real); NaN without real trials."""
        return self.real_real / self.n_real if self.n_real else math.nan

    @property
    def fpr(self) -> float:
        """P(answer real | colorized), the fooling rate; NaN without colorized trials."""
        return self.colorized_real / self.n_colorized if self.n_colorized else math.nan

    @property
    def accuracy(self) -> float:
        right = self.real_real + self.colorized_colorized
        return right / self.n if self.n else math.nan

    def matrix(self) -> list[list[int]]:
        """``[[real->real, real->colorized], [colorized->real, colorized->colorized]]``."""
        return [
            [self.real_real, self.real_colorized],
            [self.colorized_real, self.colorized_colorized],
        ]


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n`` (95 % with the default ``z``).

    ``(p + z^2 / 2n -+ z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n)``; (NaN, NaN) for
    ``n == 0``. Unlike the normal (Wald) interval it stays inside [0, 1] and behaves at 0 and n.
    """
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends (rounding gives 1 - 1e-16)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def cluster_bootstrap(
    pairs: Sequence[tuple[int, int]], n_boot: int = 10000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of a pooled proportion, resampling whole clusters.

    ``pairs`` holds (successes, trials) per participant; each replicate draws participants with
    replacement and computes sum(successes) / sum(trials) (replicates with no trials are
    dropped). None with fewer than 2 clusters with trials or ``n_boot < 1``.
    """
    arr = np.asarray([p for p in pairs if p[1] > 0], dtype=np.float64).reshape(-1, 2)
    if len(arr) < 2 or n_boot < 1:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(arr), size=(n_boot, len(arr)))
    k = arr[idx, 0].sum(axis=1)
    n = arr[idx, 1].sum(axis=1)
    rates = k[n > 0] / n[n > 0]
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(rates, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


@dataclass
class ScoreReport:
    """Pooled results over every valid answer file."""

    files: list[AnswerFile]
    skipped: list[tuple[Path, str]]
    key: Key | None = None
    n_boot: int = 10000

    @property
    def confusion(self) -> Confusion:
        total = Confusion()
        for f in self.files:
            total = total + f.confusion
        return total

    @property
    def page_ids(self) -> list[str]:
        return sorted({f.page_id for f in self.files})

    @property
    def models(self) -> list[str]:
        return sorted({f.model for f in self.files})

    @property
    def fooling_ci(self) -> tuple[float, float]:
        c = self.confusion
        return wilson_interval(c.colorized_real, c.n_colorized)

    @property
    def tpr_ci(self) -> tuple[float, float]:
        c = self.confusion
        return wilson_interval(c.real_real, c.n_real)

    @property
    def fooling_bootstrap(self) -> tuple[float, float] | None:
        pairs = [(f.confusion.colorized_real, f.confusion.n_colorized) for f in self.files]
        return cluster_bootstrap(pairs, self.n_boot)

    def to_json(self) -> dict[str, Any]:
        c = self.confusion
        boot = self.fooling_bootstrap

        def num(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "page_ids": self.page_ids,
            "models": self.models,
            "key": None if self.key is None else str(self.key.path),
            "participants": len(self.files),
            "trials": c.n,
            "confusion": {
                "rows": "truth (real, colorized)",
                "columns": "answer (real, colorized)",
                "matrix": c.matrix(),
            },
            "tpr": num(c.tpr),
            "tpr_ci95_wilson": [num(x) for x in self.tpr_ci],
            "fpr": num(c.fpr),
            "fooling_rate": num(c.fpr),
            "fooling_rate_ci95_wilson": [num(x) for x in self.fooling_ci],
            "fooling_rate_ci95_participant_bootstrap": None if boot is None else list(boot),
            "bootstrap_replicates": self.n_boot if boot is not None else 0,
            "accuracy": num(c.accuracy),
            "per_participant": [
                {
                    "file": str(f.path),
                    "participant": f.participant,
                    "page_id": f.page_id,
                    "trials": len(f.trials),
                    "tpr": num(f.confusion.tpr),
                    "fooling_rate": num(f.confusion.fpr),
                    "accuracy": num(f.confusion.accuracy),
                    "median_ms": float(np.median([t.ms for t in f.trials])),
                }
                for f in self.files
            ],
            "skipped": [{"file": str(p), "error": msg} for p, msg in self.skipped],
        }


def score_answer_files(
    paths: Sequence[str | Path], key: str | Path | None = None, n_boot: int = 10000
) -> ScoreReport:
    """Validate and pool answer files. A bad file (and an exact duplicate of an earlier one) goes
    to ``report.skipped`` with a one-line reason; the others are scored. Without ``key``, valid
    files from more than one page raise UsageError (pass the key of the page to score). A bad key
    raises BadAnswerFile. The report may hold no valid file: see ``require_valid``."""
    if not paths:
        raise UsageError("give at least one answers file")
    the_key = None if key is None else load_key(key)
    files: list[AnswerFile] = []
    skipped: list[tuple[Path, str]] = []
    seen: dict[tuple[object, ...], Path] = {}
    for p in paths:
        path = Path(p)
        try:
            answers = read_answers(path, the_key)
        except BadAnswerFile as exc:
            skipped.append((path, str(exc)))
            continue
        ident = (answers.page_id, answers.participant, tuple(answers.trials))
        if ident in seen:
            skipped.append((path, f"{path}: the same answers as {seen[ident]} (duplicate)"))
            continue
        seen[ident] = path
        files.append(answers)
    pages = sorted({f.page_id for f in files})
    if len(pages) > 1:
        raise UsageError(
            f"the answer files come from {len(pages)} different pages ({', '.join(pages)}); "
            "score one page at a time or pass --key OUT/key.json to pick one"
        )
    return ScoreReport(files, skipped, the_key, n_boot)


def require_valid(report: ScoreReport) -> None:
    """Raise BadAnswerFile when no answer file was valid."""
    if not report.files:
        n = len(report.skipped)
        raise BadAnswerFile(f"no valid answers file among the {n} given; nothing to score")

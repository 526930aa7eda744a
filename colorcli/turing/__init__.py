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

Modules: ``page`` (making the page; its HTML/JS is the package file ``page.html``), ``answers``
(the answer and key file formats), ``scoring`` (the statistics). Every public name is
re-exported here.
"""

from __future__ import annotations

from colorcli.turing.answers import (
    ANSWERS_FORMAT,
    COLORIZED,
    FORMAT_VERSION,
    KEY_FORMAT,
    LABELS,
    REAL,
    AnswerFile,
    BadAnswerFile,
    Confusion,
    Key,
    TrialAnswer,
    load_key,
    read_answers,
)
from colorcli.turing.page import (
    GRAY_THRESHOLD,
    ArrayColorizer,
    OnImage,
    PageImage,
    PageResult,
    TuringConfig,
    build_html,
    display_rgb,
    encode_jpeg,
    fnv1a32,
    is_colourful,
    make_page,
    obfuscate_truth,
    page_id_of,
    page_template,
    reveal_truth,
    split_truths,
)
from colorcli.turing.scoring import (
    Z95,
    ScoreReport,
    cluster_bootstrap,
    require_valid,
    score_answer_files,
    wilson_interval,
)

__all__ = [
    "ANSWERS_FORMAT",
    "COLORIZED",
    "FORMAT_VERSION",
    "GRAY_THRESHOLD",
    "KEY_FORMAT",
    "LABELS",
    "REAL",
    "Z95",
    "AnswerFile",
    "ArrayColorizer",
    "BadAnswerFile",
    "Confusion",
    "Key",
    "OnImage",
    "PageImage",
    "PageResult",
    "ScoreReport",
    "TrialAnswer",
    "TuringConfig",
    "build_html",
    "cluster_bootstrap",
    "display_rgb",
    "encode_jpeg",
    "fnv1a32",
    "is_colourful",
    "load_key",
    "make_page",
    "obfuscate_truth",
    "page_id_of",
    "page_template",
    "read_answers",
    "require_valid",
    "reveal_truth",
    "score_answer_files",
    "split_truths",
    "wilson_interval",
]

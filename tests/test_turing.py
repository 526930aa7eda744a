"""`colorcli turing`: the scoring math against hand-worked numbers, answer/key validation, the page
builder on a tiny folder with a tiny model, and both CLI forms through Typer's CliRunner."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab
from typer.testing import CliRunner

from colorcli import turing as T
from colorcli.cli import app
from colorcli.errors import EmptyDataset, UsageError

runner = CliRunner()


# ------------------------------------------------------------------------------------------
# helpers


def _photo(seed: int, h: int = 40, w: int = 52) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    c = rng.uniform(0, 255, 3)
    chans = [(c[0] + 3 * x) % 256, (c[1] + 4 * y) % 256, (c[2] + 2 * (x + y)) % 256]
    return np.dstack(chans).astype(np.uint8)


def _folder(root: Path, n: int, extras: bool = False) -> Path:
    d = root / "photos"
    (d / "sub").mkdir(parents=True)
    for i in range(n):
        where = d / "sub" if i % 3 == 2 else d
        Image.fromarray(_photo(i, 36 + i, 50)).save(where / f"p{i}.png")
    if extras:
        (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        Image.fromarray(np.full((30, 40), 120, np.uint8)).save(d / "gray.png")
    return d


def _answers(
    key: dict[str, Any], answer_for: dict[str, str], participant: str = "p1", **changes: Any
) -> dict[str, Any]:
    trials = [
        {
            "order": i,
            "image": e["image"],
            "truth": e["truth"],
            "answer": answer_for[e["image"]],
            "ms": 500 + 10 * i,
        }
        for i, e in enumerate(key["images"])
    ]
    obj = {
        "format": "colorcli-turing-answers",
        "version": 1,
        "page_id": key["page_id"],
        "model": key["model"],
        "participant": participant,
        "started": "2026-11-23T12:00:00Z",
        "finished": "2026-11-23T12:01:00Z",
        "n_images": len(trials),
        "trials": trials,
    }
    obj.update(changes)
    return obj


def _write(path: Path, obj: Any) -> Path:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _fake_key(truths: list[str], page_id: str = "0123456789abcdef") -> dict[str, Any]:
    return {
        "format": "colorcli-turing-key",
        "version": 1,
        "page_id": page_id,
        "model": "m.pt",
        "images": [{"image": f"i{k:02d}", "truth": t} for k, t in enumerate(truths, 1)],
    }


# ------------------------------------------------------------------------------------------
# statistics


def test_wilson_interval_hand_worked() -> None:
    # 7 of 20: p = .35, z^2/n = .192073, centre = .446036/1.192073 = .374170,
    # half = 1.959964 * sqrt(.011375 + .0024009) / 1.192073 = .192977
    lo, hi = T.wilson_interval(7, 20)
    assert lo == pytest.approx(0.181192, abs=2e-6)
    assert hi == pytest.approx(0.567146, abs=2e-6)
    # 0 of 10: the lower end is 0, the upper z^2 / (n + z^2)
    lo, hi = T.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(3.841459 / 13.841459, abs=1e-6)
    lo, hi = T.wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(10 / 13.841459, abs=1e-6)
    # 3 of 6: symmetric about .5
    lo, hi = T.wilson_interval(3, 6)
    assert (lo, hi) == pytest.approx((0.187616, 0.812384), abs=2e-6)
    assert all(math.isnan(x) for x in T.wilson_interval(0, 0))
    with pytest.raises(ValueError):
        T.wilson_interval(5, 4)


@pytest.mark.parametrize(("k", "n"), [(7, 20), (1, 9), (13, 40), (29, 30)])
def test_wilson_ends_are_where_the_score_test_rejects(k: int, n: int) -> None:
    # independent reference: the interval is {p : |k/n - p| <= z sqrt(p (1 - p) / n)}
    def stat(p: float) -> float:
        return abs(k / n - p) - T.Z95 * math.sqrt(p * (1 - p) / n)

    grid = np.linspace(1e-9, 1 - 1e-9, 200001)
    inside = grid[np.array([stat(p) <= 0 for p in grid])]
    lo, hi = T.wilson_interval(k, n)
    assert lo == pytest.approx(inside.min(), abs=1e-5)
    assert hi == pytest.approx(inside.max(), abs=1e-5)


def test_confusion_counts_and_rates() -> None:
    R, C = T.REAL, T.COLORIZED
    pairs = [(R, R), (R, R), (R, C), (C, R), (C, C), (C, C), (C, C)]
    trials = [T.TrialAnswer(f"i{i}", t, a, 100.0) for i, (t, a) in enumerate(pairs)]
    c = T.Confusion.from_trials(trials)
    assert c.matrix() == [[2, 1], [1, 3]]
    assert (c.n_real, c.n_colorized, c.n) == (3, 4, 7)
    assert c.tpr == pytest.approx(2 / 3)
    assert c.fpr == pytest.approx(1 / 4)
    assert c.accuracy == pytest.approx(5 / 7)
    assert (c + c).matrix() == [[4, 2], [2, 6]]
    assert math.isnan(T.Confusion().fpr) and math.isnan(T.Confusion().tpr)


def test_cluster_bootstrap() -> None:
    # two participants A = 1/4 and B = 3/4: a resample is AA, AB, BA or BB (1/4 each), so the
    # 2.5 % and 97.5 % percentiles are AA's 0.25 and BB's 0.75
    assert T.cluster_bootstrap([(1, 4), (3, 4)], n_boot=4000) == pytest.approx((0.25, 0.75))
    # identical participants: no spread
    assert T.cluster_bootstrap([(2, 5)] * 4, n_boot=500) == pytest.approx((0.4, 0.4))
    assert T.cluster_bootstrap([(2, 5)], n_boot=500) is None  # one participant
    assert T.cluster_bootstrap([(2, 5), (0, 0)], n_boot=500) is None  # one with trials
    assert T.cluster_bootstrap([(1, 4), (3, 4)], n_boot=0) is None
    a = T.cluster_bootstrap([(1, 4), (3, 5), (0, 6)], n_boot=300, seed=3)
    assert a == T.cluster_bootstrap([(1, 4), (3, 5), (0, 6)], n_boot=300, seed=3)


def test_truth_obfuscation_round_trip_and_fnv() -> None:
    # FNV-1a 32 reference values (the published test vectors)
    assert T.fnv1a32("") == 0x811C9DC5
    assert T.fnv1a32("a") == 0xE40C292C
    assert T.fnv1a32("foobar") == 0xBF9CF968
    bits = set()
    for i in range(40):
        for truth in T.LABELS:
            bit = T.obfuscate_truth(truth, "5a1t", f"i{i:02d}")
            bits.add((truth, bit))
            assert T.reveal_truth(bit, "5a1t", f"i{i:02d}") == truth
    assert len(bits) == 4  # the stored bit alone does not tell the truth


# ------------------------------------------------------------------------------------------
# answer and key files


def test_read_answers_valid_and_scored_by_hand(tmp_path: Path) -> None:
    R, C = T.REAL, T.COLORIZED
    key = _fake_key([R, R, R, C, C, C])
    key_path = _write(tmp_path / "key.json", key)
    # P1: real -> R R C, colorized -> R C C ; P2: real -> R R R, colorized -> R R C
    a1 = {"i01": R, "i02": R, "i03": C, "i04": R, "i05": C, "i06": C}
    a2 = {"i01": R, "i02": R, "i03": R, "i04": R, "i05": R, "i06": C}
    f1 = _write(tmp_path / "a1.json", _answers(key, a1, "anna"))
    f2 = _write(tmp_path / "a2.json", _answers(key, a2, "ben"))
    for key_arg in (None, key_path, tmp_path):  # no key, the key file, its folder
        report = T.score_answer_files([f1, f2], key_arg, n_boot=2000)
        c = report.confusion
        assert c.matrix() == [[5, 1], [3, 3]]
        assert c.tpr == pytest.approx(5 / 6) and c.fpr == pytest.approx(0.5)
        assert report.fooling_ci == pytest.approx((0.187616, 0.812384), abs=2e-6)
        assert report.tpr_ci == pytest.approx((0.436497, 0.969947), abs=2e-6)
        # participants fooled 1/3 and 2/3: resamples give 1/3, 1/2 or 2/3
        assert report.fooling_bootstrap == pytest.approx((1 / 3, 2 / 3))
        assert report.skipped == []
        js = report.to_json()
        assert js["confusion"]["matrix"] == [[5, 1], [3, 3]]
        assert js["participants"] == 2 and js["trials"] == 12
        assert js["fooling_rate"] == pytest.approx(0.5)
        assert [p["participant"] for p in js["per_participant"]] == ["anna", "ben"]
        assert js["per_participant"][0]["fooling_rate"] == pytest.approx(1 / 3)


BAD_CASES: list[tuple[str, Any, str]] = [
    ("notjson", "{ this is not json", "not a JSON file"),
    ("list", [1, 2], "not a colorcli Turing answers file"),
    ("format", {"format": "something-else"}, "not a colorcli Turing answers file"),
    ("newer", {"version": 99}, "newer than this colorcli"),
    ("nopage", {"page_id": None}, "field 'page_id'"),
    ("notrials", {"trials": []}, "no trials"),
    ("count", {"n_images": 7}, "incomplete session (6 of 7"),
]


@pytest.mark.parametrize(("name", "change", "message"), BAD_CASES)
def test_bad_answer_files_are_named_and_explained(
    tmp_path: Path, name: str, change: Any, message: str
) -> None:
    key = _fake_key([T.REAL, T.REAL, T.REAL, T.COLORIZED, T.COLORIZED, T.COLORIZED])
    answers = {e["image"]: T.REAL for e in key["images"]}
    if isinstance(change, dict) and "format" not in change:
        obj: Any = _answers(key, answers, **change)
    else:
        obj = change if not isinstance(change, dict) else {**_answers(key, answers), **change}
    path = _write(tmp_path / f"{name}.json", obj)
    with pytest.raises(T.BadAnswerFile) as err:
        T.read_answers(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_trials_and_key_mismatches(tmp_path: Path) -> None:
    R, C = T.REAL, T.COLORIZED
    key = _fake_key([R, C, R, C])
    answers = {e["image"]: R for e in key["images"]}
    good = _answers(key, answers)

    def fails(obj: Any, message: str, with_key: dict[str, Any] | None = None) -> None:
        path = _write(tmp_path / "bad.json", obj)
        k = None
        if with_key is not None:
            k = T.load_key(_write(tmp_path / "key.json", with_key))
        with pytest.raises(T.BadAnswerFile, match=re.escape(message)) as err:
            T.read_answers(path, k)
        assert str(path) in str(err.value)

    bad = json.loads(json.dumps(good))
    bad["trials"][1]["answer"] = "maybe"
    fails(bad, "trials[1]: 'answer' must be 'real' or 'colorized'")
    bad = json.loads(json.dumps(good))
    bad["trials"][2]["ms"] = -5
    fails(bad, "trials[2]: 'ms' must be a number >= 0")
    bad = json.loads(json.dumps(good))
    bad["trials"][3]["image"] = bad["trials"][0]["image"]
    fails(bad, "image 'i01' is answered twice")
    fails(good, "answers are for page", _fake_key([R, C, R, C], page_id="ffffffffffffffff"))
    fails(good, "recorded as colorized, but", _fake_key([R, R, R, C]))
    fails(good, "'i04' is not on the page", {**key, "images": key["images"][:3]})
    fails(
        good,
        "of the page's 5 images",
        {**key, "images": [*key["images"], {"image": "i05", "truth": R}]},
    )
    T.read_answers(_write(tmp_path / "ok.json", good), T.load_key(_write(tmp_path / "k.json", key)))
    with pytest.raises(T.BadAnswerFile, match="not a colorcli Turing key file"):
        T.load_key(_write(tmp_path / "k2.json", good))
    with pytest.raises(T.BadAnswerFile, match="no such file"):
        T.load_key(tmp_path / "missing.json")


def test_score_skips_bad_and_duplicate_files_and_refuses_mixed_pages(tmp_path: Path) -> None:
    R, C = T.REAL, T.COLORIZED
    key = _fake_key([R, C])
    good = _write(tmp_path / "good.json", _answers(key, {"i01": R, "i02": R}))
    copy = _write(tmp_path / "copy.json", _answers(key, {"i01": R, "i02": R}))
    broken = _write(tmp_path / "broken.json", "nope")
    report = T.score_answer_files([good, broken, copy])
    assert [f.path for f in report.files] == [good]
    assert [p for p, _ in report.skipped] == [broken, copy]
    assert "duplicate" in report.skipped[1][1]
    assert report.confusion.matrix() == [[1, 0], [1, 0]]
    assert report.fooling_bootstrap is None  # one participant

    other_key = _fake_key([R, C], page_id="fedcba9876543210")
    other = _write(tmp_path / "other.json", _answers(other_key, {"i01": C, "i02": C}))
    with pytest.raises(UsageError, match="2 different pages"):
        T.score_answer_files([good, other])
    key_path = _write(tmp_path / "key.json", key)
    report = T.score_answer_files([good, other], key_path)
    assert [f.path for f in report.files] == [good] and report.skipped[0][0] == other

    report = T.score_answer_files([broken])
    with pytest.raises(T.BadAnswerFile, match="no valid answers file"):
        T.require_valid(report)


# ------------------------------------------------------------------------------------------
# the page


def _page_config(html: str) -> dict[str, Any]:
    m = re.search(r"var CFG = (\{.*?\});\n", html)
    assert m is not None
    return dict(json.loads(m.group(1)))


def _decode(src: str) -> np.ndarray:
    import io

    prefix = "data:image/jpeg;base64,"
    assert src.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src[len(prefix) :]))).convert("RGB"))


def test_make_page_on_a_tiny_folder(tiny_model: Path, tmp_path: Path) -> None:
    data = _folder(tmp_path, 7, extras=True)
    out = tmp_path / "page"
    config = T.TuringConfig(data_dir=data, out_dir=out, model=str(tiny_model), n=20, seed=1)
    result = T.make_page(config)
    assert len(result.images) == 7  # all usable photos; the broken and the gray one left out
    assert (result.n_real, result.n_colorized) == (3, 4)
    assert result.n_gray == 1
    assert [p.name for p, _ in result.skipped] == ["broken.jpg"]
    assert result.n_files == 9

    key = json.loads((out / "key.json").read_text())
    assert key["format"] == "colorcli-turing-key" and key["page_id"] == result.page_id
    assert key["model"] == str(tiny_model) and key["n_images"] == 7
    sources = [e["source"] for e in key["images"]]
    assert len(set(sources)) == 7  # each photo once, real or colorized
    assert {"p2.png", "p5.png"} & {Path(s).name for s in sources}
    assert any(s.startswith("sub/") for s in sources)

    html = (out / "index.html").read_text()
    # self-contained: no external resources at all
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    style = html[html.index("<style>") : html.index("</style>")]
    assert "url(" not in style.lower()
    assert "@import" not in html and "<link" not in html
    assert "<script src" not in html
    assert "Content-Security-Policy" in html
    cfg = _page_config(html)
    assert cfg["pageId"] == result.page_id and len(cfg["trials"]) == 7
    truths = {e["image"]: e["truth"] for e in key["images"]}
    for tr in cfg["trials"]:
        assert set(tr) == {"id", "t", "w", "h", "src"}  # no truth, no file name in the page
        assert T.reveal_truth(tr["t"], cfg["salt"], tr["id"]) == truths[tr["id"]]
    for src in sources:
        assert src not in html

    # real images are the photo itself; colorized ones keep its L and change its colour
    by_id = {tr["id"]: _decode(tr["src"]) for tr in cfg["trials"]}
    for e in key["images"]:
        shown = by_id[e["image"]]
        original = T.display_rgb(data / e["source"], config.size)
        assert shown.shape == original.shape
        lab_shown, lab_orig = rgb2lab(shown), rgb2lab(original)
        assert np.abs(lab_shown[..., 0] - lab_orig[..., 0]).mean() < 2.0
        colour_diff = np.abs(lab_shown[..., 1:] - lab_orig[..., 1:]).mean()
        if e["truth"] == T.REAL:
            assert colour_diff < 3.0  # JPEG only
        else:
            assert colour_diff > 5.0

    # the same seed picks the same photos and halves (the page id hashes the content)
    again = T.make_page(
        T.TuringConfig(data_dir=data, out_dir=tmp_path / "again", model=str(tiny_model), seed=1)
    )
    assert again.page_id == result.page_id
    with pytest.raises(UsageError, match="already exists"):
        T.make_page(config)
    T.make_page(T.TuringConfig(data_dir=data, out_dir=out, model=str(tiny_model), overwrite=True))


def test_make_page_choice_of_n_and_errors(tiny_model: Path, tmp_path: Path) -> None:
    data = _folder(tmp_path, 8)
    picks = []
    for seed in (0, 1):
        r = T.make_page(
            T.TuringConfig(
                data_dir=data, out_dir=tmp_path / f"s{seed}", model=str(tiny_model), n=4, seed=seed
            )
        )
        assert (r.n_real, r.n_colorized) == (2, 2)
        picks.append(sorted(str(im.source) for im in r.images))
    assert picks[0] != picks[1]
    for im in r.images:
        assert im.width <= 256 and im.height <= 256
    small = T.make_page(
        T.TuringConfig(data_dir=data, out_dir=tmp_path / "sz", model=str(tiny_model), size=24)
    )
    assert all(max(im.width, im.height) == 24 for im in small.images)

    with pytest.raises(UsageError, match="not a folder"):
        T.make_page(T.TuringConfig(data_dir=tmp_path / "nope", out_dir=tmp_path / "o"))
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    Image.fromarray(_photo(0)).save(lonely / "only.png")
    with pytest.raises(EmptyDataset, match="at least 2"):
        T.make_page(T.TuringConfig(data_dir=lonely, out_dir=tmp_path / "o", model=str(tiny_model)))
    with pytest.raises(UsageError, match="--n must be at least 2"):
        T.TuringConfig(data_dir=data, out_dir=tmp_path, n=1)


# ------------------------------------------------------------------------------------------
# the CLI


def _run(*args: str | Path) -> tuple[int, str, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def test_cli_help_explains_both_forms() -> None:
    code, out, _ = _run("turing", "--help")
    assert code == 0
    flat = " ".join(out.split())
    assert "colorcli turing DATA_DIR --model M --out DIR" in flat
    assert "colorcli turing score ANSWERS.json" in flat
    assert "make" in out and "score" in out
    code, out, err = _run("turing")  # no arguments: the usage, on stderr (click's plain help)
    assert code == 2 and "Usage" in err


def test_cli_make_and_score(tiny_model: Path, tmp_path: Path) -> None:
    data = _folder(tmp_path, 6, extras=True)
    out = tmp_path / "page"
    # the short form: DATA_DIR first routes to 'make'
    code, stdout, stderr = _run(
        "turing", data, "--model", tiny_model, "--out", out, "--n", "6", "--seed", "3"
    )
    assert code == 0, stdout + stderr
    assert "6 images (3 real, 3 colorized)" in stdout
    assert (out / "index.html").is_file() and (out / "key.json").is_file()
    # the explicit form, refusing to overwrite, then overwriting
    code, _, stderr = _run("turing", "make", data, "-m", tiny_model, "-o", out, "--n", "6")
    assert code == 2 and "already exists" in stderr
    code, stdout, stderr = _run(
        "turing",
        "make",
        data,
        "-m",
        tiny_model,
        "-o",
        out,
        "--n",
        "6",
        "--seed",
        "3",
        "--overwrite",
    )
    assert code == 0, stdout + stderr

    key = json.loads((out / "key.json").read_text())
    answers = {e["image"]: T.REAL for e in key["images"]}  # an 'always real' participant
    f1 = _write(tmp_path / "a1.json", _answers(key, answers, "anna"))
    answers2 = {e["image"]: e["truth"] for e in key["images"]}  # a perfect one
    f2 = _write(tmp_path / "a2.json", _answers(key, answers2, "ben"))

    code, stdout, stderr = _run("turing", "score", f1, f2, "--key", out)
    assert code == 0, stdout + stderr
    stdout = " ".join(stdout.split())
    assert "2 participant(s), 12 trials" in stdout
    assert "fooling rate" in stdout and "50.0%" in stdout  # 3 of 6 colorized called real
    assert "anna" in stdout and "ben" in stdout

    code, stdout, _ = _run("turing", "score", f1, f2, "--json", "--bootstrap", "0")
    assert code == 0
    js = json.loads(stdout)
    assert js["confusion"]["matrix"] == [[6, 0], [3, 3]]
    lo, hi = T.wilson_interval(3, 6)
    assert js["fooling_rate_ci95_wilson"] == pytest.approx([lo, hi])
    assert js["fooling_rate_ci95_participant_bootstrap"] is None

    # a bad file: one line naming it, skipped, the rest scored, exit 1
    bad = _write(tmp_path / "bad.json", "]]")
    code, stdout, stderr = _run("turing", "score", f1, bad, "--key", out / "key.json")
    assert code == 1
    assert f"{bad}: not a JSON file" in " ".join(stderr.split())
    stdout = " ".join(stdout.split())
    assert "1 participant(s), 6 trials" in stdout
    # nothing valid: an error and a non-zero exit
    code, stdout, stderr = _run("turing", "score", bad)
    assert code != 0 and "no valid answers file" in stderr and "confusion" not in stdout
    code, _, stderr = _run("turing", "score", tmp_path / "missing.json")
    assert code != 0 and "no such file" in stderr

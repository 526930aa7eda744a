"""The Turing test page in headless Chromium: a scripted participant answers every image,
downloads the answers, and ``colorcli turing score`` on that file gives the confusion matrix
the script implies (checked against key.json).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them, best effort);
skipped with a reason when either is absent. Selenium drives the browser through the local
chromedriver (``Service(path)``), so selenium-manager never looks for a driver on the network.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from colorcli.cli import app

runner = CliRunner()


def _find(name: str) -> str | None:
    path = Path("/usr/bin") / name
    return str(path) if path.is_file() else shutil.which(name)


CHROMIUM = _find("chromium")
CHROMEDRIVER = _find("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless browser test needs Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver); not found",
)


def _photo(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    c = rng.uniform(0, 255, 3)
    chans = [(c[0] + 3 * x) % 256, (c[1] + 4 * y) % 256, (c[2] + 2 * (x + y)) % 256]
    return np.dstack(chans).astype(np.uint8)


@pytest.fixture(scope="module")
def page(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("turing_browser")
    photos = root / "photos"
    photos.mkdir()
    for i in range(6):
        Image.fromarray(_photo(i, 40 + 2 * i, 52)).save(photos / f"p{i}.png")
    out = root / "page"
    res = runner.invoke(
        app, ["turing", str(photos), "--model", str(tiny_model), "--out", str(out), "--n", "6"]
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        opts.add_argument(flag)
    opts.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(downloads), "eventsEnabled": False},
        )
        yield driver, downloads
    finally:
        driver.quit()


def _wait_for_json(folder: Path, timeout: float = 20.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob("*.json") if p.stat().st_size > 0]
        partial = list(folder.glob("*.crdownload"))
        if done and not partial:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no answers file downloaded into {folder}: {list(folder.iterdir())}")


def test_scripted_participant_downloads_answers_that_score_as_given(
    page: Path, browser: tuple[Any, Path], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver, downloads = browser
    key = json.loads((page / "key.json").read_text())
    truth = {e["image"]: e["truth"] for e in key["images"]}
    n = len(truth)

    driver.get((page / "index.html").resolve().as_uri())
    wait = WebDriverWait(driver, 15)
    assert "Real or colorized?" in driver.title
    assert not driver.find_element(By.ID, "trial").is_displayed()
    driver.find_element(By.ID, "participant").send_keys("robot-1")
    driver.find_element(By.ID, "start").click()

    # The scripted participant: 'real' on even steps, 'colorized' on odd ones, the odd steps
    # answered by keyboard (C) and the even ones with the buttons.
    given: dict[str, str] = {}
    for step in range(n):
        wait.until(ec.text_to_be_present_in_element((By.ID, "progress"), f"{step + 1} / {n}"))
        wait.until(ec.element_to_be_clickable((By.ID, "answer-real")))
        photo = driver.find_element(By.ID, "photo")
        image = photo.get_attribute("data-image")
        assert image in truth and image not in given
        assert photo.get_attribute("src").startswith("data:image/jpeg;base64,")
        assert driver.execute_script("return arguments[0].naturalWidth", photo) > 0
        if step % 2 == 0:
            given[image] = "real"
            driver.find_element(By.ID, "answer-real").click()
        else:
            given[image] = "colorized"
            driver.find_element(By.TAG_NAME, "body").send_keys("c")
    wait.until(ec.visibility_of_element_located((By.ID, "done")))
    summary = driver.find_element(By.ID, "summary").text
    right = sum(given[i] == truth[i] for i in given)
    assert f"You judged {right} of {n} photos correctly" in summary
    driver.find_element(By.ID, "download").click()
    answers_path = _wait_for_json(downloads)
    assert answers_path.name == f"turing-{key['page_id'][:8]}-robot-1.json"

    answers = json.loads(answers_path.read_text())
    assert answers["format"] == "colorcli-turing-answers" and answers["version"] == 1
    assert answers["page_id"] == key["page_id"] and answers["participant"] == "robot-1"
    assert answers["n_images"] == n and len(answers["trials"]) == n
    assert {t["image"]: t["answer"] for t in answers["trials"]} == given
    assert {t["image"]: t["truth"] for t in answers["trials"]} == truth  # de-obfuscated right
    assert [t["order"] for t in answers["trials"]] == list(range(n))
    assert all(isinstance(t["ms"], int) and t["ms"] >= 0 for t in answers["trials"])

    res = runner.invoke(
        app, ["turing", "score", str(answers_path), "--key", str(page / "key.json"), "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    expected = [[0, 0], [0, 0]]
    rows = {"real": 0, "colorized": 1}
    for image, answer in given.items():
        expected[rows[truth[image]]][rows[answer]] += 1
    assert report["confusion"]["matrix"] == expected
    n_col = sum(expected[1])
    assert report["fooling_rate"] == pytest.approx(expected[1][0] / n_col)
    assert report["tpr"] == pytest.approx(expected[0][0] / sum(expected[0]))


def test_page_loads_nothing_from_outside(page: Path, browser: tuple[Any, Path]) -> None:
    driver, _ = browser
    driver.get((page / "index.html").resolve().as_uri())
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
    )
    assert all(not u.startswith(("http:", "https:")) for u in urls), urls
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == [], errors

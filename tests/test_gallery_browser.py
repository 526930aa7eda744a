"""The review gallery in headless Chromium with a scripted reviewer: drag a slider, page with the
arrow keys, mark images as wrong (keyboard and button), read and download the list of wrong
ones, find the marks again after a reload; and a page of thousands of images draws its cards in
chunks.

Needs Debian's ``chromium`` and ``chromium-driver``; skipped with a reason when either is
absent. Selenium drives the local chromedriver (``Service(path)``), so selenium-manager never
looks for a driver on the network.
"""

from __future__ import annotations

import os
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
from colorcli.colorize import Summary, gallery

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
    y, x = np.mgrid[0:h, 0:w]
    return ((x * (3 + seed) + y * 2 + 40 * seed) % 256).astype(np.uint8)


@pytest.fixture(scope="module")
def out(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gallery_browser")
    photos = root / "photos"
    photos.mkdir()
    for i in range(6):
        Image.fromarray(_photo(i, 120 + 20 * (i % 3), 180)).save(photos / f"p{i}.png")
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    out = root / "out"
    res = runner.invoke(
        app,
        ["colorize", str(photos), "-o", str(out), "--model", str(tiny_model), "--device", "cpu",
         "--gallery"],
    )  # fmt: skip
    assert res.exit_code == 1, res.output  # the broken file
    assert (out / "index.html").is_file()
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
        "--window-size=1280,900",
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


def _wait_for_file(folder: Path, timeout: float = 20.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.glob("*.txt") if p.stat().st_size > 0]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"nothing downloaded into {folder}: {list(folder.iterdir())}")


def test_scripted_reviewer(out: Path, browser: tuple[Any, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver, downloads = browser
    driver.get((out / "index.html").resolve().as_uri())
    wait = WebDriverWait(driver, 15)
    assert driver.title == "colorcli gallery: out"
    cards = driver.find_elements(By.CSS_SELECTOR, ".card")
    assert len(cards) == 6
    cell = {k: driver.find_element(By.ID, f"s-{k}").text for k in ("done", "skipped", "failed")}
    assert cell == {"done": "6", "skipped": "0", "failed": "1"}
    failed = driver.find_element(By.ID, "failed-list").text
    assert "broken.png" in failed and "not an image" in failed
    srcs = driver.execute_script("return window.colorcliGallery.data.images.map(i => i.src)")
    assert [Path(s).name for s in srcs] == [f"p{i}.png" for i in range(6)]

    # the thumbnails load (lazily: the first cards are on screen)
    first = cards[0]
    wait.until(
        lambda d: d.execute_script(
            "return [...arguments[0].querySelectorAll('img')].every(i => i.complete && "
            "i.naturalWidth > 0)",
            first,
        )
    )
    # drag the slider of the first image to a quarter of its width
    ba = first.find_element(By.CSS_SELECTOR, ".ba")
    width = ba.size["width"]
    ActionChains(driver).move_to_element_with_offset(ba, 0, 0).click_and_hold().move_by_offset(
        -width // 4, 0
    ).release().perform()
    value = float(first.find_element(By.CSS_SELECTOR, ".slider").get_attribute("value"))
    assert 20 <= value <= 30, value
    clip = driver.execute_script("return arguments[0].querySelector('img.before').style.clipPath",
                                 first)  # fmt: skip
    assert clip.startswith("inset(0px 7") or clip.startswith("inset(0 7"), clip

    body = driver.find_element(By.TAG_NAME, "body")
    # the drag made the first image the current one; the arrows move from there
    assert driver.execute_script("return window.colorcliGallery.current()") == 0
    body.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert driver.execute_script("return window.colorcliGallery.current()") == 3
    body.send_keys(Keys.ARROW_LEFT)
    assert driver.execute_script("return window.colorcliGallery.current()") == 2
    assert "current" in cards[2].get_attribute("class").split()
    body.send_keys("]")  # the slider of the current image, by keyboard
    assert cards[2].find_element(By.CSS_SELECTOR, ".slider").get_attribute("value") == "60"
    body.send_keys("w")  # mark image 2 as wrong
    mark4 = cards[4].find_element(By.CSS_SELECTOR, ".mark")
    mark4.click()
    mark4.click()  # marked, then unmarked again
    cards[5].find_element(By.CSS_SELECTOR, ".mark").click()
    assert "wrong" in cards[2].get_attribute("class").split()
    assert cards[4].find_element(By.CSS_SELECTOR, ".mark").get_attribute("aria-pressed") == "false"
    assert driver.find_element(By.ID, "marked-count").text == "2 of 6 marked as wrong"

    expected = f"{srcs[2]}\n{srcs[5]}\n"
    assert driver.execute_script("return window.colorcliGallery.wrongText()") == expected
    blob_text = driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "window.colorcliGallery.wrongBlob().text().then(done);"
    )
    assert blob_text == expected
    driver.find_element(By.ID, "download").click()
    listed = _wait_for_file(downloads)
    assert listed.name == "colorcli-wrong.txt" and listed.read_text("utf-8") == expected
    assert all(Path(line).is_file() for line in expected.splitlines())  # re-runnable paths

    # the marks survive a reload; the filter shows only the marked ones
    driver.refresh()
    assert driver.find_element(By.ID, "marked-count").text == "2 of 6 marked as wrong"
    driver.find_element(By.ID, "only-marked").click()
    shown = driver.find_elements(By.CSS_SELECTOR, ".card")
    assert [c.get_attribute("data-src") for c in shown] == [srcs[2], srcs[5]]

    shot = tmp_path / "gallery.png"
    driver.find_element(By.ID, "only-marked").click()
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("COLORCLI_GALLERY_SHOT"):  # for a look by eye
        shutil.copy(shot, os.environ["COLORCLI_GALLERY_SHOT"])

    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })"
    )
    assert all(not u.startswith(("http:", "https:")) for u in urls), urls
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == [], errors


def test_thousands_of_images_are_drawn_in_chunks(
    out: Path, browser: tuple[Any, Path], tmp_path: Path
) -> None:
    """3000 entries (the same six thumbnails over and over): the page opens with one chunk of
    cards and few image loads; End jumps to the last image, drawing what lies before it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, _ = browser
    base = gallery.make_thumbnails(_results(out), out)
    items = [base[i % len(base)] for i in range(3000)]
    big = out / "big.html"
    data = gallery.page_data(Summary(done=3000, seconds=60.0), items, out)
    for k, im in enumerate(data["images"]):
        im["before"] += f"?{k}"  # distinct URLs, as 3000 real files have
        im["after"] += f"?{k}"
    page = gallery.build_page(data)
    big.write_text(page, "utf-8")
    t0 = time.monotonic()
    driver.get(big.resolve().as_uri())
    assert time.monotonic() - t0 < 15
    drawn = driver.execute_script("return window.colorcliGallery.rendered()")
    assert 0 < drawn < 300, drawn
    time.sleep(1.0)
    loaded, drawn_imgs = driver.execute_script(
        "var imgs = [...document.querySelectorAll('img')];"
        "return [imgs.filter(i => i.naturalWidth > 0).length, imgs.length];"
    )
    assert 0 < loaded < drawn_imgs, (loaded, drawn_imgs)  # lazy: only those near the screen
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.END)
    assert driver.execute_script("return window.colorcliGallery.current()") == 2999
    assert driver.execute_script("return window.colorcliGallery.rendered()") == 3000
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert errors == [], errors


def _results(out: Path) -> list[Any]:
    from colorcli.colorize import FileResult

    return [
        FileResult(out.parent / "photos" / p.name, p, "done") for p in sorted(out.glob("p*.png"))
    ]

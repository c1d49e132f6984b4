"""The status page (served by the proxy on the Milvus port) in a real headless Chromium.

run.sh starts `quiver standalone` and sets QUIVER_ADDR (host:port), QUIVER_SERVER_BIN (the
`quiver` binary for the CLI), CHROMIUM and CHROMEDRIVER. The tests share the server and
run in file order: the page lists what the CLI made, a dismissed confirm changes nothing,
an accepted one flips the alias, and the charts draw the traffic the CLI then makes (run.sh
samples the history every second: QUIVER_STATUS_SAMPLE_MS).
"""

import io
import json
import os
import pathlib
import shutil
import struct
import subprocess
import tempfile
import time

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ADDR = os.environ["QUIVER_ADDR"]
BIN = os.environ["QUIVER_SERVER_BIN"]
WAIT_S = 20
ROW = '#aliases tr[data-alias="feed"]'
TARGET = pathlib.Path(__file__).resolve().parents[2] / "target"
# Series colours of charts.js (PALETTE): search q/s, search p99, inserts, failed.
BLUE, RED, GREEN = (0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28), (0x2C, 0xA0, 0x2C)


def quiver(*args):
    """Runs a `quiver` client command against the server; its stdout."""
    done = subprocess.run(
        [BIN, *args, "--addr", ADDR], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"quiver {' '.join(args)}: {done.stderr}"
    return done.stdout


def alias_show(name):
    return json.loads(quiver("alias", "show", name, "--json"))


@pytest.fixture(scope="module")
def feed():
    """feed_a and feed_b (dim 8) mirrored under the alias feed, made with the CLI."""
    for name in ("feed_a", "feed_b"):
        quiver("collection", "create", name, "--dim", "8")
    quiver("alias", "mirror", "feed", "--primary", "feed_a", "--standby", "feed_b")
    return "feed"


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="quiver-chromium-")
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1500,1300",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # Dialogs stay open until a test accepts or dismisses them.
    options.set_capability("unhandledPromptBehavior", "ignore")
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, what):
    return WebDriverWait(
        driver,
        WAIT_S,
        poll_frequency=0.1,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    ).until(condition, message=f"waited {WAIT_S} s for {what}")


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def target_is(name):
    return lambda d: text(d, f"{ROW} td.target") == name


def polled_twice(driver):
    """Waits until the page has fetched /api/status twice more (its 'updated' time moved)."""
    for _ in range(2):
        before = text(driver, "#updated")
        wait(driver, lambda d: text(d, "#updated") != before, "the next poll")


def open_page(driver):
    driver.get(f"http://{ADDR}/")
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, ROW)), "the alias row")


def test_page_lists_collections_alias_and_nodes(browser, feed):
    open_page(browser)
    wait(browser, target_is("feed_a"), "feed -> feed_a")
    assert text(browser, f"{ROW} td.primary") == "feed_a"
    assert text(browser, f"{ROW} td.standby") == "feed_b"
    # The standby's lag is measured (nothing written: caught up); divergence
    # is unknown until the check's first pass (every 5 s), then 0.
    assert text(browser, f"{ROW} td.lag") == "0 ms"
    assert text(browser, f"{ROW} td.divergent") in ("unknown", "0")
    wait(browser, lambda d: text(d, f"{ROW} td.divergent") == "0", "divergent rows: 0")
    button = browser.find_element(By.CSS_SELECTOR, f"{ROW} button.flip")
    assert (button.get_attribute("data-from"), button.get_attribute("data-to")) == ("feed_a", "feed_b")
    for name in ("feed_a", "feed_b"):
        row = browser.find_element(By.CSS_SELECTOR, f'#collections tr[data-collection="{name}"]')
        assert row.find_element(By.CSS_SELECTOR, "td.name").text == name
    assert text(browser, '#collections tr[data-collection="feed_a"] td.aliases') == "feed"
    roles = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#nodes tbody tr td:first-child")]
    assert roles == ["coord", "datanode", "querynode", "proxy"]
    health = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "#nodes td.health")}
    assert health == {"healthy"}
    assert text(browser, "#flips tbody") == "no flips yet"


def test_dismissing_the_confirm_changes_nothing(browser, feed):
    open_page(browser)
    wait(browser, target_is("feed_a"), "feed -> feed_a")
    epoch = alias_show(feed)["epoch"]
    browser.find_element(By.CSS_SELECTOR, f"{ROW} button.flip").click()
    alert = wait(browser, EC.alert_is_present(), "the confirm dialog")
    assert alert.text == "Flip alias feed from feed_a to feed_b?"
    alert.dismiss()
    wait(browser, lambda d: "cancelled" in text(d, "#message"), "the cancel message")
    polled_twice(browser)
    assert text(browser, f"{ROW} td.target") == "feed_a"
    shown = alias_show(feed)
    assert (shown["target"], shown["epoch"]) == ("feed_a", epoch)
    assert not any(e["by"] == "status-page" for e in shown["history"])


def test_flip_through_the_page(browser, feed):
    open_page(browser)
    wait(browser, target_is("feed_a"), "feed -> feed_a")
    browser.find_element(By.CSS_SELECTOR, f"{ROW} button.flip").click()
    alert = wait(browser, EC.alert_is_present(), "the confirm dialog")
    assert alert.text == "Flip alias feed from feed_a to feed_b?"
    alert.accept()
    wait(browser, target_is("feed_b"), "feed -> feed_b on the page")
    assert "it now targets feed_b" in text(browser, "#message")
    # The button now offers the way back.
    wait(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, f"{ROW} button.flip").get_attribute("data-to") == "feed_a",
        "a flip button back to feed_a",
    )
    # Recent flips: the page's own flip, newest first.
    wait(browser, lambda d: text(d, "#flips tbody tr:first-child td.by") == "status-page", "the flip in recent flips")
    assert text(browser, "#flips tbody tr:first-child td.from") == "feed_a"
    assert text(browser, "#flips tbody tr:first-child td.to") == "feed_b"

    shown = alias_show(feed)
    assert shown["target"] == "feed_b"
    last = shown["history"][-1]
    assert (last["action"], last["from"], last["to"], last["by"]) == ("flip", "feed_a", "feed_b", "status-page")
    assert last["reason"] == "flipped from the status page"


def write_fvecs(path, rows, dim):
    with open(path, "wb") as f:
        for i in range(rows):
            f.write(struct.pack("<i", dim))
            f.write(struct.pack(f"<{dim}f", *[((i * 7 + j * 3) % 17) / 17.0 for j in range(dim)]))


def colour_pixels(png, colour, tolerance=40):
    """Pixels of `colour` (within `tolerance` per channel) in the upper half of an image:
    a series whose values are all 0 is drawn along the bottom and never gets there."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = image.size
    upper = image.crop((0, 0, w, h // 2))
    return sum(
        1
        for px in getattr(upper, "get_flattened_data", upper.getdata)()
        if all(abs(a - b) <= tolerance for a, b in zip(px, colour))
    )


def chart_nonzero(driver, chart):
    return int(driver.find_element(By.CSS_SELECTOR, f"#{chart}").get_attribute("data-nonzero") or 0)


def test_charts_draw_the_traffic(browser, feed):
    with tempfile.TemporaryDirectory() as tmp:
        vectors = os.path.join(tmp, "v.fvecs")
        write_fvecs(vectors, 200, 8)
        # 20 Insert calls through the mirrored alias, then searches, and one failed search.
        quiver("insert", feed, "--fvecs", vectors, "--batch", "10")
        open_page(browser)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for _ in range(5):
                quiver("search", feed, "--fvecs", vectors, "--limit-queries", "1")
            failed = subprocess.run(
                [BIN, "search", "no_such_collection", "--fvecs", vectors, "--addr", ADDR],
                capture_output=True, text=True, timeout=60,
            )
            assert failed.returncode != 0, "a search of a missing collection must fail"
            if all(chart_nonzero(browser, c) > 0 for c in ("chart-search", "chart-insert", "chart-failed")):
                break
        for chart in ("chart-search", "chart-insert", "chart-failed"):
            assert chart_nonzero(browser, chart) > 0, f"{chart}: no data after 60 s of traffic"

    # Standalone: the querynode's freshness histogram is in this process.
    wait(browser, lambda d: chart_nonzero(d, "chart-freshness") > 0, "insert→visible figures")
    assert text(browser, "#chart-freshness .note") == ""
    # The mirrored alias is charted (its lag is known: a point with a value).
    legend = text(browser, "#chart-lag")
    assert "feed lag (ms)" in legend, legend
    # Load state and memory in the collections table.
    assert text(browser, '#collections tr[data-collection="feed_a"] td.load') == "loaded"
    assert text(browser, '#collections tr[data-collection="feed_a"] td.memory').endswith(" MiB")

    # Let a poll draw the last data, then look at the pixels.
    polled_twice(browser)
    TARGET.mkdir(exist_ok=True)
    shot = browser.get_screenshot_as_png()
    (TARGET / "status-page-charts.png").write_bytes(shot)
    canvas = lambda chart: browser.find_element(By.CSS_SELECTOR, f"#{chart} canvas").screenshot_as_png
    for chart, colour, what in (
        ("chart-search", BLUE, "search q/s"),
        ("chart-search", RED, "search p99"),
        ("chart-insert", GREEN, "insert calls/s"),
        ("chart-failed", RED, "failed calls/s"),
    ):
        png = canvas(chart)
        (TARGET / f"status-page-{chart}.png").write_bytes(png)
        n = colour_pixels(png, colour)
        assert n >= 10, f"{what}: {n} pixels of its colour above the chart's middle (see target/status-page-{chart}.png)"
    # The screenshot of the whole page has them too.
    assert colour_pixels(shot, BLUE) >= 10

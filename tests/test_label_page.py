"""The labelling page as a person uses it: `asal label` in a process of its own, the page in Debian's headless
Chromium (driven by its chromedriver through Selenium), answered with the keyboard; the server killed with
SIGKILL mid-batch and mid-training, restarted, and the page checked to show the same state.

Needs the `chromium` and `chromium-driver` packages (.ci/run installs them with apt-get where missing); skipped
without them unless ASAL_REQUIRE_BROWSER is set, as CI sets it. ASAL_SCREENSHOTS=DIR keeps the page's
screenshots there.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asal_fixtures import StrategyWorld

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("ASAL_REQUIRE_BROWSER"):
        raise RuntimeError("ASAL_REQUIRE_BROWSER is set, but chromium or chromedriver is missing "
                           "(apt-get install chromium chromium-driver)")
    pytest.skip("needs Debian's chromium and chromium-driver", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: The session: 10 to start, 10 a batch, 30 labels; a linear classifier on the world's 8x8 images.
EXPERIMENT = {
    "data": {"source": "npz", "path": "raw/multi.npz", "test_fraction": 0.25},
    "classifier": {"model": "linear", "optimizer": "lbfgs", "lr": 1.0, "steps": 20},
    "al": {"initial": 10, "new": 10, "budget": 30},
    "matching": {"index": "flat", "pca_dims": 4},
    "gan": {"latent_dim": 8},
    "strategies": ["asal-raw"],
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The world's files where the workflow keeps them, and a config naming its experiment ``multi``."""
    root = tmp_path_factory.mktemp("label-page")
    StrategyWorld(root)
    (root / "config.yaml").write_text(yaml.safe_dump({"experiments": {"multi": EXPERIMENT}}))
    return root


class Server:
    """`asal label` in a process of its own, on a free port. Every one started is killed at the test's end,
    passed or failed (:func:`kill_servers_after`)."""

    started: list = []

    def __init__(self, workdir: Path):
        self.log = open(workdir / "server.log", "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "asal.cli", "label", "--config", "config.yaml", "--experiment", "multi",
             "--port", "0", "--device", "cpu", "--threads", "1"],
            cwd=workdir, stdout=subprocess.PIPE, stderr=self.log, text=True)
        Server.started.append(self)
        line = self.process.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            self.kill()
            raise AssertionError(f"no address from asal label: {line!r}; log: {(workdir / 'server.log').read_text()}")
        self.url = match.group(1)

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed that was not flushed already."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.log.close()


@pytest.fixture
def kill_servers_after():
    yield
    for server in Server.started:
        server.kill()
    Server.started.clear()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
                "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    where = os.environ.get("ASAL_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(where) / f"{name}.png"))


def text(driver, element_id: str) -> str:
    """What the element shows (read in one script: the page redraws between two WebDriver calls)."""
    return driver.execute_script("return document.getElementById(arguments[0]).innerText", element_id)


def wait_text(driver, element_id: str, pattern: str, timeout: float = 60) -> str:
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: re.search(pattern, text(d, element_id)))
    return text(driver, element_id)


def grid(driver) -> list[str]:
    """Each grid cell's tag: the class given, 'skip', or '' while unanswered."""
    return driver.execute_script("return [...document.querySelectorAll('#grid .item')].map(e => e.innerText.trim())")


def press(driver, key: str) -> None:
    """A key, as a person presses it; then wait until the page has sent it and redrawn."""
    before = grid(driver)
    driver.find_element(By.TAG_NAME, "body").send_keys(key)
    WebDriverWait(driver, 10, poll_frequency=0.05).until(
        lambda d: grid(d) != before or d.execute_script("return document.getElementById('labelling').hidden"))


def journal_lines(workdir: Path) -> int:
    return len((workdir / "results/multi/labelling/asal-raw/seed0_journal.jsonl").read_text().splitlines())


@pytest.mark.usefixtures("kill_servers_after")
def test_a_person_labels_with_the_keyboard_and_a_kill_loses_nothing(workdir, browser):
    server = Server(workdir)
    browser.get(server.url)
    wait_text(browser, "status", "labelling")
    assert wait_text(browser, "batch-number", r"0 · 0 of 10 answered")
    assert "0 / 30 labelled" in text(browser, "labelled")
    assert "No suggestion yet" in text(browser, "suggestion")
    shot(browser, "1-first-batch")

    for key in ["1", "2", "3", "s", "2"]:  # three classes, a skip, then ...
        press(browser, key)
    press(browser, "u")  # ... the last taken back
    assert grid(browser)[:5] == ["0", "1", "2", "skip", ""]
    assert "3 / 30 labelled (1 skipped)" in text(browser, "labelled")
    assert journal_lines(workdir) == 6  # five answers and an undo, each on disk before the page moved on

    server.kill()  # mid-batch
    server = Server(workdir)
    browser.get(server.url)
    wait_text(browser, "batch-number", r"0 · 4 of 10 answered", timeout=60)
    assert grid(browser)[:5] == ["0", "1", "2", "skip", ""]
    assert "3 / 30 labelled (1 skipped)" in text(browser, "labelled")

    for key in ["1", "2", "3", "1", "2", "3"]:
        press(browser, key)
    wait_text(browser, "status", "labelling|training")
    wait_text(browser, "batch-number", r"^1 · 0 of 10 answered", timeout=60)  # the next batch, without a reload
    assert browser.find_element(By.ID, "synthetic-figure").is_displayed()  # ASAL: why this sample
    suggested = browser.find_element(By.CSS_SELECTOR, "#classes button.suggested").get_attribute("data-label")
    assert f'suggests "{suggested}"' in text(browser, "suggestion")
    wait_text(browser, "accuracy", r"test accuracy \d+\.\d%", timeout=30)  # scored while the batch is answered
    shot(browser, "2-asal-batch")
    press(browser, Keys.ENTER)  # accept the suggestion
    assert grid(browser)[0] == suggested
    for key in ["1"] * 9:
        browser.find_element(By.TAG_NAME, "body").send_keys(key)
    wait_text(browser, "status", "training|labelling")
    server.kill()  # mid-training (or just after it), the batch answered
    answered = journal_lines(workdir)

    server = Server(workdir)
    browser.get(server.url)
    wait_text(browser, "batch-number", r"^2 · 0 of 10 answered", timeout=90)
    assert journal_lines(workdir) == answered
    assert "19 / 30 labelled (1 skipped)" in text(browser, "labelled")
    for _ in range(10):
        press(browser, "2")
    wait_text(browser, "batch-number", r"^3 · 0 of 1 answered", timeout=90)  # what the budget leaves
    press(browser, "3")
    wait_text(browser, "status", "done", timeout=90)
    assert "30 labels" in text(browser, "done-detail")
    shot(browser, "3-done")
    server.kill()
    rows = (workdir / "results/multi/labelling/asal-raw/seed0.csv").read_text().splitlines()
    assert rows[0].startswith("strategy,") and len(rows) == 1 + 4  # cycles 0-2 select, cycle 3 trains only

"""Screenshots of the labelling page on a real experiment, as a person sees it (docs/labelling/*.png).

Starts ``asal label`` on ``--experiment`` (its pre-processing done: ``make run`` or ``snakemake
preprocess_EXP``), opens the page in Debian's headless Chromium, and takes: the first batch, with a few items
answered by keyboard; the page while the loop trains and selects; an ASAL batch with its synthetic images and
the classifier's suggestions; and the end of the session. Batches in between are answered through the JSON
API with the dataset's labels. The session's files go to ``results/EXP/labelling/`` and are removed first.

    python benchmarks/label_screenshots.py --experiment mnist10 --strategy asal-raw --out docs/labelling
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from asal.data import read_split
from asal.labelling import SESSION


def call(url: str, payload: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=None if payload is None else json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def wait_state(url: str, status: str, cycle: int | None = None, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = call(url + "api/state")
        if state["status"] == status and (cycle is None or state["cycle"] == cycle):
            return state
        time.sleep(0.05)
    raise SystemExit(f"no {status} (cycle {cycle}) within {timeout} s")


def answer_rest(url: str, labels, classes) -> None:
    for item in call(url + "api/batch")["items"]:
        if not item["answered"]:
            call(url + "api/label", {"pool_index": item["pool_index"], "label": classes[int(labels[item["pool_index"]])]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--experiment", default="mnist10")
    parser.add_argument("--strategy", default="asal-raw")
    parser.add_argument("--out", default="docs/labelling")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(Path(SESSION.format(exp=args.experiment, strategy=args.strategy, seed=0)).parent, ignore_errors=True)
    labels = read_split(f"data/{args.experiment}/pool.h5").labels
    server = subprocess.Popen([sys.executable, "-m", "asal.cli", "label", "--config", args.config, "--experiment",
                               args.experiment, "--strategy", args.strategy, "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = re.search(r"(http://\S+)", server.stdout.readline()).group(1)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--window-size=1280,1000", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(url)
        state = wait_state(url, "labelling", 0)
        classes = state["classes"]
        body = driver.find_element(By.TAG_NAME, "body")
        for k in range(5):  # a person's first answers, by keyboard
            pool_index = call(url + "api/batch")["items"][k]["pool_index"]
            body.send_keys(str((int(labels[pool_index]) + 1) % 10))  # class i is key i+1, the tenth 0
            WebDriverWait(driver, 10).until(lambda d, n=k + 1: len(d.find_elements(By.CSS_SELECTOR, "#grid .tag")) == n)
        driver.save_screenshot(str(out / "first-batch.png"))
        answer_rest(url, labels, classes)
        time.sleep(1.0)
        driver.save_screenshot(str(out / "training.png"))
        wait_state(url, "labelling", 1)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "synthetic-figure").is_displayed())
        for _ in range(3):  # accept three suggestions with Enter
            before = len(driver.find_elements(By.CSS_SELECTOR, "#grid .tag"))
            body.send_keys("\n")
            WebDriverWait(driver, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#grid .tag")) > before)
        time.sleep(0.5)
        driver.save_screenshot(str(out / "asal-batch.png"))
        while (state := call(url + "api/state"))["status"] != "done":
            if state["status"] == "labelling":
                answer_rest(url, labels, classes)
            time.sleep(0.1)
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "done").is_displayed())
        driver.save_screenshot(str(out / "done.png"))
        print(json.dumps(call(url + "api/state"), indent=1))
    finally:
        driver.quit()
        server.kill()


if __name__ == "__main__":
    main()

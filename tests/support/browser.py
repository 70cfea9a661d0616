"""Headless Chromium from the distribution's packages (chromium, chromium-driver), driven by
Selenium; screenshots go to tests/artifacts/inspector/ (git-ignored)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "inspector"
PHONE = (390, 844)
WIDE = (1440, 960)


def find_chromium() -> tuple[str, str] | None:
    """(browser, driver) paths, or None when either is missing."""
    browser = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
    )
    return (browser, driver) if browser and driver else None


def start_chromium(downloads: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    assert found is not None
    browser, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--hide-scrollbars", "--force-device-scale-factor=1",
                 f"--window-size={WIDE[0]},{WIDE[1]}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
    })
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {
        "behavior": "allow", "downloadPath": str(downloads)})
    return chrome


def screenshot(chrome, name: str, size: tuple[int, int] = WIDE) -> Path:  # type: ignore[no-untyped-def]
    """The whole page at this viewport width, saved as ARTIFACTS/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chrome.set_window_size(*size)
    height = chrome.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    chrome.set_window_size(size[0], min(max(size[1], int(height) + 20), 4000))
    path = ARTIFACTS / f"{name}.png"
    chrome.save_screenshot(str(path))
    chrome.set_window_size(*size)
    return path

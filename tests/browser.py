"""Headless Chromium driven by Selenium, for the tests that look at a page in a real browser (the VS Code
extension in code-server, the gateway's /dashboard). Debian's chromium + chromium-driver and selenium from PyPI;
:func:`chromium_missing` says what is not there, for a skip reason."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

__all__ = ["chromium_missing", "start_chromium"]


def chromium_missing() -> list[str]:
    """What the browser tests need and this machine lacks (empty: all there)."""
    missing = []
    if not shutil.which("chromium"):
        missing.append("chromium (apt-get install chromium)")
    if not shutil.which("chromedriver"):
        missing.append("chromedriver (apt-get install chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install selenium)")
    return missing


def start_chromium(profile: Path, window: str = "1400,900") -> Any:
    """A headless Chromium with its own profile at ``profile`` (its chromedriver log beside it), nothing fetched in
    the background; ``window`` is WIDTH,HEIGHT. The caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={window}",
    ):
        options.add_argument(arg)
    service = Service(executable_path=shutil.which("chromedriver"), log_output=str(profile.parent / "chromedriver.log"))
    return webdriver.Chrome(options=options, service=service)

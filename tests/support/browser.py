"""A real Chromium (Debian's chromium + chromium-driver) driven by Selenium, and a
Flask app served on a loopback port for it to open."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from werkzeug.serving import make_server

from ticketmon.servers.process import free_port


@contextmanager
def chromium(width: int = 1280, height: int = 900,
             extra_args: tuple[str, ...] = ()) -> Iterator[webdriver.Chrome]:
    """Headless Chromium; its console messages are kept for `get_log('browser')`."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        pytest.fail("chromium and chromedriver are needed: `./dev test` installs them (apt)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", *extra_args):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(driver))
    try:
        yield browser
    finally:
        browser.quit()


@contextmanager
def served(app) -> Iterator[str]:
    """The app on a free loopback port (threaded werkzeug); yields its base URL."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)

"""Debian's chromium driven by Playwright (sync API), for the browser tests and the screenshots: no
`playwright install`, the system's browser (`.ci/run` installs the `chromium` package)."""

from __future__ import annotations

import os
import shutil

VIEWPORT = {"width": 1280, "height": 900}


class NoChromium(RuntimeError):
    pass


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise NoChromium(
            "chromium is not installed: the browser tests drive Debian's chromium package through Playwright; "
            "install it with `apt-get install chromium` (.ci/run does so in CI)"
        )
    return path


def launch(playwright):
    """Headless chromium; --no-sandbox only when running as root (the sandbox refuses root)."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"] if root else [])


def new_page(browser):
    """A fresh context (no cookies) with the screenshots' size and a Japanese locale."""
    context = browser.new_context(viewport=VIEWPORT, locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(15_000)
    return context.new_page()

"""Shared set-up of the browser tests (test_browser.py, test_site.py): Debian's Chromium driven by Playwright.

Never a browser download: the Debian package at /usr/bin/chromium (``make test`` installs it as root). Without
it, or without Playwright, a browser test skips, saying why; under CI=true it fails instead.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def unavailable(reason: str, what: str = "the browser test"):
    """Skip (fail under CI=true, which must run every browser test) with the reason."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run {what}, but {reason}")
    pytest.skip(reason)


def require_browser(what: str = "the browser test") -> None:
    """Skip (or fail in CI) unless Debian's Chromium and Playwright are both here."""
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; `make test` does it as root)",
                    what)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the Python package playwright is not installed (`make test` installs it)", what)

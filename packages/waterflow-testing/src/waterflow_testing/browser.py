"""A real headless Chromium for browser tests of the web console (Playwright for Python).

``chromium_browser`` (module fixture) launches the machine's own Chromium (Debian's
``chromium`` package) through Playwright's bundled driver; nothing is downloaded (Playwright's
``playwright install`` is never used). ``browser_page`` (test fixture) is a fresh page in its own
browser context (no cookies or storage shared between tests), closed after the test. Console
messages and page errors of the page are kept on ``page.waterflow_console`` (a list of strings) so
a failing test can show them.

The browser is found as ``$WATERFLOW_CHROMIUM`` if set, else the first of ``chromium``,
``chromium-browser``, ``google-chrome`` on ``PATH``. Where it or the ``playwright`` package is
missing the tests that need it are skipped with the reason, except in CI: when the ``CI``
environment variable is set to anything non-empty they fail instead, so CI never goes green by
skipping its browser tests (as :mod:`waterflow_testing.docker` does for Docker).

Standard library only at import time, so loading the pytest plugin stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

__all__ = [
    "CHROMIUM_NAMES",
    "browser_page",
    "browser_problem",
    "chromium_browser",
    "chromium_launch_args",
    "chromium_path",
]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PAGE_TIMEOUT_MS = 30_000  # a liveness bound for each wait on the page, not a speed expectation

# playwright.sync_api's Browser and Page: an optional dependency (the hatch test environment has it,
# the lint environment does not), so neither imported for typing nor imported before it is needed.
Browser = Any
Page = Any


def chromium_path() -> str | None:
    """The Chromium executable to drive: ``$WATERFLOW_CHROMIUM`` or the first found on ``PATH``."""
    configured = os.environ.get("WATERFLOW_CHROMIUM")
    if configured:
        return shutil.which(configured)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_problem() -> str | None:
    """Why browser tests cannot run here, or ``None`` when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "no browser driver: the `playwright` Python package is not installed"
    if chromium_path() is None:
        wanted = os.environ.get("WATERFLOW_CHROMIUM") or " or ".join(CHROMIUM_NAMES)
        return f"no Chromium: {wanted} not found on PATH (apt-get install chromium)"
    return None


def _skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: browser tests never skip in CI)", pytrace=False)
    pytest.skip(reason)


def chromium_launch_args() -> list[str]:
    """Flags for launching Chromium here: no sandbox as root (CI), no reliance on a small /dev/shm."""
    args = ["--disable-dev-shm-usage"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Browser]:
    """The machine's Chromium, headless, driven by Playwright; closed after the module's tests.

    Not session-wide: Playwright's sync API keeps its event loop marked as running in this thread
    while it lives, so any later asyncio test in the same process would fail with "Runner.run()
    cannot be called from a running event loop". Closing it with the module ends that before the
    next module's tests run.
    """
    problem = browser_problem()
    if problem:
        _skip_or_fail(problem)
    sync_api = importlib.import_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=chromium_launch_args()
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium_browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context (storage not shared between tests), closed after the test."""
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    messages: list[str] = []

    def on_console(message: Any) -> None:
        messages.append(f"console.{message.type}: {message.text}")

    def on_error(error: Any) -> None:
        messages.append(f"pageerror: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    page.waterflow_console = messages
    try:
        yield page
    finally:
        context.close()

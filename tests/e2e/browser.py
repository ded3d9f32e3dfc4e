"""A real browser for the console's tests: Debian's headless Chromium, driven by playwright's
own driver (no browser download: `executable_path` names Debian's binary).

Missing parts fail the tests, saying how to install them. Screenshots go to
tests/e2e/screenshots/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
# as root, in a container without a GPU or a network beyond loopback
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 30_000  # generous: two cores shared with other test runs


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module (the sync API must not outlive the module: other modules
    run asyncio loops of their own)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash tests/e2e/install-clients.sh` (Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: run `bash deploy/install.sh test` (pyproject's test extras)")
    # playwright gives each launch a fresh profile directory (--user-data-dir) of its own
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=120_000
        )
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Browser, base_url: str, *, viewport: dict[str, int] = DESKTOP) -> Page:
    """A page in a fresh context (its own cookies), collecting the page's script errors."""
    context = browser.new_context(viewport=viewport, base_url=base_url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.script_errors = errors  # type: ignore[attr-defined]
    return page


# what a page must do for people (labels, contrast, focus ring, phone width): see the file
ACCESSIBILITY_PROBLEMS = (Path(__file__).parent / "accessibility.js").read_text()


def screenshot(page: Page, name: str) -> Path:
    """A picture of the page for a person to look at; and the page checked for what it must do
    for people (accessibility.js): every page worth a picture is worth the check."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    problems = page.evaluate(ACCESSIBILITY_PROBLEMS)
    assert problems == [], f"{name}: {problems}"
    return path

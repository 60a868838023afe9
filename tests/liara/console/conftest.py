"""Fixtures of the console's browser tests: one Chromium per test process (each test has a
browser context of its own, so nothing of one test's pages reaches another's), a page of its own
per test (which fails the test on any error its script raised), and an HTTP client of the
module's service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.helpers.console import CHROMIUM, CHROMIUM_FLAGS


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, liara_service) -> AsyncIterator[Page]:
    """A page of its own browser context; the test fails on any error the page's script raised."""
    context = await browser.new_context(base_url=liara_service.url, viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert not errors, errors


@pytest.fixture
async def http(liara_service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=90) as client:
        yield client

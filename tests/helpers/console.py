"""The console in Chromium, as its browser tests drive it: the browser, and how a test finds its
way on a page (signing in, a phase's card, an inbox item) and keeps a screenshot.
"""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.helpers import REPO_ROOT
from tests.helpers.service import Tokens

CHROMIUM = Path("/usr/bin/chromium")
#: As root, in a machine whose network is closed: no sandbox, no GPU, nothing fetched in the background.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "test-output" / "screenshots"
PHONE = {"width": 390, "height": 844}
#: What a crisis's page says once the crisis has ended and each of its events is drawn.
ENDED = "The crisis has ended: its events are all shown."


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, tokens: Tokens, name: str) -> None:
    await page.goto("/")
    await page.get_by_label("API token").fill(tokens.by_name[name])
    await page.get_by_label("API token").press("Enter")
    await expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API token")).to_be_visible()


def card(page: Page, phase_id: str):
    """A phase's card on a crisis's page."""
    return page.locator(f'.board [data-phase="{phase_id}"]')


def inbox_item(page: Page, workflow_id: str, phase_id: str | None = None):
    item = page.locator(".approval", has=page.get_by_role("link", name=workflow_id))
    return item.filter(has=page.get_by_role("heading", name=phase_id)) if phase_id else item


def crisis_rows(page: Page):
    return page.locator("table.crises tbody tr")


async def fits_the_width(page: Page) -> bool:
    """Nothing on the page is wider than the window (no sideways scrolling)."""
    return await page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")

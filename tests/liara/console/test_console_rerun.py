"""The console reruns a crisis that has ended from a phase chosen on its page: it asks first, then
shows the rerun, whose phases before the one chosen kept their outputs. A viewer is not offered
it, nor is anyone while the crisis runs.

Chromium (Debian's) driven by Playwright, against ``liara serve``, a worker and a dev server.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.helpers.console import (
    ENDED,
    card,
    screenshot,
    sign_in,
    sign_out,
)
from tests.helpers.service import crisis_body, phase, start

pytestmark = pytest.mark.integration

WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


async def test_a_crisis_that_has_ended_is_rerun_from_a_phase_chosen_on_its_page(page, service_tokens, http):
    operator = service_tokens.headers("operator-1")
    body = crisis_body(phase("recon-1", params={"output": {"scouts": 3}}), phase("scan-2"), phase("report-3"))
    original = await start(http, operator, body)
    await http.get(f"/v1/crises/{original}/result", params={"wait": 60}, headers=operator)

    await sign_in(page, service_tokens, "viewer-1")
    await page.goto(f"/#/crises/{original}")
    await expect(page.get_by_text(ENDED)).to_be_visible()
    await expect(page.get_by_role("button", name="Rerun")).to_have_count(0)
    await sign_out(page)

    await sign_in(page, service_tokens, "operator-1")
    await page.goto(f"/#/crises/{original}")
    await expect(page.get_by_text(ENDED)).to_be_visible()
    await page.get_by_label("Rerun from phase").select_option("scan-2")
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_role("button", name="Rerun").click()
    await expect(page).to_have_url(re.compile(f"#/crises/{original}$"))  # nothing asked, nothing done
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Rerun").click()

    said = re.compile(rf"^Started crisis-.*, a rerun of {original} from scan-2 \(reused: recon-1\)\.$")
    await expect(page.get_by_role("status")).to_have_text(said)
    await expect(page).not_to_have_url(re.compile(f"#/crises/{original}$"))
    await expect(card(page, "report-3")).to_contain_text("completed")
    await expect(card(page, "recon-1")).to_contain_text('"scouts": 3')
    await expect(card(page, "recon-1")).to_contain_text(re.compile(rf"Reused from\s*{original}"))
    await expect(card(page, "scan-2")).not_to_contain_text("Reused from")
    await screenshot(page, "crisis-rerun")

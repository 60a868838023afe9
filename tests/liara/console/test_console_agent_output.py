"""The console shows a language-model agent's text live: on the card of its running phase, the
text appears as the model streams it (read from the crisis's event stream, without a reload),
and once the phase has ended its card says what its model calls spent.

Chromium (Debian's) driven by Playwright, against ``liara serve`` and a worker whose
configuration has an ``llm`` executor answered by the scripted model server; the agent's second
model call hangs a while, holding the phase open after its first answer streamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from scripts.scripted_model_server import Answer, Hang, ScriptedModelServer, ToolCalls
from tests.helpers.console import card, screenshot, sign_in
from tests.helpers.model_agents import KEY, KEY_ENV, agent_config
from tests.helpers.service import Tokens, crisis_body, start

pytestmark = pytest.mark.integration

FIRST_ANSWER = "Looking web-1 up in the inventory first: its owner\nsays who to call."
#: How long the second model call hangs: the phase runs that long after the first answer.
HELD_SECONDS = 12
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY, chunk_delay=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def service_env(service_env: dict[str, str], service_dir: Path, model: ScriptedModelServer) -> dict[str, str]:
    """The service's worker has the analyst (an ``llm`` executor on the scripted model) and its key."""
    path = service_dir / "liara.toml"
    path.write_text(agent_config(model.base_url))
    return {**service_env, "LIARA_CONFIG": str(path), KEY_ENV: KEY}


async def test_a_running_agent_phase_shows_its_text_live_and_once_ended_its_usage(
    page: Page, liara_service, service_tokens: Tokens, model: ScriptedModelServer
):
    model.set_script(
        [
            ToolCalls([("lookup", {"host": "web-1"})], text=FIRST_ANSWER, usage=(20, 7)),
            Hang(HELD_SECONDS, then=Answer("web-1 is clean: its owner is ops.", usage=(40, 9))),
        ]
    )
    triage = {
        "phase_id": "triage",
        "agent_id": "analyst-001",
        "action": "investigate",
        "target": "web-1",
        "params": {"prompt": "Is web-1 compromised?"},
    }
    async with httpx.AsyncClient(base_url=liara_service.url, timeout=30) as http:
        workflow_id = await start(http, service_tokens.headers("operator-1"), crisis_body(triage))

    await sign_in(page, service_tokens, "viewer-1")
    await page.goto(f"/#/crises/{workflow_id}")
    phase = card(page, "triage")
    live = phase.get_by_role("log", name="Live output of triage")
    # The first answer's text, streamed, while the phase runs (its second model call hangs).
    await expect(live).to_have_text(FIRST_ANSWER, timeout=WAIT_MS)
    await expect(phase).to_contain_text("running")
    await expect(page.locator(".events")).not_to_contain_text("agent output")  # text is not an event line
    await screenshot(page, "agent-live-output")

    # Ended: the live text gives way to the output, and the card says what the model calls spent.
    await expect(phase).to_contain_text("completed", timeout=HELD_SECONDS * 1000 + WAIT_MS)
    await expect(live).to_have_count(0)
    await expect(phase).to_contain_text("web-1 is clean: its owner is ops.")
    await expect(phase).to_contain_text(
        re.compile(r"Model usage\s*76 tokens \(60 prompt, 16 completion\) in 2 model calls")
    )
    await screenshot(page, "agent-usage")

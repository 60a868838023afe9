"""The console shows what a language-model agent waits on and decides it: a call of a gated tool
(the tool, its arguments, the quorum; approved as is, with edited arguments, or rejected with a
reason the model reads) and an extend-budget gate (what was spent against which budget; approved
as much again or by an amount), on a crisis's page and in the approvals inbox alike.

Chromium (Debian's) driven by Playwright, against ``liara serve`` and a worker whose
configuration has an ``llm`` executor answered by the scripted model server, with two gated
tools (``isolate``, one approval; ``quarantine``, two) and prices for its tokens. One service,
worker and model server serve the module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request, ViewportSize, expect

from scripts.scripted_model_server import Answer, ScriptedModelServer, ToolCalls
from tests.helpers.console import (
    card,
    fits_the_width,
    inbox_item,
    screenshot,
    sign_in,
)
from tests.helpers.model_agents import KEY, KEY_ENV, agent_config, gated_tool, triage
from tests.helpers.service import Tokens, crisis_body, start

pytestmark = pytest.mark.integration

#: Long enough for a crisis to reach its next state and the inbox's next poll (every 3 s).
WAIT_MS = 30_000
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def config(base_url: str) -> str:
    """The analyst of ``agent_config`` with two gated tools besides ``lookup``, and prices (2.0
    and 8.0 per million prompt and completion tokens) that give its usage a cost."""
    analyst = agent_config(base_url).replace(
        'tools = ["lookup"]',
        'tools = ["lookup", "isolate", "quarantine"]\nprompt_price = 2.0\ncompletion_price = 8.0',
    )
    assert "quarantine" in analyst
    return (
        analyst
        + gated_tool("isolate", "Isolates a host from the network", 1)
        + gated_tool("quarantine", "Moves a host to the quarantine network", 2)
    )


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def service_env(service_env: dict[str, str], service_dir: Path, model: ScriptedModelServer) -> dict[str, str]:
    """The service's worker has the analyst (an ``llm`` executor on the scripted model) and its key."""
    path = service_dir / "liara.toml"
    path.write_text(config(model.base_url))
    return {**service_env, "LIARA_CONFIG": str(path), KEY_ENV: KEY}


async def report(http: httpx.AsyncClient, tokens: Tokens, workflow_id: str) -> dict[str, Any]:
    answer = await http.get(f"/v1/crises/{workflow_id}", headers=tokens.headers("viewer-1"))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def ended(http: httpx.AsyncClient, tokens: Tokens, workflow_id: str) -> dict[str, Any]:
    """The crisis's result, once it has ended."""
    answer = await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=tokens.headers("viewer-1"))
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def tool_messages(model: ScriptedModelServer, since: int) -> list[str]:
    """What the model was told of its tool calls, in the requests after the first ``since``."""
    return [
        message["content"]
        for request in model.requests[since:]
        for message in request.body["messages"]
        if message["role"] == "tool"
    ]


async def test_a_gated_tool_call_is_shown_and_approved_with_edited_arguments(
    page: Page, service_tokens: Tokens, http: httpx.AsyncClient, model: ScriptedModelServer
):
    model.set_script([ToolCalls([("isolate", {"host": "web-1"})], usage=(20, 7)), Answer("web-1 isolated")])
    before = len(model.requests)
    workflow_id = await start(http, service_tokens.headers("operator-1"), crisis_body(triage()))
    await sign_in(page, service_tokens, "approver-1")

    # The inbox: what the agent wants to call, with what, and how far its quorum is.
    await page.get_by_role("link", name="Approvals").click()
    item = inbox_item(page, workflow_id, "triage")
    await expect(item).to_contain_text("Agent wants to call isolate", timeout=WAIT_MS)
    await expect(item.locator(".agent-step")).to_contain_text('"host": "web-1"')
    await expect(item).to_contain_text("0 of 1 approvals")
    await expect(item.get_by_role("group", name="Decide on the call of isolate by triage")).to_be_visible()
    await screenshot(page, "approval-tool-call")
    await page.set_viewport_size(PHONE)
    assert await fits_the_width(page)
    await screenshot(page, "approval-tool-call-phone")
    await page.set_viewport_size(DESKTOP)

    # Its crisis's page: the same, and the arguments to edit, the model's to start from.
    await item.get_by_role("link", name=workflow_id).click()
    phase = card(page, "triage")
    await expect(phase).to_contain_text("Agent wants to call isolate", timeout=WAIT_MS)
    await expect(phase.locator(".agent-step")).to_contain_text('"host": "web-1"')
    await expect(phase).to_contain_text("0 of 1 approvals")
    edit = phase.get_by_role("button", name="Edit arguments")
    await expect(edit).to_have_attribute("aria-expanded", "false")
    await edit.click()
    await expect(edit).to_have_attribute("aria-expanded", "true")
    arguments = phase.get_by_label("Arguments to run the call with (JSON)")
    await expect(arguments).to_be_focused()
    assert json.loads(await arguments.input_value()) == {"host": "web-1"}

    # JSON that does not parse, or is no object, is refused in the page: nothing is sent.
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if request.method == "POST" else None)
    approve_edited = phase.get_by_role("button", name="Approve with edited arguments", exact=True)
    await arguments.fill('{"host": web-1-lab}')
    await approve_edited.click()
    error = phase.locator(".decide-more .field-error")
    await expect(error).to_contain_text("The arguments are not valid JSON (")
    await expect(error).to_contain_text("nothing was sent")
    await expect(arguments).to_have_attribute("aria-invalid", "true")
    await arguments.fill('["web-1-lab"]')
    await approve_edited.click()
    await expect(error).to_contain_text("The arguments must be a JSON object")
    await screenshot(page, "tool-call-arguments-refused")
    assert sent == []
    assert (await report(http, service_tokens, workflow_id))["phases"][0]["decisions"] == []

    await arguments.fill('{"host": "web-1-lab"}')
    await approve_edited.click()
    await expect(page.get_by_role("status")).to_have_text(
        "approver-1 approved the call of isolate by triage with edited arguments: 1 of 1 approvals."
    )
    assert [request.url for request in sent] == [
        f"{page.url.split('/#')[0]}/v1/crises/{workflow_id}/phases/triage/approve"
    ]
    assert json.loads(sent[0].post_data or "") == {"arguments": {"host": "web-1-lab"}}

    # The crisis completes; the phase's decisions show the arguments the call ran with.
    await expect(phase).to_contain_text("completed", timeout=WAIT_MS)
    await expect(phase).to_contain_text("web-1 isolated")
    decision = phase.locator(".decisions li")
    await expect(decision).to_have_text(re.compile(r"^Approved by approver-1 at .+: the call of isolate, with edited"))
    await expect(decision.locator(".json-box")).to_contain_text('"host": "web-1-lab"')
    await expect(phase.get_by_role("button", name="Edit arguments")).to_have_count(0)
    await screenshot(page, "tool-call-approved")

    result = await ended(http, service_tokens, workflow_id)
    assert result["success"], result
    (recorded,) = json.loads(Path(result["record_path"]).read_text())["phases"][0]["decisions"]
    assert (recorded["decided_by"], recorded["tool"], recorded["arguments"]) == (
        "approver-1",
        "isolate",
        {"host": "web-1-lab"},
    )
    (told,) = tool_messages(model, before)
    assert json.loads(told)["host"] == "web-1-lab"  # it ran with the approver's arguments


async def test_a_tool_calls_quorum_asks_each_approver_once_and_a_rejection_reaches_the_model(
    page: Page, service_tokens: Tokens, http: httpx.AsyncClient, model: ScriptedModelServer
):
    model.set_script([ToolCalls([("quarantine", {"host": "db-1"})]), Answer("db-1 left online as told")])
    before = len(model.requests)
    workflow_id = await start(http, service_tokens.headers("operator-1"), crisis_body(triage("db-1")))
    await sign_in(page, service_tokens, "approver-1")
    await page.goto("/#/approvals")
    item = inbox_item(page, workflow_id, "triage")
    await expect(item).to_contain_text("Agent wants to call quarantine", timeout=WAIT_MS)
    await expect(item).to_contain_text("0 of 2 approvals")
    await item.get_by_role("button", name="Approve", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text(
        "approver-1 approved the call of quarantine by triage: 1 of 2 approvals."
    )
    # Who approved the call is not asked again, in the inbox or on the crisis's page.
    await expect(item).to_contain_text("You approved this call; 1 of 2 approvals.")
    await expect(item.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    await expect(item.get_by_role("button", name="Edit arguments")).to_have_count(0)
    await page.goto(f"/#/crises/{workflow_id}")
    phase = card(page, "triage")
    await expect(phase).to_contain_text("You approved this call; 1 of 2 approvals.")
    await expect(phase.get_by_role("button", name="Reject")).to_have_count(0)

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, service_tokens, "approver-2")
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(phase).to_contain_text("1 of 2 approvals")
    await phase.get_by_label("Reason for a rejection").fill("db-1 serves payments")
    await phase.get_by_role("button", name="Reject").click()
    await expect(page.get_by_role("status")).to_have_text(
        "approver-2 rejected the call of quarantine by triage: db-1 serves payments."
    )
    await expect(phase).to_contain_text("completed", timeout=WAIT_MS)
    await expect(phase).to_contain_text("db-1 left online as told")
    decisions = phase.locator(".decisions li")
    await expect(decisions).to_have_count(2)
    await expect(decisions.nth(1)).to_have_text(
        re.compile(r"^Rejected by approver-2 at .+: the call of quarantine \(db-1 serves payments\)$")
    )
    await ended(http, service_tokens, workflow_id)
    assert tool_messages(model, before) == ["not run: the call was rejected by approver-2: db-1 serves payments"]


async def test_an_extend_budget_gate_shows_what_was_spent_and_is_approved_with_an_amount(
    page: Page, service_tokens: Tokens, http: httpx.AsyncClient, model: ScriptedModelServer
):
    lookups = [ToolCalls([("lookup", {"host": f"web-{n}"})], usage=(20, 7)) for n in (1, 2)]
    model.set_script([*lookups, Answer("both clean", usage=(30, 5))])
    body = crisis_body(triage(), token_budget=50)
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    await sign_in(page, service_tokens, "approver-1")

    # Its crisis's page: two calls spent 54 tokens (at 0.000096 each) of the crisis's 50.
    await page.goto(f"/#/crises/{workflow_id}")
    phase = card(page, "triage")
    await expect(phase).to_contain_text("Agent reached the crisis's budget", timeout=WAIT_MS)
    step = phase.locator(".agent-step")
    await expect(step).to_contain_text(re.compile(r"Spent\s*54 tokens \(40 prompt, 14 completion\) in 2 model calls"))
    await expect(step).to_contain_text(re.compile(r"Cost spent\s*0\.000192"))
    await expect(step).to_contain_text(re.compile(r"Token budget\s*50 tokens"))
    await expect(step).to_contain_text(re.compile(r"Budget of\s*the crisis"))
    await expect(step).not_to_contain_text("Cost budget")
    await expect(phase).to_contain_text("Approve as much again adds 50 tokens to the crisis's budget")
    await expect(phase.get_by_role("button", name="Approve as much again")).to_be_visible()

    # The inbox: an amount of tokens (this crisis has no cost budget to extend).
    await page.goto("/#/approvals")
    item = inbox_item(page, workflow_id, "triage")
    await expect(item).to_contain_text("Agent reached the crisis's budget", timeout=WAIT_MS)
    await expect(item).to_contain_text("0 of 1 approvals")
    await item.get_by_role("button", name="Choose an amount").click()
    tokens = item.get_by_label("Tokens to add")
    await expect(tokens).to_have_value("50")  # as much again, to start from
    await expect(item.get_by_label("Cost to add")).to_have_count(0)
    approve_amount = item.get_by_role("button", name="Approve with this amount")
    await tokens.fill("1.5")
    await approve_amount.click()
    await expect(item.locator(".decide-more .field-error")).to_have_text(
        "Tokens to add must be a whole number, at least 1: nothing was sent."
    )
    await expect(tokens).to_have_attribute("aria-invalid", "true")
    await screenshot(page, "approval-budget")
    await tokens.fill("100")
    await approve_amount.click()
    await expect(page.get_by_role("status")).to_have_text(
        "approver-1 approved more budget for triage (100 more tokens): 1 of 1 approvals."
    )
    await expect(item).to_have_count(0, timeout=WAIT_MS)

    await page.goto(f"/#/crises/{workflow_id}")
    await expect(phase).to_contain_text("completed", timeout=WAIT_MS)
    await expect(phase).to_contain_text("both clean")
    await expect(phase.locator(".decisions li")).to_have_text(
        re.compile(r"^Approved by approver-1 at .+: more budget, 100 more tokens$")
    )
    await screenshot(page, "budget-approved")
    result = await ended(http, service_tokens, workflow_id)
    assert result["success"] and result["usage"]["total_tokens"] == 89, result
    (decision,) = result["phases"][0]["decisions"]
    assert (decision["tool"], decision["extend_tokens"]) == ("extend-budget", 100)

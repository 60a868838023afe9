"""The operator console in a real browser: Debian's Chromium, driven by Playwright, against a real
``liara serve`` subprocess with a token per role, a worker, a dev server and records in PostgreSQL.

Signing in (a refused token, a service without tokens), starting crises from the form (a
missions file pasted or uploaded, action words), a phase followed from running to completed
without a reload, field errors where the API names them, the list (filters, pages, new crises
live), a graph, approvals from the inbox (a quorum, a rejection with its reason), a cancel that
asks first and the cancelled crisis after a reload, a decision on a crisis that has ended, what
a viewer is not offered, params and outputs kept in the record only, an unreachable service and
a phone's width; a graph wider than the page, JSON boxes expanded whole, what an approval card
shows of the phase (its params) and who approved it not asked again, a playbook started from the
form with the options of a crisis, and the same status on a crisis's page as in the list. One
browser serves the module; each test has its own browser context. Screenshots of each page go to
``test-output/screenshots/``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from cognition.liara.agency import LiaraTemporalAgency
from scripts.local_postgres import LocalPostgres
from tests.helpers import REPO_ROOT
from tests.helpers.console import (
    ENDED,
    PHONE,
    card,
    crisis_rows,
    fits_the_width,
    inbox_item,
    screenshot,
    sign_in,
    sign_out,
)
from tests.helpers.service import ServiceProcess, Tokens, crisis_body, phase, start, started_request

pytestmark = pytest.mark.integration

#: Where each crisis's record is, in the module's PostgreSQL record store.
RECORD_PATH = re.compile(r"Record\s*postgresql://127\.0\.0\.1:\d+/\S+#crisis-")
#: Long enough for a crisis to reach its next state and the page's next poll (every 3 s).
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def service_env(service_env: dict[str, str], postgres: LocalPostgres) -> dict[str, str]:
    """Records in PostgreSQL, as a fleet keeps them: the service reads a crisis's record from the
    store its workers write, and a record's path names no one machine's directory. The service
    starts the playbooks shipped in playbooks/.
    """
    return {**service_env, "LIARA_RECORD_STORE": postgres.url, "LIARA_PLAYBOOKS": str(REPO_ROOT / "playbooks")}


async def gated(http: httpx.AsyncClient, tokens: Tokens, **gate: Any) -> str:
    """A crisis whose second phase awaits approval (after a first one that completes)."""
    body = crisis_body(phase("recon-1"), phase("gate-2", "strike", requires_approval=True, **gate), phase("report-3"))
    return await start(http, tokens.headers("operator-1"), body)


async def test_a_refused_token_is_one_sentence_and_a_good_one_lasts_the_session(page, service_tokens):
    await page.goto("/")
    token = page.get_by_label("API token")
    await token.fill("liara_not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(
        page.get_by_text("The bearer token is not one of this service's tokens (or it was revoked).")
    ).to_be_visible()
    await expect(token).to_have_attribute("aria-invalid", "true")
    await screenshot(page, "sign-in")

    await token.fill(service_tokens.by_name["operator-1"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("Signed in as operator-1 (operator)")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 1
    await page.reload()  # kept for the tab's session
    await expect(page.get_by_text("Signed in as operator-1 (operator)")).to_be_visible()
    await sign_out(page)
    assert await page.evaluate("sessionStorage.length") == 0


async def test_a_service_without_tokens_lets_this_machine_in_as_local(
    browser, service_env, service_dir, service_worker
):
    server = ServiceProcess(service_env, service_dir)
    context = await browser.new_context(base_url=server.url)
    try:
        page = await context.new_page()
        await page.goto("/")
        await expect(page.get_by_text("Signed in as local (admin)")).to_be_visible()
        await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()  # no token to forget
        await expect(page.get_by_role("link", name="Start a crisis")).to_be_visible()
    finally:
        await context.close()
        assert server.stop() == 0, server.output


async def test_an_unreachable_service_is_one_sentence_until_it_answers_again(page, service_tokens):
    await sign_in(page, service_tokens, "viewer-1")
    await page.route(re.compile(r"/v1/crises\?"), lambda route: route.abort())
    sentence = page.get_by_role("alert").get_by_text(
        re.compile(r"^Cannot reach the Liara service at http://127\.0\.0\.1:\d+: check that `liara serve` is running")
    )
    await expect(sentence).to_be_visible()
    await page.unroute(re.compile(r"/v1/crises\?"))
    await expect(page.get_by_role("alert")).to_be_hidden()


async def test_a_crisis_from_the_missions_form_is_followed_live_from_running_to_completed(
    page, service_tokens, service_env
):
    await sign_in(page, service_tokens, "operator-1")
    await page.get_by_role("link", name="Start a crisis").click()
    target = f"target-{uuid.uuid4().hex[:10]}"
    await page.get_by_label("Target").fill(target)
    await page.get_by_label("A missions file (JSON)").check()
    missions = [{"phase_id": "scan-1", "agent_id": "scan-agent-001", "action": "scan", "target": target}]
    missions[0]["params"] = {"duration": 2}
    await page.get_by_label("Missions", exact=True).fill(json.dumps(missions))
    await page.get_by_role("button", name="Start crisis").click()

    await expect(page).to_have_url(re.compile(r"#/crises/crisis-workflow-"))
    await expect(page.get_by_role("status")).to_have_text(re.compile(r"^Started crisis crisis-target-"))
    await page.evaluate("window.sameDocument = true")  # gone if the page reloads
    scan = card(page, "scan-1")
    await expect(scan).to_contain_text("running")
    await expect(scan).to_contain_text("completed")
    await expect(scan).to_contain_text(re.compile(r"Duration\s*2\.\d s"))
    await expect(page.get_by_text(ENDED)).to_be_visible()
    await expect(page.locator(".summary")).to_contain_text(RECORD_PATH)
    link = page.get_by_role("link", name="Open the workflow in the Temporal Web UI")
    workflow_id = page.url.rsplit("/", 1)[-1]
    # The Web UI of the service's Temporal server: its host, its port + 1000.
    host, _, port = service_env["TEMPORAL_ADDRESS"].rpartition(":")
    web_ui = f"http://{host}:{int(port) + 1000}"
    assert await link.get_attribute("href") == f"{web_ui}/namespaces/default/workflows/{workflow_id}"
    assert await page.evaluate("window.sameDocument") is True
    await screenshot(page, "crisis-followed")

    await page.get_by_role("link", name="All crises").click()
    await page.get_by_label("Target").fill(target)
    await page.get_by_role("button", name="Filter").click()
    row = page.get_by_role("row", name=re.compile(workflow_id))
    await expect(row).to_contain_text("completed")
    await expect(row).to_contain_text("1 of 1 done")
    await expect(row).to_contain_text("operator-1")


async def test_a_missions_file_is_uploaded_and_one_that_cannot_be_read_says_so(page, service_tokens, tmp_path):
    target = f"target-{uuid.uuid4().hex[:10]}"
    missions = [{"phase_id": "scan-1", "agent_id": "scan-agent-001", "action": "scan", "target": target}]
    uploaded = tmp_path / "missions.json"
    uploaded.write_text(json.dumps(missions))
    await sign_in(page, service_tokens, "operator-1")
    await page.goto("/#/start")
    await page.get_by_label("Target").fill(target)
    await page.get_by_label("A missions file (JSON)").check()
    field = page.locator(".field", has=page.get_by_label("Missions", exact=True))

    # As when the file changed or went away after it was chosen: the browser cannot read it.
    await page.evaluate(
        """() => {
            window.readFile = Blob.prototype.text;
            Blob.prototype.text = () =>
                Promise.reject(new DOMException("The requested file could not be read", "NotReadableError"));
        }"""
    )
    await page.get_by_label("Or load a missions file").set_input_files(uploaded)
    await expect(field).to_contain_text("Cannot read missions.json: The requested file could not be read.")
    await expect(page.get_by_label("Missions", exact=True)).to_have_attribute("aria-invalid", "true")

    await page.evaluate("() => { Blob.prototype.text = window.readFile; }")
    await page.get_by_label("Or load a missions file").set_input_files([])
    await page.get_by_label("Or load a missions file").set_input_files(uploaded)
    await expect(page.get_by_label("Missions", exact=True)).to_have_value(json.dumps(missions))
    await expect(field.locator(".field-error")).to_have_text("")
    await page.get_by_role("button", name="Start crisis").click()
    await expect(card(page, "scan-1")).to_contain_text("completed")


async def test_the_list_filters_pages_and_shows_new_crises_without_a_reload(page, service_tokens, http):
    target = f"target-{uuid.uuid4().hex[:10]}"
    operator, admin = service_tokens.headers("operator-1"), service_tokens.headers("admin-1")
    awaiting = await start(http, operator, crisis_body(phase("gate-1", requires_approval=True), target=target))
    by_admin = await start(http, admin, crisis_body(phase("recon-1"), target=target))
    for _ in range(3):
        await start(http, operator, crisis_body(phase("recon-1"), target=target))
    await sign_in(page, service_tokens, "viewer-1")
    await page.goto(f"/#/crises?target={target}")
    await expect(crisis_rows(page)).to_have_count(5)

    await page.get_by_label("Status").select_option("awaiting_approval")
    await page.get_by_role("button", name="Filter").click()
    await expect(crisis_rows(page)).to_have_count(1)
    await expect(crisis_rows(page)).to_contain_text(awaiting)
    await page.get_by_label("Status").select_option("")
    await page.get_by_label("Started by").fill("admin-1")
    await page.get_by_role("button", name="Filter").click()
    await expect(crisis_rows(page)).to_have_count(1)
    await expect(crisis_rows(page)).to_contain_text(by_admin)

    # Pages of the API's own size, each read with the cursor the one before gave.
    await page.goto(f"/#/crises?target={target}&limit=2")
    more = page.get_by_role("button", name="Show more")
    await expect(crisis_rows(page)).to_have_count(2)
    await more.click()
    await expect(crisis_rows(page)).to_have_count(4)
    await more.click()
    await expect(crisis_rows(page)).to_have_count(5)
    await expect(more).to_be_hidden()

    await page.goto(f"/#/crises?target={target}")
    await expect(crisis_rows(page)).to_have_count(5)
    await page.evaluate("window.sameDocument = true")
    newest = await start(http, operator, crisis_body(phase("recon-1"), target=target))
    await expect(page.get_by_role("row", name=re.compile(newest))).to_be_visible()
    assert await page.evaluate("window.sameDocument") is True
    await http.post(f"/v1/crises/{awaiting}/cancel", headers=admin)


async def test_an_error_while_drawing_an_event_is_not_called_a_lost_stream(page, service_tokens, http):
    workflow_id = await start(http, service_tokens.headers("operator-1"), crisis_body(phase("recon-1")))
    await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 30}, headers=service_tokens.headers("viewer-1"))
    await sign_in(page, service_tokens, "viewer-1")
    told = await page.evaluate(
        """async (workflowId) => {
            const { follow } = await import("/console/events.js");
            const told = [];
            await follow(workflowId, {
                signal: new AbortController().signal,
                onConnected: () => told.push("connected"),
                onEvent: ({ event }) => {
                    if (event !== "finished") throw new Error(`cannot draw ${event}`);
                    told.push("finished drawn");
                },
                onError: (error) => told.push(`error: ${error.message}`),
                onTrouble: (error) => told.push(`trouble: ${error.message}`),
            });
            return told;
        }""",
        workflow_id,
    )
    assert told[0] == "connected" and told[-1] == "finished drawn", told
    assert set(told[1:-1]) == {"error: cannot draw phase"}, told


async def test_params_and_outputs_past_the_crisis_budget_are_said_to_be_in_the_record(page, service_tokens, http):
    # Each phase after the first gets and reports 60 kB (the first's output): together they pass
    # the crisis's budget, so the last ones' params and outputs are kept in its record only.
    first = phase("bulk-1", "scan", params={"output": "x" * 60_000})
    later = [phase(f"bulk-{n}", "scan", params={"output": "${phases.bulk-1.output}"}) for n in range(2, 8)]
    workflow_id = await start(http, service_tokens.headers("operator-1"), crisis_body(first, *later))
    waited = await http.get(
        f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=service_tokens.headers("viewer-1")
    )
    phases = waited.json()["result"]["phases"]
    params_kept = next(p for p in phases if p["params_ref"])
    output_kept = next(p for p in phases if p["output_ref"] and not p["params_ref"])
    await sign_in(page, service_tokens, "viewer-1")
    await page.goto(f"/#/crises/{workflow_id}")

    size = params_kept["params_ref"]["size_bytes"]
    await expect(card(page, params_kept["phase_id"])).to_contain_text(
        f"Params kept in the crisis record only ({size} bytes)."
    )
    size = output_kept["output_ref"]["size_bytes"]
    await expect(card(page, output_kept["phase_id"])).to_contain_text(
        f"Output kept in the crisis record only ({size} bytes)."
    )
    await expect(card(page, output_kept["phase_id"])).not_to_contain_text("Params kept")
    await expect(card(page, "bulk-1")).not_to_contain_text("kept in the crisis record only")


async def test_no_page_is_wider_than_a_phone(page, service_tokens, http):
    # Two gates open at once, after a common parent: both wait in the inbox.
    body = crisis_body(
        phase("scan-1", "scan", params={"output": {"hosts": [f"host-{n}.example.internal" for n in range(40)]}}),
        phase("logs-2", "collect", depends_on=["scan-1"], requires_approval=True),
        phase("probe-3", "probe", depends_on=["scan-1"], requires_approval=True),
    )
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    await page.set_viewport_size(PHONE)
    await page.goto("/")
    await expect(page.get_by_label("API token")).to_be_visible()
    assert await fits_the_width(page)
    await sign_in(page, service_tokens, "admin-1")
    await expect(crisis_rows(page).first).to_be_visible()
    assert await fits_the_width(page)
    await page.goto("/#/approvals")
    await expect(inbox_item(page, workflow_id, "logs-2")).to_be_visible()
    await expect(inbox_item(page, workflow_id, "probe-3")).to_be_visible()
    assert await fits_the_width(page)
    await page.goto("/#/start")
    await page.get_by_label("Target").fill("../escape")
    await page.get_by_role("button", name="Start crisis").click()
    await expect(page.get_by_label("Target")).to_have_attribute("aria-invalid", "true")
    assert await fits_the_width(page)
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(card(page, "probe-3")).to_contain_text("awaiting approval")
    await page.get_by_text(re.compile(r"^Output \(\d+ characters\)$")).click()  # the long output, opened
    assert await fits_the_width(page)
    await http.post(f"/v1/crises/{workflow_id}/cancel", headers=service_tokens.headers("operator-1"))


async def test_action_words_become_phases_as_the_command_line_makes_them(page, service_tokens):
    await sign_in(page, service_tokens, "operator-1")
    await page.goto("/#/start")
    await page.get_by_label("Target").fill(f"target-{uuid.uuid4().hex[:10]}")
    await page.get_by_label("Actions").fill("recon secure")
    await page.get_by_role("button", name="Start crisis").click()
    recon = card(page, "recon-phase-1")
    await expect(recon).to_contain_text("recon-agent-001")
    await expect(recon).to_contain_text("reconnaissance")
    await expect(card(page, "secure-phase-2")).to_contain_text("completed")


async def test_each_validation_error_is_shown_next_to_its_field(page, service_tokens):
    await sign_in(page, service_tokens, "operator-1")
    await page.goto("/#/start")
    target = page.get_by_label("Target")
    await target.fill("../escape")
    await page.get_by_label("Actions").fill("recon rec!on")
    await page.get_by_role("button", name="Start crisis").click()
    await expect(target).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".field", has=target)).to_contain_text(
        "use only letters, digits, '.', '_' and '-', starting with a letter or digit"
    )
    await expect(page.locator(".field", has=page.get_by_label("Actions"))).to_contain_text(
        "actions.1: use a word of letters, digits, '_' and '-', starting with a letter"
    )
    await screenshot(page, "start")

    await target.fill("target-alpha")
    await page.get_by_label("A missions file (JSON)").check()
    missions = page.get_by_label("Missions", exact=True)
    await missions.fill('[{"phase_id": "p-1", "agent_id": "a-1", "action": "scan", "target": "t", "priority": -1}]')
    await page.get_by_role("button", name="Start crisis").click()
    await expect(page.locator(".field", has=missions)).to_contain_text(
        "missions.0.priority: Input should be greater than or equal to 0"
    )
    await expect(target).not_to_have_attribute("aria-invalid", "true")
    await missions.fill("[{")
    await page.get_by_role("button", name="Start crisis").click()
    await expect(page.locator(".field", has=missions)).to_contain_text("The missions are not valid JSON")


async def test_a_quorum_approved_from_the_inbox_moves_the_crisis_on(page, service_tokens, http):
    body = crisis_body(
        phase("scan-1", "scan", params={"output": {"hosts": ["web-7", "db-2"]}}),
        phase("logs-2", "collect", depends_on=["scan-1"]),
        phase("probe-3", "probe", depends_on=["scan-1"]),
        phase("contain-4", "contain", depends_on=["logs-2", "probe-3"], approvals_required=2),
        phase("report-5", "report", depends_on=["contain-4"]),
    )
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    await sign_in(page, service_tokens, "approver-1")
    await page.get_by_role("link", name="Approvals").click()
    item = inbox_item(page, workflow_id)
    await expect(item).to_contain_text("0 of 2 approvals")
    await item.get_by_role("button", name="Approve").focus()
    await page.keyboard.press("Enter")  # by keyboard
    await expect(item).to_contain_text("1 of 2 approvals")
    await expect(item).to_contain_text("Approved by approver-1")
    await screenshot(page, "approvals")

    await sign_out(page)
    await sign_in(page, service_tokens, "approver-2")
    await page.get_by_role("link", name="Approvals").click()
    await inbox_item(page, workflow_id).get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("status")).to_contain_text("approver-2 approved contain-4: 2 of 2 approvals.")
    await expect(inbox_item(page, workflow_id)).to_have_count(0)
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(page.locator("#notice")).to_be_empty()  # a notice lasts until the page changes
    await expect(card(page, "report-5")).to_contain_text("completed")
    await expect(card(page, "contain-4")).to_contain_text("approver-1, approver-2")
    await expect(page.locator(".summary")).to_contain_text("5 of 5 phases done")
    # Its graph: a layer per step, and a line for each phase it depends on.
    board = page.locator(".board.graph")
    layers = [
        await layer.locator("[data-phase]").evaluate_all("cards => cards.map(c => c.dataset.phase)")
        for layer in await board.locator(".layer").all()
    ]
    assert layers == [["scan-1"], ["logs-2", "probe-3"], ["contain-4"], ["report-5"]]
    await expect(board.locator("svg.edges path")).to_have_count(5)
    await screenshot(page, "crisis")
    await page.set_viewport_size(PHONE)
    await expect(board.locator("svg.edges")).to_be_hidden()  # the layers stack, one under the other
    assert await fits_the_width(page)
    await screenshot(page, "crisis-phone")


async def test_a_rejection_from_the_inbox_carries_its_reason(page, service_tokens, http):
    workflow_id = await gated(http, service_tokens)
    await sign_in(page, service_tokens, "approver-1")
    await page.get_by_role("link", name="Approvals").click()
    item = inbox_item(page, workflow_id)
    reason = item.get_by_label("Reason for a rejection")
    await reason.fill("x" * 1001)  # the page has no limit of its own: the API's is shown at the field
    await item.get_by_role("button", name="Reject").click()
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await expect(item.locator(".decide .field")).to_contain_text("at most 1000 characters")
    await reason.fill("too risky")
    await item.get_by_role("button", name="Reject").click()
    await expect(page.get_by_role("status")).to_contain_text("approver-1 rejected gate-2: too risky.")
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(card(page, "gate-2")).to_contain_text("Error: rejected by approver-1: too risky")
    await expect(card(page, "gate-2")).to_contain_text("failed")


async def test_a_cancel_asks_first_and_the_cancelled_crisis_keeps_its_whole_page(page, service_tokens, http):
    target = f"target-{uuid.uuid4().hex[:10]}"
    body = crisis_body(
        phase("recon-1", compensate_action="withdraw", params={"output": {"scouts": 3}}),
        phase("gate-2", "strike", requires_approval=True),
        phase("report-3", "report"),
        target=target,
    )
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    await sign_in(page, service_tokens, "admin-1")
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(card(page, "gate-2")).to_contain_text("awaiting approval")
    await screenshot(page, "crisis-awaiting")

    cancel = page.get_by_role("button", name="Cancel crisis")
    page.once("dialog", lambda dialog: dialog.dismiss())
    await cancel.click()
    await expect(card(page, "gate-2")).to_contain_text("awaiting approval")  # nothing asked, nothing done
    page.once("dialog", lambda dialog: dialog.accept())
    await cancel.click()
    await expect(page.locator(".summary")).to_contain_text("cancelled")
    await expect(cancel).to_have_count(0)
    cancels = page.get_by_role("region", name="Cancel requests")
    compensations = page.get_by_role("region", name="Compensations")
    await expect(compensations.locator('[data-phase="recon-1"]')).to_contain_text("completed")

    async def whole() -> None:
        """What the page shows of the cancelled crisis, whether it followed it or was reloaded."""
        await expect(page.get_by_role("heading", name=re.compile(r"^Crisis crisis-target-"))).to_be_visible()
        await expect(page.locator(".summary")).to_contain_text(RECORD_PATH)
        await expect(page.locator(".summary")).to_contain_text("1 of 3 phases done")
        await expect(card(page, "recon-1")).to_contain_text(re.compile(r"Agent\s*recon-agent-001\s*Action\s*recon"))
        await expect(card(page, "recon-1")).to_contain_text('"scouts": 3')
        await expect(card(page, "gate-2")).to_contain_text("cancelled")
        await expect(card(page, "report-3")).to_contain_text("skipped")
        await expect(compensations.locator('[data-phase="recon-1"]')).to_contain_text(re.compile(r"Action\s*withdraw"))
        await expect(cancels).to_contain_text(re.compile(r"while running: obeyed \(cancelled by admin-1\)"))

    await whole()
    await page.reload()
    await whole()
    await screenshot(page, "crisis-cancelled")
    await page.goto(f"/#/crises?target={target}")
    await expect(page.get_by_role("row", name=re.compile(workflow_id))).to_contain_text("1 of 3 done")


async def test_a_decision_on_a_crisis_that_has_ended_says_why_not(page, service_tokens, http):
    # An inbox that still shows the phase (its next poll held back) refuses in one sentence.
    workflow_id = await gated(http, service_tokens)
    await sign_in(page, service_tokens, "approver-1")
    await page.clock.install()
    await page.goto("/#/approvals")
    item = inbox_item(page, workflow_id)
    await expect(item).to_be_visible()
    await http.post(f"/v1/crises/{workflow_id}/cancel", headers=service_tokens.headers("admin-1"))
    await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 30}, headers=service_tokens.headers("admin-1"))
    await item.get_by_role("button", name="Approve").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        re.compile(rf"{workflow_id}.*has already ended \(cancelled\)")
    )


async def test_a_viewer_is_offered_nothing_that_changes_a_crisis(page, service_tokens, http):
    workflow_id = await gated(http, service_tokens)
    await sign_in(page, service_tokens, "viewer-1")
    await expect(page.get_by_role("link", name="Start a crisis")).to_have_count(0)
    harmless = {"Sign out", "Filter", "Dismiss", "Show more"}

    await page.goto("/#/approvals")
    await expect(inbox_item(page, workflow_id)).to_contain_text("0 of 1 approvals")
    assert set(await page.get_by_role("button").all_inner_texts()) <= harmless
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(card(page, "gate-2")).to_contain_text("awaiting approval")
    assert set(await page.get_by_role("button").all_inner_texts()) <= harmless
    await page.goto("/#/start")  # not offered: the crises instead
    await expect(page.get_by_role("heading", name="Crises")).to_be_visible()
    assert await page.get_by_role("button", name="Start crisis").count() == 0
    await screenshot(page, "crises")
    await page.set_viewport_size(PHONE)
    await screenshot(page, "crises-phone")
    await http.post(f"/v1/crises/{workflow_id}/cancel", headers=service_tokens.headers("operator-1"))


async def start_playbook(http: httpx.AsyncClient, tokens: Tokens, name: str, **inputs: Any) -> str:
    """A crisis of one of the shipped playbooks, started through the API as the console starts it."""
    started = await http.post(
        f"/v1/playbooks/{name}/crises", json={"inputs": inputs}, headers=tokens.headers("operator-1")
    )
    assert started.status_code == 201, started.text
    return started.json()["workflow_id"]


async def wholly_shown(locator) -> bool:
    """Whether the element is whole within the window and within every box that clips it."""
    return await locator.evaluate(
        """(element) => {
            const box = element.getBoundingClientRect();
            if (box.left < -0.5 || box.right > innerWidth + 0.5) return false;
            for (let clip = element.parentElement; clip; clip = clip.parentElement) {
                if (getComputedStyle(clip).overflowX === "visible") continue;
                const frame = clip.getBoundingClientRect();
                if (box.left < frame.left - 0.5 || box.right > frame.right + 0.5) return false;
            }
            return true;
        }"""
    )


async def clips(locator) -> bool:
    """Whether a box hides part of what it holds (it would scroll, either way)."""
    return await locator.evaluate(
        "(box) => box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1"
    )


async def box_size(locator) -> dict:
    """What decides whether a box clips, said when a test finds it does not."""
    return await locator.evaluate(
        "(box) => ({scroll: [box.scrollWidth, box.scrollHeight], client: [box.clientWidth, box.clientHeight],"
        " maxHeight: getComputedStyle(box).maxHeight, text: box.textContent.length})"
    )


async def the_whole_json(holder, what: str) -> str:
    """The JSON of the card's (or inbox item's) `what` box ("output", "params"), shown whole: a box
    that clips it offers Expand, which shows all of it."""
    label = holder.page.locator(".json-label", has_text=re.compile(rf"^{what.capitalize()}"))
    json_box = holder.locator(".json-box", has=label).locator("pre")
    if await clips(json_box):
        await holder.get_by_role("button", name=f"Expand {what}").click()
        collapse = holder.get_by_role("button", name=f"Collapse {what}")
        await expect(collapse).to_have_attribute("aria-expanded", "true")
        assert not await clips(json_box)
    assert await wholly_shown(json_box)
    return await json_box.inner_text()


async def test_the_incident_response_graph_shows_every_card_and_its_output(page, service_tokens, http):
    host = f"web-{uuid.uuid4().hex[:8]}.example.internal"
    workflow_id = await start_playbook(http, service_tokens, "incident-response", host=host, ticket="INC-4821")
    await sign_in(page, service_tokens, "approver-1")
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(card(page, "contain")).to_contain_text("awaiting approval")
    await card(page, "contain").get_by_role("button", name="Approve").click()
    report = card(page, "report")
    await expect(report).to_contain_text("completed")
    await expect(page.get_by_text(ENDED)).to_be_visible()
    await expect(page.locator(".board.graph svg.edges path")).to_have_count(6)

    async def every_card_reached() -> None:
        """Each card is shown whole, at once or once the graph is scrolled to it, with a cue
        that says the graph scrolls whenever it is wider than the page."""
        wider = await report.evaluate(
            """(card) => {
                for (let box = card.parentElement; box; box = box.parentElement) {
                    if (["auto", "scroll"].includes(getComputedStyle(box).overflowX))
                        return box.scrollWidth > box.clientWidth + 1;
                }
                return false;
            }"""
        )
        cue = page.get_by_text("The graph is wider than the page: scroll it sideways")
        if wider:
            await expect(cue).to_be_visible()
            await expect(page.get_by_role("region", name="Phases graph")).to_be_visible()  # by keyboard too
        else:
            await expect(cue).to_be_hidden()
        for phase_id in ("triage", "collect-logs", "scan-host", "contain", "eradicate", "report"):
            await card(page, phase_id).scroll_into_view_if_needed()
            assert await wholly_shown(card(page, phase_id)), phase_id
        assert await fits_the_width(page)

    await every_card_reached()  # 1280 pixels wide
    assert host in await the_whole_json(report, "output")  # "...incident on HOST (ticket INC-4821)..."
    await screenshot(page, "crisis-graph")
    await page.set_viewport_size({"width": 900, "height": 900})  # five layers cannot fit: it scrolls
    await expect(page.get_by_text("The graph is wider than the page: scroll it sideways")).to_be_visible()
    await expect(page.locator(".board.graph")).to_have_class(re.compile(r"\bmore-right\b"))
    await every_card_reached()
    await expect(page.locator(".board.graph")).to_have_class(re.compile(r"\bmore-left\b"))
    await page.set_viewport_size(PHONE)  # the layers stack, one under the other
    await expect(page.get_by_text("The graph is wider than the page: scroll it sideways")).to_be_hidden()
    assert await fits_the_width(page)


async def test_an_output_or_params_larger_than_its_box_can_be_seen_whole(page, service_tokens, http):
    hosts = [f"host-{n:02d}.{'a-long-subdomain.' * 3}example.internal" for n in range(40)]
    body = crisis_body(
        phase("scan-1", "scan", params={"output": {"hosts": hosts}}),
        phase("probe-2", "probe", params={"hosts": "${phases.scan-1.output.hosts}"}),
    )
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    await http.get(f"/v1/crises/{workflow_id}/result", params={"wait": 60}, headers=service_tokens.headers("viewer-1"))
    await sign_in(page, service_tokens, "viewer-1")
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(page.get_by_text(ENDED)).to_be_visible()  # every event drawn: the cards stay as they are
    scan = card(page, "scan-1")
    expand = scan.get_by_role("button", name="Expand output")
    await expect(expand).to_have_attribute("aria-expanded", "false")
    output = scan.locator(".json-box", has=page.locator(".json-label", has_text=re.compile("^Output"))).locator("pre")
    await expect(output).to_contain_text("host-00.")  # drawn: the result may come after the last event
    await expect(expand).to_be_visible()  # the console measured the box as clipping its JSON
    assert await clips(output), await box_size(output)  # forty hosts, on lines longer than the card
    await expect(scan).to_contain_text(re.compile(r"Output \(\d+ characters\)"))

    shown = await the_whole_json(scan, "output")
    assert json.loads(shown) == {"hosts": hosts}
    await screenshot(page, "crisis-output-expanded")
    await scan.get_by_role("button", name="Collapse output").click()
    await expect(expand).to_have_attribute("aria-expanded", "false")
    assert await clips(output)

    probe = card(page, "probe-2")
    await expect(probe).to_contain_text("Params, resolved")  # as its agent got them
    assert json.loads(await the_whole_json(probe, "params")) == {"hosts": hosts}


async def test_an_approval_card_shows_the_params_as_planned_and_each_decision(page, service_tokens, http):
    body = crisis_body(
        phase("triage-1", "triage", params={"output": {"host": "web-7.example.internal"}}),
        phase(
            "contain-2",
            "isolate-host",
            depends_on=["triage-1"],
            approvals_required=2,
            params={"host": "${phases.triage-1.output.host}", "mode": "full"},
        ),
    )
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    await sign_in(page, service_tokens, "approver-1")
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(card(page, "contain-2")).to_contain_text("awaiting approval")
    approved = await http.post(
        f"/v1/crises/{workflow_id}/phases/contain-2/approve", headers=service_tokens.headers("approver-2")
    )
    assert approved.status_code == 200, approved.text

    await page.goto("/#/approvals")
    item = inbox_item(page, workflow_id, "contain-2")
    # What will run: the params as the plan has them, said to be resolved only when it runs.
    await expect(item).to_contain_text("Params as planned")
    await expect(item).to_contain_text("Not resolved yet: each ${…} reference is replaced when the phase runs")
    await expect(item).to_contain_text('"host": "${phases.triage-1.output.host}"')
    await expect(item).to_contain_text('"mode": "full"')
    # Who decided already: who, which way and when.
    await expect(item).to_contain_text("1 of 2 approvals")
    await expect(item.locator(".decisions li")).to_have_text(re.compile(r"^Approved by approver-2 at \S"))
    await expect(item.locator(".decisions time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    await screenshot(page, "approval-params")

    await item.get_by_role("button", name="Approve").click()
    await page.goto(f"/#/crises/{workflow_id}")
    contain = card(page, "contain-2")
    await expect(contain).to_contain_text("completed")
    await expect(contain).to_contain_text("Params, resolved")  # now as its agent got them
    await expect(contain).to_contain_text('"host": "web-7.example.internal"')


async def test_an_approver_who_has_approved_is_not_offered_approve_again(page, service_tokens, http):
    workflow_id = await gated(http, service_tokens, approvals_required=2)
    await sign_in(page, service_tokens, "approver-1")
    await page.goto("/#/approvals")
    item = inbox_item(page, workflow_id, "gate-2")
    await item.get_by_role("button", name="Approve").click()
    await expect(item).to_contain_text("You approved this phase; 1 of 2 approvals.")
    await expect(item.get_by_role("button", name="Approve")).to_have_count(0)
    await expect(item.get_by_role("button", name="Reject")).to_have_count(0)
    await page.reload()
    await expect(item).to_contain_text("You approved this phase; 1 of 2 approvals.")
    await expect(item.get_by_role("button", name="Approve")).to_have_count(0)

    await page.goto(f"/#/crises/{workflow_id}")
    gate = card(page, "gate-2")
    await expect(gate).to_contain_text("You approved this phase; 1 of 2 approvals.")
    await expect(gate.get_by_role("button", name="Approve")).to_have_count(0)

    await sign_out(page)  # another approver is still asked
    await sign_in(page, service_tokens, "approver-2")
    await page.goto(f"/#/crises/{workflow_id}")
    await card(page, "gate-2").get_by_role("button", name="Approve").click()
    await expect(card(page, "report-3")).to_contain_text("completed")


async def test_a_playbook_starts_from_the_form_with_the_options_of_a_crisis(page, service_tokens, http, dev_server):
    await sign_in(page, service_tokens, "operator-1")
    await page.goto("/#/start")
    await page.get_by_label("A playbook").check()
    await page.get_by_label("Playbook", exact=True).select_option("incident-response")
    await expect(page.locator(".start")).to_contain_text("Contain and clean a compromised host")
    host = page.get_by_label("host", exact=True)
    host_field = page.locator(".field", has=host)
    start_button = page.get_by_role("button", name="Start crisis")

    await start_button.click()  # its required input left empty
    await expect(host).to_have_attribute("aria-invalid", "true")
    await expect(host_field.locator(".field-error")).to_have_text("Give host: the playbook needs it.")
    await host.fill("../escape")  # the crisis's target comes from it
    await start_button.click()
    await expect(host_field.locator(".field-error")).to_have_text(
        re.compile(r"^host .*target.*: use only letters, digits, '\.', '_' and '-', starting with a letter or digit\.$")
    )
    name = f"web-{uuid.uuid4().hex[:8]}.example.internal"
    await host.fill(name)
    parallel = page.get_by_label("Max parallel")
    await parallel.fill("0")
    await start_button.click()
    await expect(parallel).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".field", has=parallel).locator(".field-error")).to_have_text(
        "Give a whole number from 1 to 64, or leave it empty for the default."
    )
    await expect(host).not_to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".start")).not_to_contain_text("Input should")  # never pydantic's words
    await screenshot(page, "start-playbook")

    await parallel.fill("1")
    await page.get_by_label("Failure policy").select_option("continue")  # over the playbook's own abort
    await page.get_by_label("Priority").select_option("1")
    await page.get_by_label("severity (optional)").fill("critical")
    await start_button.click()
    await expect(page.get_by_role("status")).to_have_text(re.compile(rf"^Started crisis crisis-{re.escape(name)}-"))
    await expect(card(page, "contain")).to_contain_text("awaiting approval")
    workflow_id = page.url.rsplit("/", 1)[-1]
    request = await started_request(dev_server.client, workflow_id)
    assert (request.playbook, request.failure_policy, request.priority, request.max_parallel) == (
        "incident-response",
        "continue",
        1,
        1,
    )
    assert request.inputs == {"host": name, "severity": "critical", "ticket": "none"}
    await http.post(f"/v1/crises/{workflow_id}/cancel", headers=service_tokens.headers("operator-1"))

    # Phases from action words take the options too.
    await page.goto("/#/start")
    await page.get_by_label("Target").fill(f"target-{uuid.uuid4().hex[:10]}")
    await page.get_by_label("Actions").fill("recon")
    await page.get_by_label("Priority").select_option("5")
    await start_button.click()
    await expect(card(page, "recon-phase-1")).to_contain_text("completed")
    request = await started_request(dev_server.client, page.url.rsplit("/", 1)[-1])
    assert (request.priority, request.failure_policy, request.max_parallel) == (5, "continue", 4)


def header_status(page: Page):
    """The Status of a crisis's page (its header)."""
    return page.locator(".summary .facts > div", has=page.locator("dt", has_text=re.compile(r"^Status$"))).locator("dd")


async def test_a_crisis_page_shows_the_status_its_list_row_shows(page, service_tokens, http, dev_server):
    target = f"target-{uuid.uuid4().hex[:10]}"
    body = crisis_body(
        phase("recon-1"), phase("gate-2", "strike", requires_approval=True, approvals_required=2), target=target
    )
    workflow_id = await start(http, service_tokens.headers("operator-1"), body)
    await sign_in(page, service_tokens, "viewer-1")
    await page.goto(f"/#/crises?target={target}")
    await expect(page.get_by_role("row", name=re.compile(workflow_id))).to_contain_text("awaiting approval")
    await page.goto(f"/#/crises/{workflow_id}")
    await expect(header_status(page)).to_have_text(re.compile(r"awaiting approval of gate-2 \(0 of 2\)$"))
    await http.post(f"/v1/crises/{workflow_id}/phases/gate-2/approve", headers=service_tokens.headers("approver-1"))
    await expect(header_status(page)).to_have_text(re.compile(r"awaiting approval of gate-2 \(1 of 2\)$"))
    await screenshot(page, "crisis-awaiting-status")
    await http.post(f"/v1/crises/{workflow_id}/cancel", headers=service_tokens.headers("operator-1"))
    await expect(header_status(page)).to_have_text(re.compile(r"cancelled$"))
    await page.goto(f"/#/crises?target={target}")
    await expect(page.get_by_role("row", name=re.compile(workflow_id))).to_contain_text("cancelled")

    # A crisis on a task queue no worker polls says so where its status is.
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    unpolled = LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=queue)
    stranded = await unpolled.trigger_crisis_response(target, [phase("recon-1")], "ops-1")
    try:
        await expect(page.get_by_role("row", name=re.compile(stranded))).to_contain_text("running")
        await page.goto(f"/#/crises/{stranded}")
        await expect(header_status(page)).to_have_text(re.compile(rf"running\s*no worker polls task queue {queue}$"))
    finally:
        await dev_server.client.get_workflow_handle(stranded).terminate("test over")

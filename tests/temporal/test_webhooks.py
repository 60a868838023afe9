"""Webhook notifications: signed, retried while the receiver is down, once per event id.

A real HTTP receiver on this machine refuses the first deliveries (nothing listens at first, then
it answers 503 once); a crisis naming the webhook runs on the dev server with an in-process crisis worker and
an in-process notification worker; every event arrives, signed, exactly once per event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from app.temporal.crisis.phases import MAX_FAILURES_TOLD
from app.temporal.errors import LiaraError
from app.temporal.models import PhaseStatus
from app.temporal.notifications import (
    REFUSED_ERROR,
    SIGNATURE_HEADER,
    WebhookBook,
    WebhookConfigError,
    WebhookDeliverer,
    WebhookDelivery,
    WebhookDeliveryWorkflow,
    WebhookEvent,
    load_webhooks,
    sign,
    verify_signature,
)
from app.temporal.records import FileRecordStore
from cognition.liara.notifier import configured_webhooks, notifier_worker
from tests.helpers import assert_eventually
from tests.helpers.servers import time_skipping_server
from tests.helpers.webhooks import SECRET, Receiver, webhook_config
from tests.helpers.workflows import Agents, crisis_worker, phase, start, until, worker
from tests.helpers.workflows import request as crisis

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this module's own: the deliveries its crisis starts on a queue no
    worker polls stay pending, and hold that server's clock for good; on the session's server they
    made every later module's timers and retry backoffs take their full time.
    """
    async with time_skipping_server() as env:
        yield env


def book_for(url: str) -> WebhookBook:
    return load_webhooks({"ops": {"url": url, "secret_env": "OPS_SECRET"}}, "liara.toml", {"OPS_SECRET": SECRET})


def ops_delivery(workflow_id: str, event_id: int) -> str:
    """The workflow id of the delivery of this event to the ``ops`` webhook."""
    return f"{workflow_id}-webhook-{event_id}-ops"


async def delivery_attempts(client: Client, delivery: str) -> tuple[int, str]:
    """The attempt a delivery is at, and why the last one failed."""
    try:
        described = await client.get_workflow_handle(delivery).describe()
    except RPCError:  # not started yet
        return 0, ""
    pending = described.raw_description.pending_activities
    return (pending[0].attempt, pending[0].last_failure.message) if pending else (0, "")


async def test_every_event_reaches_a_receiver_that_was_down_once_per_event_id(
    dev_server, task_queue, tmp_path: Path, agency, monkeypatch
):
    notifications = f"notify-{uuid.uuid4()}"
    monkeypatch.setenv("LIARA_NOTIFICATION_TASK_QUEUE", notifications)
    receiver = Receiver(refusals=1, listening=False)
    # The crisis may name ops: the configuration where it starts defines it.
    monkeypatch.setenv("LIARA_CONFIG", str(webhook_config(tmp_path, receiver.url)))
    deliverer = WebhookDeliverer(book_for(receiver.url))
    notifier = Worker(
        dev_server.client,
        task_queue=notifications,
        workflows=[WebhookDeliveryWorkflow],
        activities=[deliverer.deliver_webhook],
    )
    try:
        async with worker(dev_server, task_queue, tmp_path), notifier:
            workflow_id = await agency.trigger_crisis_response(
                "target-alpha",
                [
                    phase("strike-1", "strike", 1, requires_approval=True),
                    phase("fail-2", "fail", 2, params={"fail": "permanent"}),
                ],
                "tester",
                webhooks=["ops"],
            )
            await until(agency, workflow_id, "strike-1", PhaseStatus.AWAITING_APPROVAL)
            async with contextlib.aclosing(agency.crisis_events(workflow_id)) as events:
                first_id = -1
                async for event in events:
                    if event["event"] == "approval_required":
                        first_id = event["id"]
                        break

            async def refused_twice() -> bool:
                attempt, failure = await delivery_attempts(dev_server.client, ops_delivery(workflow_id, first_id))
                return attempt >= 3 and "could not be reached" in failure

            await assert_eventually(refused_twice, timeout=60, interval=0.3)
            assert receiver.requests == [], "nothing listened"
            receiver.up()
            await agency.approve_phase(workflow_id, "strike-1", approved_by="alice")
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

            async def all_three() -> bool:
                return receiver.accepted_events() == {"approval_required", "phase_failed", "finished"}

            await assert_eventually(all_three, timeout=90, interval=0.5)
            # Once every delivery has ended no attempt can follow: the counts are final.
            for event_id in receiver.accepted_per_event():
                assert await dev_server.client.get_workflow_handle(ops_delivery(workflow_id, event_id)).result() == 204
    finally:
        receiver.close()

    assert result["status"] == "failed"
    assert receiver.requests[0]["status"] == 503, "up, it refused the first request"
    assert len(receiver.accepted_per_event()) == 3
    assert set(receiver.accepted_per_event().values()) == {1}, "each event id taken exactly once"
    for request in receiver.accepted():
        body = json.loads(request["body"])
        assert (body["workflow_id"], body["crisis_id"]) == (workflow_id, result["crisis_id"])
        assert request["headers"]["Idempotency-Key"] == f"{workflow_id}/{body['event_id']}"
        assert verify_signature(SECRET.encode(), request["headers"][SIGNATURE_HEADER], request["body"])
    bodies = [json.loads(r["body"]) for r in receiver.accepted()]
    failed = next(body for body in bodies if body["event"] == "phase_failed")
    assert failed["data"]["phase_id"] == "fail-2"
    refused_id = json.loads(receiver.requests[0]["body"])["event_id"]
    assert refused_id in receiver.accepted_per_event(), "a refused event was delivered again later, with the same id"


async def test_a_webhook_for_all_crises_hears_of_crises_that_do_not_name_it(
    dev_server, task_queue, tmp_path: Path, agency, monkeypatch
):
    receiver = Receiver()
    config = tmp_path / "liara.toml"
    config.write_text(
        f'[webhooks.ops]\nurl = "{receiver.url}"\nsecret_env = "OPS_SECRET"\nall_crises = true\n'
        f'[webhooks.other]\nurl = "{receiver.url}/other"\nsecret_env = "OPS_SECRET"\n'
    )
    monkeypatch.setenv("LIARA_CONFIG", str(config))
    monkeypatch.setenv("OPS_SECRET", SECRET)
    notifications = f"notify-{uuid.uuid4()}"
    monkeypatch.setenv("LIARA_NOTIFICATION_TASK_QUEUE", notifications)
    notifier = notifier_worker(dev_server.client, configured_webhooks())
    try:
        async with worker(dev_server, task_queue, tmp_path), notifier:
            unnamed = await agency.trigger_crisis_response("target-alpha", [phase("recon-1", "recon", 1)], "tester")
            named = await agency.trigger_crisis_response(
                "target-alpha", [phase("recon-1", "recon", 1)], "tester", webhooks=["ops", "other"]
            )
            for workflow_id in (unnamed, named):
                await agency.wait_for_crisis_completion(workflow_id, timeout=60)

            async def both_finished() -> bool:
                told = {(json.loads(r["body"])["workflow_id"], r["path"]) for r in receiver.accepted()}
                return told >= {(unnamed, "/hooks"), (named, "/hooks"), (named, "/hooks/other")}

            await assert_eventually(both_finished, timeout=60, interval=0.5)
    finally:
        receiver.close()
    told = Counter((json.loads(r["body"])["workflow_id"], r["path"]) for r in receiver.accepted())
    assert told == {(unnamed, "/hooks"): 1, (named, "/hooks"): 1, (named, "/hooks/other"): 1}, "ops once per crisis"


def test_a_signature_is_refused_when_tampered_with_or_stale() -> None:
    body = b'{"event": "finished"}'
    header = sign(SECRET.encode(), body)
    assert verify_signature(SECRET.encode(), header, body)
    assert not verify_signature(SECRET.encode(), header, body + b" ")
    assert not verify_signature(b"another-secret-of-16-chars", header, body)
    stale = sign(SECRET.encode(), body, timestamp=1_000_000_000)
    assert not verify_signature(SECRET.encode(), stale, body), "a captured request cannot be replayed later"
    assert not verify_signature(SECRET.encode(), "garbage", body)


@pytest.mark.parametrize(
    ("table", "environ", "message"),
    [
        ({"ops": {"url": "ftp://x"}}, {}, "webhooks.ops.url wrongly"),
        ({"ops": {"url": "https://x.example"}}, {}, "give exactly one of secret_env and secret_file"),
        ({"ops": {"url": "https://x.example", "secret_env": "S"}}, {"S": "short"}, "at least 16 characters"),
        ({"ops": {"url": "https://x.example", "secret_env": "S", "colour": 1}}, {"S": SECRET}, "colour"),
    ],
)
def test_a_bad_webhook_table_is_one_sentence(table, environ, message) -> None:
    with pytest.raises(WebhookConfigError) as caught:
        load_webhooks(table, "liara.toml", environ)
    assert message in str(caught.value)
    assert isinstance(caught.value, LiaraError) and "\n" not in str(caught.value)


PLAIN_HTTP = (
    "an http:// URL may only name this machine (localhost, 127.0.0.0/8 or ::1), as it would carry events and "
    "their signatures unencrypted: use https://"
)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.org/liara",
        "http://10.0.0.7:8080/hooks",
        "http://[2001:db8::1]/hooks",
        "http://localhost.example.org/hooks",
        "http://127.0.0.1.nip.io/hooks",
        "http://localhost@hooks.example.org/hooks",  # the host is hooks.example.org
    ],
)
def test_a_webhook_over_plain_http_to_another_machine_is_refused_naming_its_key(url: str) -> None:
    table = {"ops": {"url": url, "secret_env": "S"}}
    with pytest.raises(WebhookConfigError) as caught:
        load_webhooks(table, "Configuration file liara.toml", {"S": SECRET})
    assert str(caught.value) == f"Configuration file liara.toml sets webhooks.ops.url wrongly: {PLAIN_HTTP}."
    assert url not in str(caught.value), "a webhook's URL may hold a secret: never repeated"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.org/liara",
        "http://127.0.0.1:8080/hooks",
        "http://127.8.9.10/hooks",
        "http://localhost/hooks",
        "http://LOCALHOST:9000/hooks",
        "http://[::1]:9000/hooks",
    ],
)
def test_a_webhook_over_https_or_to_this_machine_is_taken(url: str) -> None:
    hook, _ = load_webhooks({"ops": {"url": url, "secret_env": "S"}}, "liara.toml", {"S": SECRET}).get("ops")
    assert hook.url == url


def finished_delivery() -> WebhookDelivery:
    return WebhookDelivery(
        webhook="ops",
        workflow_id="crisis-workflow-crisis-1",
        crisis_id="crisis-1",
        event_id=7,
        event=WebhookEvent.FINISHED,
        at=datetime(2026, 1, 16, tzinfo=UTC),
    )


@pytest.mark.parametrize("status", [200, 410])
async def test_a_receiver_answering_a_huge_body_is_read_no_further_than_the_cap(status: int) -> None:
    """The delivery counts by the status code: 200 delivered, 410 refused; of the 64 MiB answer it
    reads at most the cap and hangs up, so the receiver cannot write it all."""
    answer = 64 * 1024 * 1024
    receiver = Receiver(status=status, answer_bytes=answer)
    try:
        deliver = ActivityEnvironment().run(
            WebhookDeliverer(book_for(receiver.url)).deliver_webhook, finished_delivery()
        )
        if status == 200:
            assert await deliver == 200
        else:
            with pytest.raises(ApplicationError) as refused:
                await deliver
            assert (refused.value.type, refused.value.non_retryable) == (REFUSED_ERROR, True)
            assert refused.value.message == "Webhook 'ops' answered HTTP 410 to event 7."

        async def answered() -> bool:
            return len(receiver.requests) == 1 and receiver.requests[0].get("answered", False)

        await assert_eventually(answered, timeout=60)
    finally:
        receiver.close()
    sent = receiver.requests[0]["sent"]
    assert sent < answer, "the delivery hung up after reading its share"
    assert json.loads(receiver.requests[0]["body"])["event_id"] == 7


def test_a_webhook_subscribes_to_the_events_its_table_names() -> None:
    table = {"ops": {"url": "https://x.example", "secret_env": "S", "events": ["approval_required", "finished"]}}
    hook, _ = load_webhooks(table, "liara.toml", {"S": SECRET}).get("ops")
    assert hook.events == [WebhookEvent.APPROVAL_REQUIRED, WebhookEvent.FINISHED]
    with pytest.raises(WebhookConfigError, match="webhooks.ops.events.0 wrongly"):
        load_webhooks({"ops": {**table["ops"], "events": ["finish"]}}, "liara.toml", {"S": SECRET})


async def test_a_webhook_name_must_be_a_safe_id(agency) -> None:
    with pytest.raises(LiaraError, match="notifications.webhooks.0"):
        await agency.trigger_crisis_response("target-alpha", [phase("p-1", "scan", 1)], webhooks=["no spaces"])
    await asyncio.sleep(0)


async def test_a_crisis_tells_its_webhooks_of_ten_failed_phases_at_most(time_skipping_env, task_queue, tmp_path):
    agents = Agents(failing=("scan",))
    phases = [phase(f"scan-{n:02d}", "scan", n) for n in range(15)]
    told_to = {"webhooks": ["ops"], "task_queue": f"nobody-{task_queue}"}
    failing = crisis("crisis-many-failures", *phases, notifications=told_to)
    store = FileRecordStore(tmp_path / "crises")
    async with crisis_worker(time_skipping_env.client, task_queue, store, agents.perform):
        handle = await start(time_skipping_env, task_queue, failing)
        result = await handle.result()
    assert result.summary.failed_phases == 15
    told = [
        event.start_child_workflow_execution_initiated_event_attributes
        async for event in handle.fetch_history_events()
        if event.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
    events = [json.loads(started.input.payloads[0].data)["event"] for started in told]
    assert Counter(events) == {"phase_failed": MAX_FAILURES_TOLD, "finished": 1}
    last = [json.loads(started.input.payloads[0].data)["data"] for started in told][MAX_FAILURES_TOLD - 1]
    assert last == {"phase_id": "scan-09", "error": "scan went wrong", "last_told": True}

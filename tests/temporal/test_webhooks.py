"""Webhook notifications: signed, retried while the receiver is down, once per event id.

A real HTTP receiver on this machine refuses the first deliveries (503, then not listening at
all); a crisis naming the webhook runs on the dev server with an in-process crisis worker and
an in-process notification worker; every event arrives, signed, exactly once per event id.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.worker import Worker

from app.temporal.errors import LiaraError
from app.temporal.models import PhaseStatus
from app.temporal.notifications import (
    SIGNATURE_HEADER,
    WebhookBook,
    WebhookConfigError,
    WebhookDeliverer,
    WebhookDeliveryWorkflow,
    load_webhooks,
    sign,
    verify_signature,
)
from tests.conftest import assert_eventually
from tests.temporal.test_approvals import until, worker
from tests.temporal.test_crisis_control import phase

pytestmark = pytest.mark.integration

SECRET = "a-webhook-secret-for-tests-1234"


class Receiver:
    """An HTTP receiver that answers 503 to its first ``refusals`` requests, then 204."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(503 if len(receiver.requests) <= receiver.refusals else 204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> dict[int, dict[str, Any]]:
        """The accepted deliveries by event id (the last of each)."""
        accepted = self.requests[self.refusals :]
        return {json.loads(r["body"])["event_id"]: r for r in accepted}


def book_for(url: str) -> WebhookBook:
    return load_webhooks({"ops": {"url": url, "secret_env": "OPS_SECRET"}}, "liara.toml", {"OPS_SECRET": SECRET})


async def test_every_event_reaches_a_receiver_that_was_down_once_per_event_id(
    dev_server, task_queue, tmp_path: Path, agency, monkeypatch
):
    notifications = f"notify-{uuid.uuid4()}"
    monkeypatch.setenv("LIARA_NOTIFICATION_TASK_QUEUE", notifications)
    receiver = Receiver(refusals=3)
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
            await agency.approve_phase(workflow_id, "strike-1", approved_by="alice")
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)

            async def all_three() -> bool:
                kinds = {json.loads(r["body"])["event"] for r in receiver.delivered().values()}
                return kinds == {"approval_required", "phase_failed", "finished"}

            await assert_eventually(all_three, timeout=90, interval=0.5)
    finally:
        receiver.close()

    assert result["status"] == "failed"
    delivered = receiver.delivered()
    assert len(delivered) == 3, "each event once (the refused attempts aside)"
    for event_id, request in delivered.items():
        body = json.loads(request["body"])
        assert (body["workflow_id"], body["crisis_id"]) == (workflow_id, result["crisis_id"])
        assert request["headers"]["Idempotency-Key"] == f"{workflow_id}/{event_id}"
        assert verify_signature(SECRET.encode(), request["headers"][SIGNATURE_HEADER], request["body"])
    failed = next(json.loads(r["body"]) for r in delivered.values() if json.loads(r["body"])["event"] == "phase_failed")
    assert failed["data"]["phase_id"] == "fail-2"
    refused_ids = {json.loads(r["body"])["event_id"] for r in receiver.requests[: receiver.refusals]}
    assert refused_ids <= set(delivered), "a refused event was delivered again later, with the same id"


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


async def test_a_webhook_name_must_be_a_safe_id(agency) -> None:
    with pytest.raises(LiaraError, match="notifications.webhooks.0"):
        await agency.trigger_crisis_response("target-alpha", [phase("p-1", "scan", 1)], webhooks=["no spaces"])
    await asyncio.sleep(0)

"""Crisis ids and the workflow ids built from them stay byte for byte what they were: running
crises, their records, schedules' runs and webhook receivers all know crises by them."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from app.temporal import identity
from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.identity import (
    MAX_SCHEDULE_NAME_LENGTH,
    WORKFLOW_ID_PREFIX,
    crisis_id_for_key,
    deliveries_prefix,
    delivery_of,
    delivery_workflow_id,
    new_crisis_id,
    reserved_crisis_id,
    schedule_request_crisis_id,
    scheduled_crisis_id,
    scheduled_workflow_id,
    workflow_id_for,
)
from app.temporal.models import MAX_ID_LENGTH
from app.temporal.notifications import WebhookDelivery, WebhookEvent


def test_a_crisis_workflow_id_is_the_prefix_and_the_crisis_id_and_back() -> None:
    assert WORKFLOW_ID_PREFIX == "crisis-workflow-"
    assert workflow_id_for("crisis-target-alpha-1") == "crisis-workflow-crisis-target-alpha-1"
    assert scheduled_crisis_id("crisis-workflow-crisis-target-alpha-1") == "crisis-target-alpha-1"


def test_a_generated_crisis_id_names_its_target_the_second_and_a_random_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "time", SimpleNamespace(time=lambda: 1768559400.75))
    monkeypatch.setattr(identity, "secrets", SimpleNamespace(token_hex=lambda n: "ab" * n))
    assert new_crisis_id("target-alpha") == "crisis-target-alpha-1768559400-abababababab"
    longest = new_crisis_id("t" * MAX_ID_LENGTH)
    assert len(longest) == MAX_ID_LENGTH and longest == "crisis-" + "t" * 97 + "-1768559400-abababababab"


def test_an_idempotency_key_stands_for_one_crisis_id() -> None:
    assert crisis_id_for_key("abc") == "crisis-key-ba7816bf8f01cfea414140de5dae2223"
    assert crisis_id_for_key("k" * 255) == crisis_id_for_key("k" * 255)
    for key in ("", "k" * 256):
        with pytest.raises(InvalidCrisisRequestError) as raised:
            crisis_id_for_key(key)
        assert str(raised.value) == f"An idempotency key has 1 to 255 characters, not {len(key)}."


def test_a_schedules_runs_are_named_after_it_and_the_time_each_was_due() -> None:
    assert scheduled_workflow_id("nightly") == "crisis-workflow-sched-nightly"
    assert schedule_request_crisis_id("nightly") == "scheduled-nightly"
    run = scheduled_workflow_id("nightly") + "-2026-12-02T03:00:00Z"  # as Temporal starts it
    assert scheduled_crisis_id(run) == "sched-nightly-2026-12-02T03-00-00Z"
    assert MAX_SCHEDULE_NAME_LENGTH == 101
    longest = scheduled_crisis_id(scheduled_workflow_id("n" * MAX_SCHEDULE_NAME_LENGTH) + "-2026-12-02T03:00:00Z")
    assert len(longest) == MAX_ID_LENGTH and longest.endswith("-2026-12-02T03-00-00Z")


def test_a_caller_may_not_give_the_crisis_ids_of_schedules_runs_or_of_idempotency_keys() -> None:
    run = scheduled_crisis_id(scheduled_workflow_id("nightly") + "-2026-12-02T03:00:00Z")
    schedules = "begins with sched-, which only the runs of schedules take; choose another crisis id"
    keys = (
        "has the form crisis-key-<32 hex digits>, which only the crises of idempotency keys take; "
        "choose another crisis id"
    )
    for crisis_id in (run, "sched-nightly", "sched-", "SCHED-nightly-2026-12-02T03-00-00Z"):
        assert reserved_crisis_id(crisis_id) == schedules, crisis_id
    for crisis_id in (
        crisis_id_for_key("abc"),
        "crisis-key-" + "0" * 32,
        "CRISIS-KEY-BA7816BF8F01CFEA414140DE5DAE2223",
    ):
        assert reserved_crisis_id(crisis_id) == keys, crisis_id
    # Neither form: the agency's generated ids, a schedule's request's, and ids that only look alike.
    for crisis_id in (
        new_crisis_id("target-alpha"),
        new_crisis_id("key-target"),
        schedule_request_crisis_id("nightly"),
        "schedule-nightly",
        "crisis-key-rotation",
        "crisis-key-" + "0" * 31,
        "crisis-key-" + "0" * 33,
        "crisis-1",
    ):
        assert reserved_crisis_id(crisis_id) is None, crisis_id


def test_a_webhook_delivery_is_named_by_its_crisis_event_and_webhook() -> None:
    delivery = WebhookDelivery(
        webhook="ops",
        workflow_id="crisis-workflow-crisis-1",
        crisis_id="crisis-1",
        event_id=7,
        event=WebhookEvent.FINISHED,
        at=datetime(2026, 1, 16, tzinfo=UTC),
    )
    assert delivery_workflow_id(delivery) == "crisis-workflow-crisis-1-webhook-7-ops"
    assert deliveries_prefix("crisis-workflow-crisis-1") == "crisis-workflow-crisis-1-webhook-"
    assert delivery_of(delivery_workflow_id(delivery), "crisis-workflow-crisis-1") == (7, "ops")
    assert delivery_of("crisis-workflow-crisis-1-webhook-12-ops-2.eu", "crisis-workflow-crisis-1") == (12, "ops-2.eu")
    # Another crisis's delivery (its workflow id begins with this one's), or no delivery at all.
    assert delivery_of("crisis-workflow-crisis-1-webhook-7-ops", "crisis-workflow-crisis") is None
    assert delivery_of("crisis-workflow-crisis-1-webhook-x-ops", "crisis-workflow-crisis-1") is None
    assert delivery_of("crisis-workflow-crisis-1", "crisis-workflow-crisis-1") is None

"""How crises are named: crisis ids, the workflow ids built from them, and back.

Every part that builds or reads these ids (the agency, the crisis workflow, schedules, webhook
deliveries, records) goes through this module, so they agree byte for byte: running crises,
their records and their receivers' deduplication all rely on ids staying what they were.

- A crisis's workflow id is ``crisis-workflow-<crisis id>``.
- A crisis id is given, generated (``crisis-<target>-<unix seconds>-<random>``) or stands for an
  idempotency key (``crisis-key-<first 32 hex digits of its SHA-256>``).
- A schedule starts its runs as ``crisis-workflow-sched-<name>``, to which Temporal appends the
  time each was due; each run's crisis id is its workflow id without the prefix, made safe.
- A caller may not give a crisis id of the agency's own forms (``reserved_crisis_id``): one
  beginning ``sched-`` (a schedule's run) or ``crisis-key-`` and 32 hex digits (an idempotency
  key's crisis).
- One event's delivery to one webhook is the workflow ``<crisis workflow id>-webhook-<event
  id>-<webhook>``; ``delivery_of`` reads the event id and webhook back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Protocol

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import MAX_ID_LENGTH

#: Every crisis's workflow id is this prefix and its crisis id.
WORKFLOW_ID_PREFIX = "crisis-workflow-"
MAX_IDEMPOTENCY_KEY_LENGTH = 255
_SCHEDULE_PREFIX = "sched-"
#: An idempotency key's crisis id is this prefix and the first 32 hex digits of the key's SHA-256.
_KEY_PREFIX = "crisis-key-"
_KEY_DIGITS = 32
#: How Temporal marks the time a schedule's run was due, e.g. ``-2026-12-02T03:00:00Z``.
_DUE_TIME_EXAMPLE = "-2026-12-02T03:00:00Z"


class Delivery(Protocol):
    """What names a webhook delivery (app.temporal.notifications.WebhookDelivery)."""

    @property
    def workflow_id(self) -> str: ...

    @property
    def event_id(self) -> int: ...

    @property
    def webhook(self) -> str: ...


def workflow_id_for(crisis_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{crisis_id}"


def new_crisis_id(target_member: str) -> str:
    """``crisis-<target>-<unix seconds>-<random>``: unique even for one target within a second."""
    suffix = f"{int(time.time())}-{secrets.token_hex(6)}"
    return f"crisis-{target_member[: MAX_ID_LENGTH - len(suffix) - 8]}-{suffix}"


def crisis_id_for_key(idempotency_key: str) -> str:
    """The crisis id an idempotency key stands for: the same key, the same crisis."""
    if not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidCrisisRequestError(
            f"An idempotency key has 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters, not {len(idempotency_key)}."
        )
    return _KEY_PREFIX + hashlib.sha256(idempotency_key.encode()).hexdigest()[:_KEY_DIGITS]


def reserved_crisis_id(crisis_id: str) -> str | None:
    """Why a caller may not give ``crisis_id`` itself (None: it may). Crisis ids beginning
    ``sched-`` are those of schedules' runs, and ``crisis-key-`` with 32 hex digits those of
    idempotency keys (either in any case, for a file system that ignores it): a crisis a caller
    started under such an id would hold the record of a run a schedule has yet to start, which
    would then wait on a record that is not its own, or be the crisis of a key it was never sent
    with. The agency's own ids (generated, from a key, a schedule's run's) are never refused.
    """
    if crisis_id.lower().startswith(_SCHEDULE_PREFIX):
        return f"begins with {_SCHEDULE_PREFIX}, which only the runs of schedules take; choose another crisis id"
    if re.fullmatch(rf"{_KEY_PREFIX}[0-9a-f]{{{_KEY_DIGITS}}}", crisis_id, re.IGNORECASE):
        return (
            f"has the form {_KEY_PREFIX}<{_KEY_DIGITS} hex digits>, which only the crises of idempotency keys take; "
            "choose another crisis id"
        )
    return None


def scheduled_workflow_id(schedule: str) -> str:
    """The workflow id a schedule gives its runs (Temporal adds the time each was due)."""
    return f"{WORKFLOW_ID_PREFIX}{_SCHEDULE_PREFIX}{schedule}"


def schedule_request_crisis_id(schedule: str) -> str:
    """The crisis id of the request a schedule keeps; each run replaces it with its own."""
    return f"scheduled-{schedule}"


def scheduled_crisis_id(workflow_id: str) -> str:
    """The crisis id of a crisis's workflow id: without the prefix, as a safe id. For a run a
    schedule started, whose workflow id is the schedule's plus the time it was due, that is its
    own crisis id; for any other crisis, the crisis id it was started with.
    """
    return re.sub(r"[^A-Za-z0-9._-]", "-", workflow_id.removeprefix(WORKFLOW_ID_PREFIX))[:MAX_ID_LENGTH]


def workflow_ids_for(crisis_id: str) -> list[str]:
    """The workflow ids a crisis with this crisis id may have: ``crisis-workflow-<crisis id>``
    and, for a run a schedule started (``sched-<name>-2026-12-02T03-00-00Z``, as ``liara record
    list`` shows it), the schedule's workflow id with the time it was due
    (``crisis-workflow-sched-<name>-2026-12-02T03:00:00Z``).
    """
    ids = [workflow_id_for(crisis_id)]
    run = re.fullmatch(r"(sched-.+-\d{4}-\d{2}-\d{2}T\d{2})-(\d{2})-(\d{2}(?:\.\d+)?Z)", crisis_id)
    if run:
        ids.append(f"{WORKFLOW_ID_PREFIX}{run[1]}:{run[2]}:{run[3]}")
    return ids


#: Longest schedule name whose runs' crisis ids (``sched-<name>-2026-12-02T03-00-00Z``) still fit
#: in a safe id with the time each run was due: a longer one would be cut and runs would share it.
MAX_SCHEDULE_NAME_LENGTH = MAX_ID_LENGTH - len(scheduled_crisis_id(scheduled_workflow_id("") + _DUE_TIME_EXAMPLE))


def delivery_workflow_id(delivery: Delivery) -> str:
    """The workflow of one event's delivery to one webhook: a crisis starts it at most once."""
    return f"{deliveries_prefix(delivery.workflow_id)}{delivery.event_id}-{delivery.webhook}"


def deliveries_prefix(crisis_workflow_id: str) -> str:
    """What the workflow id of every delivery of a crisis's events begins with."""
    return f"{crisis_workflow_id}-webhook-"


def delivery_of(delivery_id: str, crisis_workflow_id: str) -> tuple[int, str] | None:
    """``(event id, webhook)`` of a delivery of this crisis's events, from its workflow id; None
    for any other workflow id.
    """
    prefix = deliveries_prefix(crisis_workflow_id)
    found = re.fullmatch(r"(\d+)-(.+)", delivery_id[len(prefix) :]) if delivery_id.startswith(prefix) else None
    return (int(found[1]), found[2]) if found else None

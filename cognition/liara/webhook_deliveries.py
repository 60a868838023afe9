"""A crisis's webhook deliveries that are still pending, and ending them: ``liara webhook list|cancel``.

A delivery is retried for up to a week while its receiver fails (app.temporal.notifications); one
that will never succeed (a receiver gone for good, a webhook the notifier does not know) is
ended here. Deliveries are found through Temporal's visibility: running ``WebhookDeliveryWorkflow``
executions whose workflow id follows the delivery id rule of app.temporal.identity for the
crisis (a delivery started a moment ago may take a second or two to be listed). Each is
described, for its attempt and last failure, and kept only if the crisis started it. They may
outlive the crisis's own workflow (Temporal's retention can remove it before their week is out).

Ending one terminates its workflow, with who ended it as the reason: it has nothing to undo, and
it ends at once whether or not a notifier runs (a cancel would wait for one to take it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from app.temporal.client import ConnectionSettings
from app.temporal.identity import deliveries_prefix, delivery_of
from app.temporal.notifications import WebhookDeliveryWorkflow
from app.temporal.visibility import quote_literal
from cognition.liara.rpc_errors import translate_rpc_error


async def pending(
    client: Client, settings: ConnectionSettings, workflow_id: str, webhooks: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The crisis's deliveries still under way (to ``webhooks`` only, if given), by event id:
    each one's ``delivery_id`` (its workflow id), ``event_id``, ``webhook``, the ``attempt`` it is
    at and its ``last_failure`` (None before a first failure).
    """
    only = set(webhooks or [])
    try:
        query = (
            f"WorkflowType = {quote_literal(WebhookDeliveryWorkflow.__name__)} AND ExecutionStatus = 'Running' "
            f"AND WorkflowId STARTS_WITH {quote_literal(deliveries_prefix(workflow_id))}"
        )
        rows = []
        async for execution in client.list_workflows(query):
            named = delivery_of(execution.id, workflow_id)
            if named is None or (only and named[1] not in only):
                continue
            row = await _described(client, execution.id, workflow_id, *named)
            if row is not None:
                rows.append(row)
        if not rows:
            # None pending, or no such crisis (its deliveries may outlive it: they are listed first).
            await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        raise translate_rpc_error(err, settings, workflow_id) from None
    return sorted(rows, key=lambda row: (row["event_id"], row["webhook"]))


async def cancel(
    client: Client,
    settings: ConnectionSettings,
    workflow_id: str,
    webhooks: Iterable[str] | None = None,
    *,
    cancelled_by: str,
) -> list[dict[str, Any]]:
    """End the crisis's pending deliveries (to ``webhooks`` only, if given); return those ended,
    as ``pending`` lists them (one that ended meanwhile is left out).
    """
    ended = []
    for row in await pending(client, settings, workflow_id, webhooks):
        try:
            await client.get_workflow_handle(row["delivery_id"]).terminate(
                reason=f"cancelled by {cancelled_by} with liara webhook cancel"
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                continue  # it ended meanwhile (delivered, refused or cancelled by someone else)
            raise translate_rpc_error(err, settings, workflow_id) from None
        ended.append(row)
    return ended


async def _described(
    client: Client, delivery_id: str, workflow_id: str, event_id: int, webhook: str
) -> dict[str, Any] | None:
    try:
        described = await client.get_workflow_handle(delivery_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if described.parent_id != workflow_id or described.status != WorkflowExecutionStatus.RUNNING:
        return None  # another crisis's (whose id begins like this one's), or over since it was listed
    activities = described.raw_description.pending_activities
    attempt = activities[0].attempt if activities else 0
    failure = activities[0].last_failure.message if activities and activities[0].HasField("last_failure") else None
    return {
        "delivery_id": delivery_id,
        "event_id": event_id,
        "webhook": webhook,
        "attempt": attempt,
        "last_failure": failure or None,
    }

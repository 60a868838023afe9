"""What a Temporal error means to a caller of the agency: a ``LiaraError`` saying it in one sentence."""

from __future__ import annotations

from temporalio.service import RPCError, RPCStatusCode

from app.temporal.client import START_SERVER_HINT, ConnectionSettings
from app.temporal.errors import LiaraError, TemporalUnavailableError
from cognition.liara.errors import CrisisNotFoundError, CrisisNotRunningError, TemporalBusyError


def translate_rpc_error(err: RPCError, settings: ConnectionSettings, workflow_id: str = "") -> LiaraError:
    """``err`` as the caller's error (``workflow_id`` is "" for a request about no crisis in particular)."""
    message = err.message.lower()
    # Just after a namespace is deleted, the server also says so as UNAVAILABLE.
    namespace_gone = "namespace" in message and "not found" in message
    if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.UNAVAILABLE) and namespace_gone:
        return TemporalUnavailableError(
            f"Namespace {settings.namespace!r} no longer exists on the Temporal server at "
            f"{settings.address}: create it again or set TEMPORAL_NAMESPACE."
        )
    if err.status == RPCStatusCode.NOT_FOUND and "completed" in message:
        return CrisisNotRunningError(f"Crisis workflow {workflow_id} has already ended.")
    if err.status == RPCStatusCode.NOT_FOUND:
        return no_such_crisis(settings, workflow_id)
    if err.status == RPCStatusCode.FAILED_PRECONDITION and "poller" in message:
        return TemporalUnavailableError(
            f"No worker answered for {workflow_id}: start one with `python cognition/liara/worker.py`."
        )
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return TemporalUnavailableError(f"Lost the Temporal server at {settings.address}: {START_SERVER_HINT}.")
    subject = f"crisis workflow {workflow_id}" if workflow_id else f"namespace {settings.namespace!r}"
    if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return TemporalBusyError(
            f"Temporal cannot take this request for {subject} now ({err.message}): try again in a moment."
        )
    return TemporalUnavailableError(
        f"The Temporal server at {settings.address} refused the request for {subject} ({err.message})."
    )


def no_such_crisis(settings: ConnectionSettings, workflow_id: str) -> CrisisNotFoundError:
    """``workflow_id`` names no crisis workflow (no workflow at all, or one of another type)."""
    return CrisisNotFoundError(
        f"No crisis workflow {workflow_id!r} in namespace {settings.namespace!r}: "
        "check the id printed by `liara trigger`."
    )

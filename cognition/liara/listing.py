"""Crises as Temporal's visibility store lists them, newest first, one page at a time: each page
gives out a cursor that names the next one.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode

from app.temporal.client import ConnectionSettings
from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.visibility import CRISIS_INITIATED_BY, CRISIS_STATUS, CRISIS_TARGET
from cognition.liara.diagnostics import status_name
from cognition.liara.rpc_errors import translate_rpc_error

_BAD_CURSOR = "The cursor is not one this listing gave out: start again without it."


async def crisis_page(
    client: Client, settings: ConnectionSettings, query: str, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Up to ``limit`` crises the visibility ``query`` finds, after the page ``cursor`` names (from
    the first if None): their rows as ``crises`` and the ``next_cursor`` (None after the last page).
    """
    pages = client.list_workflows(query, page_size=limit, next_page_token=_page_token(cursor))
    try:
        await pages.fetch_next_page()
    except RPCError as err:
        unavailable = err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
        if cursor is not None and not unavailable:
            raise InvalidCrisisRequestError(_BAD_CURSOR) from None
        raise translate_rpc_error(err, settings) from None
    rows = [_listed(execution) for execution in pages.current_page or []]
    following = pages.next_page_token
    return {"crises": rows, "next_cursor": _cursor(following) if following else None}


def _listed(execution: WorkflowExecution) -> dict[str, Any]:
    attributes = execution.typed_search_attributes
    return {
        "workflow_id": execution.id,
        "target": attributes.get(CRISIS_TARGET),
        "crisis_status": attributes.get(CRISIS_STATUS),
        "initiated_by": attributes.get(CRISIS_INITIATED_BY),
        "status": status_name(execution.status),
        "started_at": execution.start_time.isoformat(),
    }


def _cursor(page_token: bytes) -> str:
    """A page token as a cursor: URL-safe base64, with a checksum that tells a mangled one."""
    return base64.urlsafe_b64encode(hashlib.sha256(page_token).digest()[:4] + page_token).decode()


def _page_token(cursor: str | None) -> bytes | None:
    """The server's page token a cursor carries."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise InvalidCrisisRequestError(_BAD_CURSOR) from None
    checksum, token = raw[:4], raw[4:]
    if not token or hashlib.sha256(token).digest()[:4] != checksum:
        raise InvalidCrisisRequestError(_BAD_CURSOR)
    return token

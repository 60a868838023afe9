"""The command line's crisis commands over a remote ``liara serve`` instead of Temporal
(``liara --api URL --token TOKEN ...``, or ``LIARA_API_URL`` and ``LIARA_API_TOKEN``).

``RemoteAgency`` is a ``CrisisAgency``, as ``LiaraTemporalAgency`` is: each method one HTTP
request (or a few, for a long wait or a long listing), so an operator needs no cluster
credentials. The service decides who acts (the token's name); a problem it answers with becomes
the agency's own error again, with the service's sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from app.temporal.errors import LiaraError, TemporalUnavailableError
from app.temporal.models import MissionPhase
from app.temporal.visibility import CrisisFilter
from cognition.liara.crisis_agency import WORKER_WAIT_SECONDS
from cognition.liara.errors import CrisisFailedError, CrisisWaitTimeoutError
from cognition.liara.playbooks import SUFFIXES, load
from cognition.liara.service.config import MAX_PAGE_SIZE
from cognition.liara.service.problem_types import LIARA_PROBLEMS

API_URL_ENV = "LIARA_API_URL"
API_TOKEN_ENV = "LIARA_API_TOKEN"
#: The longest wait of one result request; a longer wait is several.
LONG_POLL_SECONDS = 30.0
_ERRORS_BY_SLUG = {kind.slug: error for error, kind in LIARA_PROBLEMS.items()}


class ServiceRefusedError(LiaraError):
    """The service refused the request (no token, a role that does not allow it, a limit)."""


class RemoteAgency:
    """The ``CrisisAgency`` methods of ``LiaraTemporalAgency``, over the HTTP service at ``url``."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=LONG_POLL_SECONDS + 30)

    async def __aenter__(self) -> RemoteAgency:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def start_crisis(
        self,
        target_member: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        initiated_by: str = "unknown",  # the service records the token's name instead
        *,
        crisis_id: str | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        phases = [m.model_dump(mode="json") if isinstance(m, MissionPhase) else dict(m) for m in missions]
        body = {"target_member": target_member, "missions": phases, **_given({"crisis_id": crisis_id, **options})}
        return await self._call("POST", "/v1/crises", json=body, headers=_keyed(idempotency_key))

    async def start_playbook(
        self, playbook: str | Path, inputs: Mapping[str, Any] | None = None, initiated_by: str = "unknown", **start: Any
    ) -> dict[str, Any]:
        """A playbook of the service's directory by name; a file of this machine, rendered here."""
        if isinstance(playbook, Path) or Path(playbook).suffix in SUFFIXES:
            fields = load(Path(playbook)).render(inputs or {})
            fields.pop("playbook")
            fields.update(_given(start))
            return await self.start_crisis(fields.pop("target_member"), fields.pop("missions"), **fields)
        key = start.pop("idempotency_key", None)
        body = {"inputs": dict(inputs or {}), **_given(start)}
        return await self._call("POST", f"/v1/playbooks/{playbook}/crises", json=body, headers=_keyed(key))

    async def get_crisis_status(self, workflow_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/crises/{workflow_id}")

    async def wait_for_crisis_completion(self, workflow_id: str, timeout: float | None = None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = LONG_POLL_SECONDS if deadline is None else max(0.0, deadline - loop.time())
            outcome = await self._call("GET", f"/v1/crises/{workflow_id}/result", params={"wait": min(left, 30)})
            if outcome["status"] == "completed":
                return outcome["result"]
            if outcome["status"] != "running":
                ended = outcome.get("error") or f"Crisis workflow {workflow_id} ended as {outcome['status']}."
                raise CrisisFailedError(ended, outcome["status"])
            if deadline is not None and loop.time() >= deadline:
                raise CrisisWaitTimeoutError(
                    f"Crisis workflow {workflow_id} did not finish within {timeout:g} s; it keeps running: "
                    f"check it with `liara status {workflow_id}`."
                )

    async def cancel_crisis(self, workflow_id: str, *, cancelled_by: str | None = None) -> None:
        await self._call("POST", f"/v1/crises/{workflow_id}/cancel")

    async def approve_phase(
        self, workflow_id: str, phase_id: str, approved_by: str, *, timeout: float = WORKER_WAIT_SECONDS
    ) -> dict[str, Any]:
        return await self._call("POST", f"/v1/crises/{workflow_id}/phases/{phase_id}/approve")

    async def reject_phase(
        self,
        workflow_id: str,
        phase_id: str,
        rejected_by: str,
        reason: str | None = None,
        *,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        body = {"reason": reason} if reason else {}
        return await self._call("POST", f"/v1/crises/{workflow_id}/phases/{phase_id}/reject", json=body)

    async def add_phases(
        self,
        workflow_id: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        *,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        phases = [m.model_dump(mode="json") if isinstance(m, MissionPhase) else dict(m) for m in missions]
        return await self._call("POST", f"/v1/crises/{workflow_id}/phases", json={"missions": phases})

    async def list_crises(
        self, crisis_filter: CrisisFilter | None = None, **fields: str | int | None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` crises, newest first: as many pages of the service's as that takes."""
        wanted = CrisisFilter.of(crisis_filter, **fields)
        rows: list[dict[str, Any]] = []
        cursor = wanted.cursor
        while len(rows) < wanted.limit:
            page = await self.list_crises_page(
                wanted, limit=min(wanted.limit - len(rows), MAX_PAGE_SIZE), cursor=cursor
            )
            rows += page["crises"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return rows

    async def list_crises_page(
        self, crisis_filter: CrisisFilter | None = None, **fields: str | int | None
    ) -> dict[str, Any]:
        """One page of the service's listing: the filter's fields as the query parameters."""
        selected = CrisisFilter.of(crisis_filter, **fields)
        return await self._call("GET", "/v1/crises", params=selected.model_dump(exclude_none=True))

    async def _call(self, method: str, path: str, **request: Any) -> Any:
        try:
            response = await self._http.request(method, path, **request)
        except httpx.HTTPError as err:
            raise TemporalUnavailableError(
                f"Cannot reach the Liara service at {self.url} ({err or type(err).__name__}): check --api and that "
                "`liara serve` runs there."
            ) from None
        if response.is_success:
            return response.json() if response.content else None
        try:
            problem = response.json()
            detail, slug = problem["detail"], str(problem["type"]).rsplit("/", 1)[-1]
        except (ValueError, KeyError, TypeError):
            raise ServiceRefusedError(
                f"The Liara service at {self.url} answered HTTP {response.status_code} without a problem document."
            ) from None
        error = _ERRORS_BY_SLUG.get(slug, ServiceRefusedError)
        if error is CrisisFailedError:
            raise CrisisFailedError(detail, "failed")
        raise error(detail)


def _given(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that were given (the service leaves the others to its defaults)."""
    return {name: value for name, value in options.items() if value is not None}


def _keyed(idempotency_key: str | None) -> dict[str, str]:
    """The header that makes a start idempotent, if a key is given (the service scopes it to the token)."""
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}

"""The command line's crisis commands over a remote ``liara serve`` instead of Temporal
(``liara --api URL --token TOKEN ...``, or ``LIARA_API_URL`` and ``LIARA_API_TOKEN``).

``RemoteAgency`` is a ``CrisisAgency``, as ``LiaraTemporalAgency`` is: each method one HTTP
request (or a few, for a long wait or a long listing), so an operator needs no cluster
credentials; a crisis's events come from the service's event stream, read once per process
(``event_feeds``) and resumed with ``Last-Event-ID`` when it drops. The service decides who acts
(the token's name); a problem it answers with becomes the agency's own error again, with the
service's sentence (a refused request's with its bad fields, for the command line to name by its
flags). A server that answers as no Liara service
would (a web page, other JSON) is one sentence saying so, never a traceback.

An ``https://`` service's certificate is checked against the usual certificate authorities, or,
if ``SSL_CERT_FILE`` (or ``SSL_CERT_DIR``) is set, against those it names, as OpenSSL and httpx
have it: point it at the CA that signed the service's certificate, or at a self-signed one.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from app.temporal.errors import InvalidCrisisRequestError, LiaraError, TemporalUnavailableError
from app.temporal.loopback import is_loopback_host
from app.temporal.models import MissionPhase
from app.temporal.validation import FieldProblem, InvalidFieldsError, Location
from app.temporal.visibility import CrisisFilter
from cognition.liara.crisis_agency import WORKER_WAIT_SECONDS
from cognition.liara.diagnostics import awaiting_approval
from cognition.liara.errors import CrisisFailedError, CrisisWaitTimeoutError
from cognition.liara.event_feeds import Event, EventFeeds
from cognition.liara.playbooks import SUFFIXES, load
from cognition.liara.service.config import MAX_PAGE_SIZE
from cognition.liara.service.problem_types import LIARA_PROBLEMS

API_URL_ENV = "LIARA_API_URL"
API_TOKEN_ENV = "LIARA_API_TOKEN"
#: The certificate authorities to trust instead of the usual ones (a PEM file; a directory of them).
CA_FILE_ENV = "SSL_CERT_FILE"
CA_DIR_ENV = "SSL_CERT_DIR"
#: The longest wait of one result request; a longer wait is several.
LONG_POLL_SECONDS = 30.0
#: How many times in a row a lost event stream is opened again before following it fails.
STREAM_RETRIES = 5
#: The longest pause before opening a lost event stream again.
STREAM_RETRY_SECONDS = 15.0
#: Statuses of an event stream refused or ended for now (too many open, the service or Temporal
#: unavailable): opened again, like a dropped connection.
_TRANSIENT = frozenset({429, 502, 503, 504})
_ERRORS_BY_SLUG = {kind.slug: error for error, kind in LIARA_PROBLEMS.items()}
_INVALID_REQUEST = "invalid-request"

#: What each answer of the service has at least (its fields and their JSON types): an answer
#: without them does not come from a Liara service.
Shape = dict[str, type | tuple[type, ...]]
STARTED: Shape = {"workflow_id": str, "crisis_id": str, "created": bool}
REPORT: Shape = {"workflow_id": str, "status": str}
OUTCOME: Shape = {"workflow_id": str, "status": str}
CANCELLED: Shape = {"workflow_id": str, "cancelled_by": str}
DECISION: Shape = {"phase_id": str, "approved": bool, "decided_by": str, "approvals": int, "approvals_required": int}
PROGRESS: Shape = {"crisis_id": str, "phases": list}
PAGE: Shape = {"crises": list, "next_cursor": (str, type(None))}


class ServiceRefusedError(LiaraError):
    """The service refused the request (no token, a role that does not allow it, a limit)."""


class NotAServiceError(LiaraError):
    """What answers at the ``--api`` URL is not a Liara service (another web server, the Temporal Web UI)."""


class _StreamLost(Exception):
    """The event stream dropped or was refused for now: open it again (``error`` says why, if it keeps failing)."""

    def __init__(self, error: LiaraError) -> None:
        super().__init__(str(error))
        self.error = error


class RemoteAgency:
    """The ``CrisisAgency`` methods of ``LiaraTemporalAgency``, over the HTTP service at ``url``."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=LONG_POLL_SECONDS + 30, verify=trusted_authorities()
        )
        self._feeds = EventFeeds()

    async def __aenter__(self) -> RemoteAgency:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._feeds.close()  # a stream no one follows any more still waits for its next event
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
        return await self._call("POST", "/v1/crises", STARTED, json=body, headers=_keyed(idempotency_key))

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
        return await self._call("POST", f"/v1/playbooks/{playbook}/crises", STARTED, json=body, headers=_keyed(key))

    async def get_crisis_status(self, workflow_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/crises/{workflow_id}", REPORT)

    def crisis_events(self, workflow_id: str, *, after: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The crisis's events after offset ``after`` (all if None) from the service's event stream,
        as ``LiaraTemporalAgency.crisis_events`` gives them: waits for new ones while it runs and
        ends after ``finished`` (with the result). However many follow a crisis here, one stream
        is open on it.
        """
        return self._feeds.follow(workflow_id, after, lambda: self._read_events(workflow_id))

    async def _read_events(self, workflow_id: str) -> AsyncGenerator[Event, None]:
        """Every event of the crisis's stream, from the first; a stream that drops or ends before
        ``finished`` (the service restarts) is opened again with ``Last-Event-ID``, so no event is
        missed or seen twice, until it fails ``STREAM_RETRIES`` times in a row.
        """
        last: int | None = None
        lost = 0
        while True:
            try:
                async for event in self._event_stream(workflow_id, last):
                    last, lost = event["id"], 0
                    yield event
                    if event["event"] == "finished":
                        return
                error: LiaraError = TemporalUnavailableError(
                    f"The Liara service at {self.url} keeps ending the event stream of {workflow_id} before the "
                    "crisis ends: check that `liara serve` runs there."
                )
            except _StreamLost as dropped:
                error = dropped.error
            lost += 1
            if lost > STREAM_RETRIES:
                raise error
            await asyncio.sleep(min(2.0 ** (lost - 1), STREAM_RETRY_SECONDS))

    async def _event_stream(self, workflow_id: str, after: int | None) -> AsyncIterator[Event]:
        """One request's events (``GET /v1/crises/ID/events``, after ``after``); ``_StreamLost``
        when it drops or is refused for now, the agency's error when it is refused for good.
        """
        path = f"/v1/crises/{workflow_id}/events"
        answered = f"GET {path}"
        headers = {"Accept": "text/event-stream"}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        try:
            async with self._http.stream("GET", path, headers=headers) as response:
                if not response.is_success:
                    await response.aread()
                    refused = self._refusal(response, answered)
                    if response.status_code in _TRANSIENT:
                        raise _StreamLost(refused)
                    raise refused
                media = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if media != "text/event-stream":
                    raise _not_a_service(self.url, answered, f"{media or 'no content type'}, not an event stream")
                async for message in _server_sent(response.aiter_lines()):
                    try:
                        data, kind, offset = json.loads(message["data"]), message.get("event", ""), message.get("id")
                    except ValueError:
                        raise _not_a_service(self.url, answered, "an event whose data is not JSON") from None
                    if kind == "problem":
                        error = _problem_error(data, self.url, answered, "a problem event that is not a problem")
                        if isinstance(data, dict) and data.get("status") in _TRANSIENT:
                            raise _StreamLost(error)
                        raise error
                    if offset is None or not offset.isdigit() or not isinstance(data, dict):
                        raise _not_a_service(self.url, answered, "an event without an id or a JSON object")
                    yield {"id": int(offset), "event": kind, "data": data}
        except httpx.HTTPError as err:
            raise _StreamLost(self._unreachable(err)) from None

    async def wait_for_crisis_completion(self, workflow_id: str, timeout: float | None = None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            left = LONG_POLL_SECONDS if deadline is None else max(0.0, deadline - loop.time())
            outcome = await self._call(
                "GET", f"/v1/crises/{workflow_id}/result", OUTCOME, params={"wait": min(left, 30)}
            )
            if outcome["status"] == "completed":
                return outcome["result"]
            if outcome["status"] != "running":
                ended = outcome.get("error") or f"Crisis workflow {workflow_id} ended as {outcome['status']}."
                raise CrisisFailedError(ended, outcome["status"])
            if deadline is not None and loop.time() >= deadline:
                blocked = await self._blocked(workflow_id)
                if blocked:
                    raise CrisisWaitTimeoutError(
                        f"Crisis workflow {workflow_id} did not finish within {timeout:g} s; it keeps running, but "
                        f"{blocked}."
                    )
                raise CrisisWaitTimeoutError(
                    f"Crisis workflow {workflow_id} did not finish within {timeout:g} s; it keeps running: "
                    f"check it with `liara status {workflow_id}`."
                )

    async def _blocked(self, workflow_id: str) -> str | None:
        """What the crisis waits for, as the service's status tells it (no worker, phases awaiting
        approval), or None if nothing does or the service cannot say now.
        """
        try:
            report = await self.get_crisis_status(workflow_id)
        except LiaraError:
            return None
        if report.get("status") != "running":
            return None
        if report.get("workers_polling") == 0 and isinstance(report.get("note"), str):
            return report["note"]
        gates = awaiting_approval(workflow_id, report.get("phases") or [])
        return f"it is {'; '.join(gates)}" if gates else None

    async def cancel_crisis(self, workflow_id: str, *, cancelled_by: str | None = None) -> None:
        await self._call("POST", f"/v1/crises/{workflow_id}/cancel", CANCELLED)

    async def approve_phase(
        self,
        workflow_id: str,
        phase_id: str,
        approved_by: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        extend_tokens: int | None = None,
        extend_cost: float | None = None,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        given = {
            "arguments": dict(arguments) if arguments is not None else None,
            "extend_tokens": extend_tokens,
            "extend_cost": extend_cost,
        }
        body = {name: value for name, value in given.items() if value is not None}
        return await self._call("POST", f"/v1/crises/{workflow_id}/phases/{phase_id}/approve", DECISION, json=body)

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
        return await self._call("POST", f"/v1/crises/{workflow_id}/phases/{phase_id}/reject", DECISION, json=body)

    async def add_phases(
        self,
        workflow_id: str,
        missions: Iterable[MissionPhase | Mapping[str, Any]],
        *,
        timeout: float = WORKER_WAIT_SECONDS,
    ) -> dict[str, Any]:
        phases = [m.model_dump(mode="json") if isinstance(m, MissionPhase) else dict(m) for m in missions]
        return await self._call("POST", f"/v1/crises/{workflow_id}/phases", PROGRESS, json={"missions": phases})

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
        return await self._call("GET", "/v1/crises", PAGE, params=selected.model_dump(exclude_none=True))

    async def _call(self, method: str, path: str, shape: Shape, **request: Any) -> Any:
        """The service's answer to one request, which must have ``shape``; its problem as the
        agency's error; ``NotAServiceError`` if it answers as no Liara service would.
        """
        try:
            response = await self._http.request(method, path, **request)
        except httpx.HTTPError as err:
            raise self._unreachable(err) from None
        answered = f"{method} {path}"
        if response.is_success:
            return _shaped(_json_of(response, answered, self.url), shape, answered, self.url)
        raise self._refusal(response, answered)

    def _unreachable(self, err: httpx.HTTPError) -> TemporalUnavailableError:
        """What a request that got no answer means: a certificate not trusted, a service not reached."""
        untrusted = _certificate_refused(err)
        if untrusted:
            return TemporalUnavailableError(
                f"The Liara service at {self.url} has a certificate this machine does not trust ({untrusted}): "
                f"set {CA_FILE_ENV} to the certificate of the authority that signed it (or to its own, if "
                "self-signed)."
            )
        return TemporalUnavailableError(
            f"Cannot reach the Liara service at {self.url} ({err or type(err).__name__}): check --api and that "
            "`liara serve` runs there."
        )

    def _refusal(self, response: httpx.Response, answered: str) -> LiaraError:
        """The agency's error for a request the service refused (read), from its problem answer."""
        problem = _json_of(response, answered, self.url, f"HTTP {response.status_code} and ")
        not_a_problem = f"HTTP {response.status_code} and JSON that is not a problem"
        return _problem_error(problem, self.url, answered, not_a_problem)


def trusted_authorities() -> ssl.SSLContext:
    """How an ``https://`` service's certificate is checked: against ``SSL_CERT_FILE`` or
    ``SSL_CERT_DIR`` if set, as OpenSSL and httpx have it, else against the usual authorities.
    """
    try:
        return httpx.create_ssl_context(trust_env=True)
    except (OSError, ssl.SSLError) as err:
        ca_file = os.environ.get(CA_FILE_ENV)
        named = f"{CA_FILE_ENV}={ca_file}" if ca_file else f"{CA_DIR_ENV}={os.environ.get(CA_DIR_ENV)}"
        reason = getattr(err, "strerror", None) or getattr(err, "reason", None) or err
        raise LiaraError(f"Cannot read the certificate authorities of {named} ({reason}): fix or unset it.") from None


def _certificate_refused(err: httpx.HTTPError) -> str | None:
    """Why the service's certificate was refused, if that is what failed."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or cause.reason or str(cause)
        cause = cause.__cause__ or cause.__context__
    return None


def cleartext_warning(url: str) -> str | None:
    """The warning for an ``http://`` service on another machine (the token crosses the network in
    clear), or None for ``https://`` or this machine.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme != "http" or is_loopback_host(parsed.host):
        return None
    return (
        f"Warning: {url} is plain HTTP to another machine, so the token and every crisis cross the network in "
        "clear: serve it with --ssl-certfile and --ssl-keyfile and use https://."
    )


def _json_of(response: httpx.Response, answered: str, url: str, status: str = "") -> Any:
    """An answer's JSON; ``NotAServiceError`` if it is not JSON (a web page, say)."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not media.endswith("json"):
        raise _not_a_service(url, answered, f"{status}{media or 'no content type'}, not JSON")
    try:
        return response.json()
    except ValueError:
        raise _not_a_service(url, answered, f"{status}{media} that does not parse") from None


def _shaped(answer: Any, shape: Shape, answered: str, url: str) -> Any:
    """``answer`` if it has the fields a Liara service answers with; ``NotAServiceError`` if not."""
    if not isinstance(answer, dict):
        raise _not_a_service(url, answered, f"a JSON {type(answer).__name__}, not an object")
    for field, kind in shape.items():
        value = answer.get(field)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _not_a_service(url, answered, f"JSON without {field!r}")
    return answer


def _not_a_service(url: str, answered: str, what: str) -> NotAServiceError:
    return NotAServiceError(
        f"The server at {url} is not a Liara service (it answered {answered} with {what}): check --api."
    )


def _problem_error(problem: Any, url: str, answered: str, otherwise: str) -> LiaraError:
    """The agency's error that a problem of the service's tells (``NotAServiceError`` saying
    ``otherwise`` if it is no problem): its sentence, as the error of its type.
    """
    detail, kind = (problem.get("detail"), problem.get("type")) if isinstance(problem, dict) else (None, None)
    if not isinstance(detail, str) or not isinstance(kind, str):
        return _not_a_service(url, answered, otherwise)
    slug = kind.rsplit("/", 1)[-1]
    if slug == _INVALID_REQUEST:
        return _invalid(detail, problem.get("errors"))
    error = _ERRORS_BY_SLUG.get(slug, ServiceRefusedError)
    if error is CrisisFailedError:
        return CrisisFailedError(detail, "failed")
    return error(detail)


async def _server_sent(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, str]]:
    """The messages of an event stream's lines (``id``, ``event``, ``data``), comments such as
    keep-alives skipped.
    """
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if "data" in fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = f"{fields['data']}\n{value}" if name == "data" and "data" in fields else value


def _invalid(detail: str, errors: Any) -> InvalidCrisisRequestError:
    """A refused request's error: with the bad fields of its body, where the service places each."""
    listed = errors if isinstance(errors, list) else []
    placed = [error for error in listed if isinstance(error, dict) and isinstance(error.get("pointer"), str)]
    subject = detail.partition(": ")[0]
    if not placed or len(placed) < len(listed) or not all(error["pointer"] for error in placed):
        return InvalidCrisisRequestError(detail)
    problems = [FieldProblem(_location(error["pointer"]), str(error.get("message", ""))) for error in placed]
    said = [f"{error['pointer']}: {problem.message}" for error, problem in zip(placed, problems, strict=True)]
    return InvalidFieldsError(subject, problems, said)


def _location(pointer: str) -> Location:
    """A JSON pointer's place as a location (``/missions/0/target``: ``("missions", 0, "target")``)."""
    parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    return tuple(int(part) if part.isdigit() else part for part in parts)


def _given(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that were given (the service leaves the others to its defaults)."""
    return {name: value for name, value in options.items() if value is not None}


def _keyed(idempotency_key: str | None) -> dict[str, str]:
    """The header that makes a start idempotent, if a key is given (the service scopes it to the token)."""
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}

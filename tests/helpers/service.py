"""``liara serve`` as a subprocess and requests to it: a token per role, crisis bodies (``phase``
builds the mission phases of other tests' requests too), problems and Server-Sent Events as
the service answers them, what a started crisis's request holds, and the event-stream polls a
crisis has in flight.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from app.temporal.models import CrisisRequest
from cognition.liara.service.tokens import TokenFile
from tests.helpers.cli import run_cli
from tests.helpers.processes import ServerProcess

#: One token per role, and a second approver for quorums.
TOKEN_ROLES = {
    "viewer-1": "viewer",
    "operator-1": "operator",
    "approver-1": "approver",
    "approver-2": "approver",
    "admin-1": "admin",
}


class ServiceProcess(ServerProcess):
    """``liara [CONNECTION...] serve --port 0 ARGS`` as a subprocess; ``url`` once it listens."""

    ready_line = "Liara service listening on "

    def __init__(
        self, env: dict[str, str], cwd: Path, *args: str, connection: tuple[str, ...] = (), wait: bool = True
    ) -> None:
        super().__init__("cognition/liara/cli.py", env, cwd, *connection, "serve", "--port", "0", *args, wait=wait)


@dataclass(frozen=True)
class Tokens:
    path: Path
    by_name: dict[str, str]

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.by_name[name]}"}


def create_token(env: dict[str, str], cwd: Path, path: Path, name: str, role: str) -> str:
    """``liara token create``: the token is the last line it prints."""
    created = run_cli(env, cwd, "token", "create", name, "--role", role, "--tokens", str(path))
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def write_tokens(path: Path, roles: dict[str, str]) -> Tokens:
    """A token file with a token per name (of its role), written by ``TokenFile`` as ``liara token
    create`` writes it: for fixtures, without a CLI process per token (the command itself is
    tested in service/test_service_commands.py).
    """
    return Tokens(path, {name: TokenFile(path).create(name, role) for name, role in roles.items()})


def phase(phase_id: str = "recon-phase-1", action: str = "recon", **extra: Any) -> dict[str, Any]:
    """A mission phase as a request carries it: ``action`` by ``<action>-agent-001`` on target-alpha."""
    agent = f"{action}-agent-001"
    return {"phase_id": phase_id, "agent_id": agent, "action": action, "target": "target-alpha", **extra}


#: A phase's fields given values of another JSON type, by what is wrong, with the field at fault
#: (within the phase) and what every interface says of it: the Python API, a missions file, a
#: playbook and the HTTP API refuse each alike.
WRONG_JSON_TYPES: dict[str, tuple[dict[str, Any], str, str]] = {
    "a string for a boolean": ({"requires_approval": "yes"}, "requires_approval", "Input should be a valid boolean"),
    "a boolean for an integer": (
        {"retry": {"maximum_attempts": True}},
        "retry.maximum_attempts",
        "Input should be a valid integer",
    ),
    "a numeric string for an integer": (
        {"retry": {"maximum_attempts": "5"}},
        "retry.maximum_attempts",
        "Input should be a valid integer",
    ),
    "a string number for a timeout": ({"timeout": "30"}, "timeout", "Input should be a valid number"),
}


def crisis_body(*phases: dict[str, Any], target: str | None = None, **options: Any) -> dict[str, Any]:
    """A crisis on a target of its own (so listing by target finds this test's crises only)."""
    return {"target_member": target or f"target-{uuid.uuid4().hex[:10]}", "missions": list(phases), **options}


async def start(http: httpx.AsyncClient, token: dict[str, str], body: dict[str, Any], **headers: str) -> str:
    response = await http.post("/v1/crises", json=body, headers={**token, **headers})
    assert response.status_code == 201, response.text
    return response.json()["workflow_id"]


async def phase_status(http: httpx.AsyncClient, token: dict[str, str], workflow_id: str, phase_id: str) -> str | None:
    report = (await http.get(f"/v1/crises/{workflow_id}", headers=token)).json()
    return next((p["status"] for p in report.get("phases", []) if p["phase_id"] == phase_id), None)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """An RFC 9457 problem of this status and type, with a one-sentence detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem = response.json()
    assert (problem["type"], problem["status"]) == (f"/problems/{slug}", status), problem
    assert problem["title"] and problem["detail"].endswith("."), problem
    assert "Traceback" not in response.text
    return problem


async def sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """An SSE response as ``{"id", "event", "data"}`` per event and ``{"comment": ...}`` per comment."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        elif fields:
            yield {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}
            fields = {}


async def started_request(client: Client, workflow_id: str) -> CrisisRequest:
    """The request a crisis's workflow was started with, from its history."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        (request,) = await client.data_converter.decode(payloads, [CrisisRequest])
        return request
    raise AssertionError(f"{workflow_id} has no history")


def assert_started_with_the_options(request: CrisisRequest) -> None:
    assert (request.playbook, request.max_parallel, request.failure_policy, request.priority) == (
        "health-check",
        1,
        "abort",
        1,
    )
    assert (request.retry.maximum_attempts, request.phase_timeout_seconds, request.heartbeat_timeout_seconds) == (
        5,
        30,
        5,
    )


#: The update a crisis's event stream answers its readers' long polls with.
STREAM_POLL_UPDATE = "__temporal_workflow_stream_poll"


async def polls_in_flight(client: Client, workflow_id: str) -> int:
    """The event-stream polls the crisis has accepted and not yet answered (updates in flight)."""
    waiting: set[str] = set()
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.input.name == STREAM_POLL_UPDATE:
                waiting.add(request.meta.update_id)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            waiting.discard(event.workflow_execution_update_completed_event_attributes.meta.update_id)
    return len(waiting)


async def all_wait(client: Client, workflow_id: str, readers: list[asyncio.Future], seen: list[list[dict]]) -> bool:
    """Whether every reader has seen the crisis await approval, and a poll for what comes next is
    in flight; a reader that ended early says why.
    """
    for reader in readers:
        if reader.done():
            reader.result()
    told = all(any(e["event"] == "approval_required" for e in events) for events in seen)
    return told and await polls_in_flight(client, workflow_id) > 0

"""Fixtures of the HTTP service's tests: ``liara serve`` as a subprocess, with a token per role,
a worker on its own task queue, and helpers to drive crises through the API (``phase`` builds
the mission phases of other tests' requests too).

They are module-scoped: one worker, one token file and one service serve every test of a
module (each test uses crises of its own), since starting them takes seconds each.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DevServer, ServerProcess, WorkerProcess, run_cli, subprocess_env

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

    def __init__(self, env: dict[str, str], cwd: Path, *args: str, connection: tuple[str, ...] = ()) -> None:
        super().__init__("cognition/liara/cli.py", env, cwd, *connection, "serve", "--port", "0", *args)


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


@pytest.fixture(scope="module")
def service_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service")


@pytest.fixture(scope="module")
def service_env(dev_server: DevServer, service_dir: Path) -> dict[str, str]:
    return subprocess_env(dev_server.address, f"liara-service-{uuid.uuid4()}", service_dir / "crises")


@pytest.fixture(scope="module")
def service_worker(service_env: dict[str, str], service_dir: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess("cognition/liara/worker.py", service_env, service_dir)
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def service_tokens(service_env: dict[str, str], service_dir: Path) -> Tokens:
    path = service_dir / "tokens.json"
    created = {name: create_token(service_env, service_dir, path, name, role) for name, role in TOKEN_ROLES.items()}
    return Tokens(path, created)


@pytest.fixture(scope="module")
def liara_service(
    service_env: dict[str, str], service_dir: Path, service_tokens: Tokens, service_worker: WorkerProcess
) -> Iterator[ServiceProcess]:
    """The service with the module's token file, event heartbeats every 0.5 s, and a worker."""
    server = ServiceProcess(service_env, service_dir, "--tokens", str(service_tokens.path), "--heartbeat", "0.5")
    yield server
    assert server.stop(signal.SIGTERM, timeout=90) == 0, server.output


def phase(phase_id: str = "recon-phase-1", action: str = "recon", **extra: Any) -> dict[str, Any]:
    """A mission phase as a request carries it: ``action`` by ``<action>-agent-001`` on target-alpha."""
    agent = f"{action}-agent-001"
    return {"phase_id": phase_id, "agent_id": agent, "action": action, "target": "target-alpha", **extra}


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

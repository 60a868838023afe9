"""Fixtures of the HTTP service's tests (in service/ and console/, and the remote command line's):
``liara serve`` as a subprocess, with a token per role and a worker on its own task queue
(``tests.helpers.service`` drives crises through the API).

They are module-scoped: one worker, one token file and one service serve every test of a
module (each test uses crises of its own), since starting them takes seconds each.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import WorkerProcess, subprocess_env
from tests.helpers.servers import DevServer
from tests.helpers.service import TOKEN_ROLES, ServiceProcess, Tokens, write_tokens


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
def service_tokens(service_dir: Path) -> Tokens:
    return write_tokens(service_dir / "tokens.json", TOKEN_ROLES)


@pytest.fixture(scope="module")
def service_starting(
    service_env: dict[str, str], service_dir: Path, service_tokens: Tokens
) -> Iterator[ServiceProcess]:
    """The module's service, started without waiting for it: ``liara_service`` starts its worker
    meanwhile, then waits. Stopped here only if it was never handed out (a worker that failed).
    """
    server = ServiceProcess(
        service_env, service_dir, "--tokens", str(service_tokens.path), "--heartbeat", "0.5", wait=False
    )
    yield server
    if server.process.poll() is None:
        server.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def liara_service(service_starting: ServiceProcess, service_worker: WorkerProcess) -> Iterator[ServiceProcess]:
    """The service with the module's token file, event heartbeats every 0.5 s, and a worker."""
    server = service_starting
    server.wait_ready()
    yield server
    assert server.stop(signal.SIGTERM, timeout=90) == 0, server.output

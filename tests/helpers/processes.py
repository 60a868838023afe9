"""Worker scripts and ``liara`` commands serving HTTP as subprocesses, and their environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.helpers import REPO_ROOT

WORKER_READY_LINE = "Liara worker is running. Press Ctrl+C to stop."


def subprocess_env(address: str, task_queue: str, crisis_dir: Path) -> dict[str, str]:
    """Environment for CLI and worker subprocesses: this server, this queue (and a notification
    queue of its own beside it) and record dir, and none of the caller's own Temporal or Liara
    settings.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    env.update(
        TEMPORAL_ADDRESS=address,
        LIARA_TASK_QUEUE=task_queue,
        LIARA_NOTIFICATION_TASK_QUEUE=f"{task_queue}-notifications",
        LIARA_CRISIS_DIR=str(crisis_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


class WorkerProcess:
    """A worker script as a subprocess; its output is collected in ``lines`` as it comes."""

    #: The line that says the process is ready.
    ready_line = WORKER_READY_LINE

    def __init__(self, script: str, env: dict[str, str], cwd: Path, *args: str, wait: bool = True) -> None:
        """Start ``script``; unless ``wait`` is false, wait until it is ready (else call
        ``wait_ready`` before using it, as when starting something else meanwhile).
        """
        self.script = script
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / script), *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.started = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait until the process says it is ready; stop it and fail if it does not within 60 s."""
        if not self.ready.wait(timeout=60):
            self.stop(signal.SIGKILL)
            raise AssertionError(f"{self.script} was not ready within 60 s:\n" + self.output)
        if not self.started:
            code = self.stop(signal.SIGKILL)
            raise AssertionError(f"{self.script} exited with {code} before it was ready:\n" + self.output)

    def _is_ready(self, line: str) -> bool:
        return self.ready_line in line

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if not self.started and self._is_ready(line):
                self.started = True
                self.ready.set()
        self.ready.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process, wait for it to exit (killing it after ``timeout``) and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


class ServerProcess(WorkerProcess):
    """A ``liara`` command serving HTTP as a subprocess: ready once it prints ``ready_line``
    followed by its URL, which is then ``url``.
    """

    url: str

    def _is_ready(self, line: str) -> bool:
        if not line.startswith(self.ready_line):
            return False
        self.url = line[len(self.ready_line) :].strip()
        return True


def run_script(
    script: str, env: dict[str, str], cwd: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python SCRIPT ARGS`` (a path in the repository) as a user would run it, to its end."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )

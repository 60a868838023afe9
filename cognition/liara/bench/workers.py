"""The worker processes of each side of the benchmark, measured from /proc."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from app.temporal.client import ConnectionSettings
from cognition.liara.agency import LiaraTemporalAgency

WORKER_COMMANDS = {
    "liara": [sys.executable, "-m", "cognition.liara.worker", "--log-level", "WARNING"],
    "baseline": [sys.executable, "-m", "cognition.liara.bench.baseline"],
    "baseline_unsandboxed": [sys.executable, "-m", "cognition.liara.bench.baseline", "--unsandboxed"],
}
READY_TIMEOUT_SECONDS = 60.0


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status_mib(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def proc_peak_rss_mib(pid: int) -> float:
    return _proc_status_mib(pid, "VmHWM")


def proc_rss_mib(pid: int) -> float:
    return _proc_status_mib(pid, "VmRSS")


class WorkerGroup:
    """Worker processes of one side on their own task queue, measured from /proc."""

    def __init__(
        self,
        side: str,
        count: int,
        settings: ConnectionSettings,
        records: Path,
        options: Sequence[str] = (),
        *,
        checkout: Path | None = None,
    ) -> None:
        """``checkout``: run the side's workers from that copy of the code (another commit's, say),
        with this environment's packages, instead of from this one.
        """
        self.task_queue = f"bench-{side}-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "TEMPORAL_ADDRESS": settings.address, "TEMPORAL_NAMESPACE": settings.namespace}
        env |= {"LIARA_TASK_QUEUE": self.task_queue, "LIARA_CRISIS_DIR": str(records)}
        if checkout is not None:  # its modules come first: `-m` finds them from the working directory
            env["PYTHONPATH"] = os.pathsep.join([str(checkout / "src"), str(checkout)])
        command = [*WORKER_COMMANDS[side], "--task-queue", self.task_queue, *options]
        self.processes = [
            subprocess.Popen(command, env=env, cwd=checkout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(count)
        ]

    def cpu_seconds(self) -> float:
        return sum(proc_cpu_seconds(p.pid) for p in self.processes)

    def peak_rss_mib(self) -> float:
        return max(proc_peak_rss_mib(p.pid) for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_for_pollers(agency: LiaraTemporalAgency, group: WorkerGroup, side: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while await agency.pollers(group.task_queue) < len(group.processes):
        if time.monotonic() > deadline or any(p.poll() is not None for p in group.processes):
            raise RuntimeError(f"the {side} workers did not start polling {group.task_queue}")
        await asyncio.sleep(0.2)

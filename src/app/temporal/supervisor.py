"""Several worker processes on one machine (``--processes N``), started and stopped together."""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from app.temporal.client import ConnectionSettings, run_and_exit

#: Runs one worker in this process and returns its exit code: ``run(settings, workflows, options)``.
WorkerRun = Callable[[ConnectionSettings, Sequence[type], Any], int]


def _worker_process(run: WorkerRun, settings: ConnectionSettings, workflows: Sequence[type], options: Any) -> None:
    # Runs in a spawned child: its exit code is the worker's. The child ends without interpreter
    # finalization, like every entry point (see run_and_exit): the SDK's runtime threads could
    # crash it (Fatal Python error in PyGILState_Release) and turn a clean stop into exit 1.
    run_and_exit(lambda: sys.exit(run(settings, workflows, options)))


def run_worker_processes(
    count: int, run: WorkerRun, settings: ConnectionSettings, workflows: Sequence[type], options: Any
) -> int:
    """``count`` worker processes (each ``run``, a module-level function) on the same task queue;
    SIGINT/SIGTERM stop them all gracefully. ``options`` is the worker's options dataclass.

    Each process has its own worker identity (pid@host), so Temporal spreads crises between them,
    and with a metrics port its own port: worker-1 the given one, worker-2 the next, and so on.
    If a worker fails (exits non-zero, say because its metrics port is taken), the others are
    stopped too and the exit code is 1.
    """
    context = multiprocessing.get_context("spawn")
    children = []
    for index in range(1, count + 1):
        port = options.metrics_port + index - 1 if options.metrics_port else None
        children.append(
            context.Process(
                target=_worker_process,
                args=(run, settings, list(workflows), dataclasses.replace(options, metrics_port=port)),
                name=f"worker-{index}",
            )
        )
    for child in children:
        child.start()

    def stop_all() -> None:
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signal.SIGTERM)

    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        stop_all()

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    running = {child.sentinel: child for child in children}
    while running:
        for sentinel in multiprocessing.connection.wait(list(running)):
            child = running.pop(sentinel)
            child.join()
            if child.exitcode != 0 and not stopping:
                stopping = True
                stop_all()
    return 0 if all(child.exitcode == 0 for child in children) else 1

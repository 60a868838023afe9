"""``make demo``: one crisis end to end on the embedded Temporal server.

Starts the server if none answers (on the port of ``TEMPORAL_ADDRESS`` when it names this
machine, else on 7233), runs a dedicated worker, triggers
``target-alpha recon secure extract cleanup`` through the CLI and waits for it, then prints the
result, the record's path and the Web UI address, and stops the worker. The server keeps
running so the crisis can be browsed in the Web UI.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from app.temporal.client import ConnectionSettings, run_and_exit
from app.temporal.server import DEFAULT_DATA_DIR, DEFAULT_PORT, EmbeddedServer, EmbeddedServerError, find_server

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKER_READY = "Liara worker is running"
CRISIS = ["target-alpha", "recon", "secure", "extract", "cleanup"]


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def start_worker() -> subprocess.Popen[str]:
    """The dedicated worker, its log lines echoed with a prefix; returns once it polls."""
    worker = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "cognition/liara/worker.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()

    def echo() -> None:
        assert worker.stdout is not None
        for line in worker.stdout:
            print(f"  worker | {line}", end="", flush=True)
            if WORKER_READY in line:
                ready.set()
        ready.set()

    threading.Thread(target=echo, daemon=True).start()
    ready.wait(timeout=60)
    if worker.poll() is not None:
        raise SystemExit(f"The worker exited with code {worker.returncode}; see its output above.")
    return worker


def local_server() -> EmbeddedServer:
    """The embedded server the demo uses: the one on ``TEMPORAL_ADDRESS``'s port (7233 by default)."""
    host, _, port = ConnectionSettings.resolve().address.rpartition(":")
    if host not in ("localhost", "127.0.0.1") or not port.isdigit():
        raise SystemExit(
            f"Error: TEMPORAL_ADDRESS names {host}:{port}, not this machine; the demo runs on the embedded server: "
            "unset TEMPORAL_ADDRESS or set it to localhost:PORT."
        )
    found, pid = find_server(port=int(port))
    if pid is None and found.port != DEFAULT_PORT:  # a database of its own: data/temporal is 7233's
        return EmbeddedServer(data_dir=DEFAULT_DATA_DIR.with_name(f"temporal-{port}"), port=found.port)
    return found


def main() -> None:
    server = local_server()
    step("Temporal server")
    if server.answers():
        print(f"Using the server that answers on {server.address}")
    else:
        try:
            pid = server.start()
        except EmbeddedServerError as err:
            raise SystemExit(f"Error: {err}") from None
        print(f"Started the embedded server on {server.address} (pid {pid}), data in {server.data_dir}")

    step("Worker: python cognition/liara/worker.py")
    worker = start_worker()
    try:
        step(f"Crisis: python cognition/liara/cli.py trigger {' '.join(CRISIS)} --wait")
        crisis = subprocess.run(
            [sys.executable, str(REPO_ROOT / "cognition/liara/cli.py"), "trigger", *CRISIS, "--wait"],
            stdout=subprocess.PIPE,
            text=True,
        )
        print(crisis.stdout, end="")
    finally:
        step("Stopping the worker (SIGTERM: graceful shutdown)")
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

    workflow_id = crisis.stdout.splitlines()[0] if crisis.stdout else ""
    step("Done")
    if workflow_id:
        print(f"Web UI: {server.ui_url}/namespaces/default/workflows/{workflow_id}")
    print(f"Browse every crisis at {server.ui_url} (Workflow Type CrisisResponseWorkflow).")
    print(f"Stop the server with: python scripts/setup_temporal.py stop --port {server.port}")
    raise SystemExit(crisis.returncode)


if __name__ == "__main__":
    run_and_exit(main)

"""Benchmark the HTTP service and crises run as graphs, in one run, and print the figures.

    python scripts/bench_service.py          # on a Temporal dev server, a worker and a liara serve of its own

1. Trigger-to-result latency of a crisis of ``--phases`` phases, one crisis at a time, taking
   turns: through the Python API (``trigger_crisis_response`` then ``wait_for_crisis_completion``)
   and through the HTTP API (``POST /v1/crises`` then ``GET /v1/crises/{id}/result?wait=60``).
2. Status requests per second: ``GET /v1/crises/{id}`` of a completed crisis and of one waiting
   at an approval gate, ``--status-concurrency`` in flight for ``--status-seconds`` each.
3. The memory of ``--streams`` open event streams (``GET /v1/crises/{id}/events``, spread over
   crises waiting at an approval gate): the service process's RSS before and with them open.
4. The wall time of a crisis of 8 independent 1-second phases at ``max_parallel`` 1, 4 and 8.
5. Orchestration cost per phase: a crisis of ``--chain`` zero-duration phases run in sequence,
   against the same chain as a graph (each phase depends on the one before), one at a time.

The service runs with a token file, as it would in use: every request carries an admin token,
except the streams, which take one viewer token per ``max_streams_per_identity`` of them (the
service's bound per token). However many streams follow one crisis, the service reads its
events from Temporal once.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from app.temporal.server import EmbeddedServer  # noqa: E402
from cognition.liara.agency import LiaraTemporalAgency  # noqa: E402
from cognition.liara.bench.workers import proc_rss_mib  # noqa: E402
from cognition.liara.service.config import ServiceSettings  # noqa: E402
from cognition.liara.service.server import READY_LINE  # noqa: E402
from cognition.liara.service.tokens import TokenFile  # noqa: E402
from scripts.bench_records import save_and_exit, workers  # noqa: E402
from scripts.local_postgres import free_port  # noqa: E402

TARGET = "target-alpha"


def phase(phase_id: str, **fields: Any) -> dict[str, Any]:
    return {"phase_id": phase_id, "agent_id": "agent-001", "action": "recon", "target": TARGET, **fields}


def percentiles(seconds: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(seconds, n=20, method="inclusive")
    return {"p50_ms": statistics.median(seconds) * 1000, "p95_ms": cuts[18] * 1000}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def service(env: dict[str, str], workdir: Path, tokens: Path) -> AsyncIterator[tuple[str, int]]:
    """``liara serve --tokens TOKENS`` on a free loopback port; yields its URL and process id."""
    log = workdir / "serve.log"
    port = free_port()
    command = [sys.executable, str(REPO_ROOT / "cognition/liara/cli.py"), "serve", "--port", str(port)]
    command += ["--tokens", str(tokens), "--no-notifications"]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=workdir, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while READY_LINE not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"liara serve did not start: {log.read_text()[-2000:]}")
            await asyncio.sleep(0.2)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


# --- 1. trigger-to-result latency ---------------------------------------------------------------


async def latency(agency: LiaraTemporalAgency, http: httpx.AsyncClient, runs: int, phases: int) -> dict[str, Any]:
    missions = [phase(f"p-{n}", priority=n) for n in range(phases)]

    async def python_api() -> None:
        workflow_id = await agency.trigger_crisis_response(TARGET, missions, "bench")
        result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
        assert result["success"], result

    async def http_api() -> None:
        started = await http.post("/v1/crises", json={"target_member": TARGET, "missions": missions})
        started.raise_for_status()
        ended = await http.get(f"/v1/crises/{started.json()['workflow_id']}/result", params={"wait": 60})
        assert ended.status_code == 200 and ended.json()["status"] == "completed", ended.text

    timed: dict[str, list[float]] = {"python_api": [], "http_api": []}
    sides = {"python_api": python_api, "http_api": http_api}
    for run in range(runs + 3):  # three warm-up rounds
        for name in list(sides)[:: 1 if run % 2 else -1]:  # the side that goes first alternates
            began = time.perf_counter()
            await sides[name]()
            if run >= 3:
                timed[name].append(time.perf_counter() - began)
    figures = {name: percentiles(seconds) for name, seconds in timed.items()}
    figures["p50_ratio"] = figures["http_api"]["p50_ms"] / figures["python_api"]["p50_ms"]
    return figures


# --- 2. status requests per second --------------------------------------------------------------


async def requests_per_second(http: httpx.AsyncClient, path: str, concurrency: int, seconds: float) -> dict[str, float]:
    done = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            answer = await http.get(path)
            answer.raise_for_status()
            done += 1

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return {"requests_per_second": done / (time.monotonic() - began), "requests": done}


# --- 3. open event streams ----------------------------------------------------------------------


async def stream_memory(
    url: str, service_pid: int, gated: list[str], streams: int, viewers: list[str]
) -> dict[str, float]:
    """Open ``streams`` streams over the ``gated`` crises, each group of the service's bound per
    token on a viewer token of its own.
    """
    per_token = ServiceSettings.max_streams_per_identity
    rss_before = proc_rss_mib(service_pid)
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=0)
    async with AsyncExitStack() as open_streams:
        http = await open_streams.enter_async_context(httpx.AsyncClient(base_url=url, limits=limits, timeout=120))

        async def open_one(n: int) -> None:
            workflow_id = gated[n % len(gated)]
            events = http.stream("GET", f"/v1/crises/{workflow_id}/events", headers=bearer(viewers[n // per_token]))
            response = await open_streams.enter_async_context(events)
            assert response.status_code == 200, response.status_code
            await anext(response.aiter_bytes())  # the stream is open and has sent its first event

        began = time.monotonic()
        for batch in range(0, streams, 50):
            await asyncio.gather(*(open_one(n) for n in range(batch, min(batch + 50, streams))))
        opened_in = time.monotonic() - began
        await asyncio.sleep(2)
        rss_open = proc_rss_mib(service_pid)
    return {
        "streams": streams,
        "service_rss_before_mib": rss_before,
        "service_rss_with_streams_mib": rss_open,
        "per_stream_kib": (rss_open - rss_before) * 1024 / streams,
        "opened_in_seconds": opened_in,
    }


# --- 4 and 5. graphs ----------------------------------------------------------------------------


async def crisis_seconds(agency: LiaraTemporalAgency, missions: list[dict[str, Any]], **options: Any) -> float:
    began = time.perf_counter()
    workflow_id = await agency.trigger_crisis_response(TARGET, missions, "bench", **options)
    result = await agency.wait_for_crisis_completion(workflow_id, timeout=120)
    assert result["success"], result
    return time.perf_counter() - began


async def parallel_phases(agency: LiaraTemporalAgency) -> list[dict[str, float]]:
    # "depends_on": [] declares graph mode with no edge: the eight phases are independent.
    missions = [phase(f"wait-{n}", params={"duration": 1.0}, depends_on=[]) for n in range(8)]
    return [
        {"max_parallel": limit, "wall_seconds": await crisis_seconds(agency, missions, max_parallel=limit)}
        for limit in (1, 4, 8)
    ]


async def per_phase_cost(agency: LiaraTemporalAgency, phases: int, runs: int) -> dict[str, float]:
    sequential = [phase(f"p-{n}", priority=n) for n in range(phases)]
    graph = [phase(f"p-{n}", depends_on=[f"p-{n - 1}"] if n else []) for n in range(phases)]
    timed: dict[str, list[float]] = {"sequential": [], "graph": []}
    for run in range(runs + 1):  # one warm-up round
        for name, missions in [("sequential", sequential), ("graph", graph)][:: 1 if run % 2 else -1]:
            seconds = await crisis_seconds(agency, missions)
            if run:
                timed[name].append(seconds)
    figures = {f"{name}_ms_per_phase": statistics.median(seconds) * 1000 / phases for name, seconds in timed.items()}
    figures["graph_ratio"] = figures["graph_ms_per_phase"] / figures["sequential_ms_per_phase"]
    return figures


async def main(args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="liara-bench-service-"))
    server = EmbeddedServer(data_dir=scratch / "temporal", port=free_port(), ui_port=free_port())
    figures: dict[str, Any] = {}
    try:
        await asyncio.to_thread(server.start)
        task_queue = f"bench-service-{uuid.uuid4().hex[:8]}"
        env = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
        env |= {"TEMPORAL_ADDRESS": server.address, "LIARA_TASK_QUEUE": task_queue}
        env |= {"LIARA_CRISIS_DIR": str(scratch / "crises")}
        token_file = TokenFile(scratch / "tokens.json")
        admin = token_file.create("bench-admin", "admin")
        viewers = [
            token_file.create(f"bench-viewer-{n}", "viewer")
            for n in range(math.ceil(args.streams / ServiceSettings.max_streams_per_identity))
        ]
        async with (
            workers(1, env, scratch),
            service(env, scratch, token_file.path) as (url, service_pid),
            LiaraTemporalAgency(temporal_host=server.address, task_queue=task_queue) as agency,
            httpx.AsyncClient(base_url=url, timeout=120, headers=bearer(admin)) as http,
        ):
            figures["latency"] = found = await latency(agency, http, args.runs, args.phases)
            print(
                f"latency     P={args.phases}: Python API p50 {found['python_api']['p50_ms']:.1f} ms "
                f"(p95 {found['python_api']['p95_ms']:.1f}), HTTP API p50 {found['http_api']['p50_ms']:.1f} ms "
                f"(p95 {found['http_api']['p95_ms']:.1f}): {found['p50_ratio']:.2f}x",
                flush=True,
            )
            gate = [phase("gate", requires_approval=True)]
            gated = await asyncio.gather(
                *(agency.trigger_crisis_response(TARGET, gate, "bench") for _ in range(args.gated_crises))
            )
            completed = await agency.trigger_crisis_response(TARGET, [phase("p-0")], "bench")
            await agency.wait_for_crisis_completion(completed, timeout=60)
            figures["status"] = {}
            for name, workflow_id in (("completed", completed), ("awaiting_approval", gated[0])):
                rate = await requests_per_second(
                    http, f"/v1/crises/{workflow_id}", args.status_concurrency, args.status_seconds
                )
                figures["status"][name] = rate
                print(
                    f"status      {name} crisis: {rate['requests_per_second']:.0f} requests/s "
                    f"({args.status_concurrency} in flight)",
                    flush=True,
                )
            figures["streams"] = found = await stream_memory(url, service_pid, gated, args.streams, viewers)
            print(
                f"streams     {found['streams']} open: service RSS {found['service_rss_before_mib']:.1f} -> "
                f"{found['service_rss_with_streams_mib']:.1f} MiB ({found['per_stream_kib']:.1f} KiB each), "
                f"opened in {found['opened_in_seconds']:.1f} s",
                flush=True,
            )
            figures["parallel"] = parallel_points = await parallel_phases(agency)
            for point in parallel_points:
                print(
                    f"graph       8 independent 1-s phases, max_parallel {point['max_parallel']}: "
                    f"{point['wall_seconds']:.2f} s",
                    flush=True,
                )
            figures["per_phase"] = found = await per_phase_cost(agency, args.chain, args.runs)
            print(
                f"per phase   chain of {args.chain}: sequential {found['sequential_ms_per_phase']:.1f} ms, "
                f"graph {found['graph_ms_per_phase']:.1f} ms per phase ({found['graph_ratio']:.2f}x)",
                flush=True,
            )
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(scratch, ignore_errors=True)
    figures["settings"] = vars(args) | {"json": str(args.json) if args.json else None}
    return figures


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="crises per side for latency and per-phase cost")
    parser.add_argument("--phases", type=int, default=4, help="phases of a latency crisis")
    parser.add_argument("--status-concurrency", type=int, default=20, help="status requests in flight")
    parser.add_argument("--status-seconds", type=float, default=10.0, help="seconds per status point")
    parser.add_argument("--gated-crises", type=int, default=50, help="crises at an approval gate for the streams")
    parser.add_argument("--streams", type=int, default=500, help="event streams to hold open")
    parser.add_argument("--chain", type=int, default=16, help="phases of a per-phase-cost crisis")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    save_and_exit(asyncio.run(main(arguments)), arguments.json)

"""Benchmark the crisis record stores, files and PostgreSQL, in one run, and print the figures.

    python scripts/bench_records.py                       # a throwaway PostgreSQL and Temporal server
    python scripts/bench_records.py --record-store postgresql://USER:PASSWORD@HOST:PORT/DATABASE

1. The record cost per phase at P phases (``--phases 10,100,1000``): a crisis's record is created
   with P pending phases, each phase is written once as completed (what a phase's activity does),
   then the record is finalized. Each phase write is timed; ``--phase-writes`` writes per point.
2. Throughput with 1, 2 and 4 worker processes (``--workers``) on each store: ``--crises`` crises
   of ``--crisis-phases`` phases, ``--concurrency`` in flight, on a Temporal dev server of its own;
   crises per second from the first start to the last result.

Without ``--record-store`` it starts PostgreSQL from Debian's package (as the tests do) and creates
the record tables. The file store writes to a temporary directory on this machine's disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from app.temporal.client import ConnectionSettings  # noqa: E402
from app.temporal.identity import workflow_id_for  # noqa: E402
from app.temporal.models import CrisisCompletion, CrisisSnapshot, PhaseOutcome, PhaseStatus  # noqa: E402
from app.temporal.records import CrisisRun, FileRecordStore, PostgresRecordStore, RecordStore  # noqa: E402
from app.temporal.server import EmbeddedServer  # noqa: E402
from cognition.liara.agency import LiaraTemporalAgency  # noqa: E402
from scripts.local_postgres import LocalPostgres, free_port  # noqa: E402

STARTED = datetime(2026, 1, 1, tzinfo=UTC)
READY_LINE = "Liara worker is running"


def counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


# --- 1. the cost of a record write -------------------------------------------------------------


async def phase_write_cost(store: RecordStore, phases: int, writes: int) -> dict[str, float]:
    """Milliseconds per phase write (mean and median), per create and per finalize, at ``phases``."""
    per_phase: list[float] = []
    creates: list[float] = []
    finals: list[float] = []
    for _ in range(max(1, writes // phases)):
        crisis_id = f"bench-{uuid.uuid4().hex[:12]}"
        run = CrisisRun(namespace="bench", workflow_id=workflow_id_for(crisis_id), run_id="run-1")
        outcomes = [PhaseOutcome(phase_id=f"p-{n}", agent_id="agent-001", action="recon") for n in range(phases)]
        crisis = CrisisSnapshot(
            crisis_id=crisis_id,
            workflow_id=run.workflow_id,
            run_id=run.run_id,
            target="target-alpha",
            initiated_by="bench",
            started_at=STARTED,
            phases=outcomes,
        )
        began = time.perf_counter()
        await store.create(crisis, run=run)
        creates.append(time.perf_counter() - began)
        done = []
        for outcome in outcomes:
            completed = outcome.model_copy(
                update={"status": PhaseStatus.COMPLETED, "attempts": 1, "timestamp": STARTED, "output": {"ok": True}}
            )
            began = time.perf_counter()
            await store.upsert_phase(crisis_id, completed, run=run)
            per_phase.append(time.perf_counter() - began)
            done.append(completed)
        began = time.perf_counter()
        await store.finalize(
            CrisisCompletion(crisis_id=crisis_id, status="completed", completed_at=STARTED, phases=done), run=run
        )
        finals.append(time.perf_counter() - began)
    return {
        "phases": phases,
        "phase_writes": len(per_phase),
        "per_phase_mean_ms": 1000 * statistics.fmean(per_phase),
        "per_phase_median_ms": 1000 * statistics.median(per_phase),
        "create_ms": 1000 * statistics.median(creates),
        "finalize_ms": 1000 * statistics.median(finals),
    }


# --- 2. throughput with N worker processes -----------------------------------------------------


@asynccontextmanager
async def workers(count: int, env: dict[str, str], workdir: Path) -> AsyncIterator[None]:
    """``liara worker --processes count``, until every process polls."""
    log = workdir / f"worker-{count}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "cognition/liara/worker.py"), "--processes", str(count)],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while log.read_text().count(READY_LINE) < count:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start: {log.read_text()[-2000:]}")
            await asyncio.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=60)


async def throughput(
    settings: ConnectionSettings, task_queue: str, crises: int, phases: int, concurrency: int
) -> float:
    missions = [
        {"phase_id": f"p-{n}", "agent_id": "agent-001", "action": "recon", "target": "target-alpha", "priority": n}
        for n in range(phases)
    ]
    async with LiaraTemporalAgency(temporal_host=settings.address, task_queue=task_queue) as agency:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                workflow_id = await agency.trigger_crisis_response("target-alpha", missions, "bench")
                result = await agency.wait_for_crisis_completion(workflow_id, timeout=600)
                assert result["success"], result

        began = time.monotonic()
        await asyncio.gather(*(one() for _ in range(crises)))
        return crises / (time.monotonic() - began)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"write_cost": [], "throughput": []}
    database = None if args.record_store else await asyncio.to_thread(LocalPostgres().init)
    url = args.record_store or database.url  # type: ignore[union-attr]
    scratch = Path(tempfile.mkdtemp(prefix="liara-bench-records-"))
    server = EmbeddedServer(data_dir=scratch / "temporal", port=free_port(), ui_port=free_port())
    try:
        async with PostgresRecordStore(url) as postgres:
            await postgres.create_schema()
            stores: dict[str, RecordStore] = {"files": FileRecordStore(scratch / "crises"), "postgresql": postgres}
            for phases in counts(args.phases):
                for name, store in stores.items():
                    cost = {"store": name, **await phase_write_cost(store, phases, args.phase_writes)}
                    figures["write_cost"].append(cost)
                    print(
                        f"write cost  {name:<10} P={phases:<5} per phase {cost['per_phase_mean_ms']:.3f} ms "
                        f"(median {cost['per_phase_median_ms']:.3f}), create {cost['create_ms']:.2f} ms, "
                        f"finalize {cost['finalize_ms']:.2f} ms",
                        flush=True,
                    )
        await asyncio.to_thread(server.start)
        settings = ConnectionSettings.resolve(address=server.address)
        base = {key: value for key, value in os.environ.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
        for name in ("files", "postgresql"):
            for count in counts(args.workers):
                task_queue = f"bench-records-{uuid.uuid4().hex[:8]}"
                env = {**base, "TEMPORAL_ADDRESS": server.address, "LIARA_TASK_QUEUE": task_queue}
                env |= {"LIARA_CRISIS_DIR": str(scratch / f"crises-{count}")} if name == "files" else {}
                env |= {"LIARA_RECORD_STORE": url} if name == "postgresql" else {}
                async with workers(count, env, scratch):
                    rate = await throughput(settings, task_queue, args.crises, args.crisis_phases, args.concurrency)
                figures["throughput"].append({"store": name, "workers": count, "crises_per_second": rate})
                print(f"throughput  {name:<10} {count} worker process(es): {rate:.1f} crises/s", flush=True)
    finally:
        await asyncio.to_thread(server.stop)
        if database is not None:
            await asyncio.to_thread(database.destroy)
        shutil.rmtree(scratch, ignore_errors=True)
    figures["settings"] = {key: getattr(args, key) for key in vars(args) if key != "record_store"}
    return figures


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record-store", help="a postgresql:// URL (default: a throwaway PostgreSQL)")
    parser.add_argument("--phases", default="10,100,1000", help="phase counts of the write-cost points")
    parser.add_argument("--phase-writes", type=int, default=2000, help="phase writes per write-cost point")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts of the throughput points")
    parser.add_argument("--crises", type=int, default=200, help="crises per throughput point")
    parser.add_argument("--crisis-phases", type=int, default=4, help="phases per crisis")
    parser.add_argument("--concurrency", type=int, default=50, help="crises in flight")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args()


def save_and_exit(figures: dict[str, Any], path: Path | None) -> None:
    """Write ``figures`` as JSON to ``path`` (if given), then exit 0 at once."""
    if path:
        path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    os._exit(0)  # skip the Temporal client's interpreter teardown (temporalio/sdk-python#300)


if __name__ == "__main__":
    arguments = parse()
    save_and_exit(asyncio.run(main(arguments)), arguments.json)

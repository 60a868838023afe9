"""Where a single run's milliseconds go: crises (or bare workflows) one at a time, and the medians of
the intervals between the events of their histories (the server's clock), beside the client's
start-to-result time.

    python scripts/bench_timeline.py --address localhost:17850                  # liara, 4 phases
    python scripts/bench_timeline.py --address localhost:17850 --side baseline  # or baseline_unsandboxed

Each side runs on a worker of its own, started here as ``liara bench`` starts it (the Liara worker
writes its records to a temporary directory). Workflow task ``n`` is the one after activity
``n - 1``; its run (started to completed) includes the local activities it waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.history.v1 import HistoryEvent

from app.temporal.client import ConnectionSettings, run_and_exit
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.bench.baseline import BaselineWorkflow
from cognition.liara.bench.runner import bench_missions
from cognition.liara.bench.workers import WorkerGroup, wait_for_pollers

WARM_UP_RUNS = 3


def _ms(earlier: HistoryEvent, later: HistoryEvent) -> float:
    return (later.event_time.ToDatetime() - earlier.event_time.ToDatetime()).total_seconds() * 1000


def _kind(event: HistoryEvent) -> str:
    return str(event.WhichOneof("attributes")).removesuffix("_event_attributes")


def intervals(events: Sequence[HistoryEvent]) -> dict[str, float]:
    """The intervals of one history, by name."""
    found = {"started to closed": _ms(events[0], events[-1]), "events": float(len(events))}
    tasks = activities = 0
    for index, event in enumerate(events):
        later = events[index:]
        if _kind(event) == "workflow_task_scheduled":
            started = next(e for e in later if _kind(e) == "workflow_task_started")
            completed = next(e for e in later if _kind(e) == "workflow_task_completed")
            found[f"workflow task {tasks}: scheduled to started"] = _ms(event, started)
            found[f"workflow task {tasks}: started to completed"] = _ms(started, completed)
            tasks += 1
        elif _kind(event) == "activity_task_scheduled":
            completed = next(e for e in later if _kind(e) == "activity_task_completed")
            found[f"activity {activities}: scheduled to completed"] = _ms(event, completed)
            activities += 1
    last = [e for e in events if _kind(e) == "workflow_task_completed"][-1]
    found["last workflow task completed to closed"] = _ms(last, events[-1])
    return found


async def measure(settings: ConnectionSettings, side: str, runs: int, phases: int) -> dict[str, float]:
    agency = LiaraTemporalAgency(temporal_host=settings.address, namespace=settings.namespace)
    client = await agency.connect()
    with tempfile.TemporaryDirectory(prefix="liara-timeline-") as records:
        group = WorkerGroup(side, 1, settings, Path(records))
        try:
            await wait_for_pollers(agency, group, side)
            crises = LiaraTemporalAgency(
                temporal_host=settings.address, namespace=settings.namespace, task_queue=group.task_queue
            )
            samples: dict[str, list[float]] = {}
            for number in range(WARM_UP_RUNS + runs):
                began = time.perf_counter()
                if side == "liara":
                    workflow_id = await crises.trigger_crisis_response("bench", bench_missions(phases), "bench")
                    await crises.wait_for_crisis_completion(workflow_id)
                else:
                    workflow_id = f"bench-timeline-{uuid.uuid4()}"
                    await client.execute_workflow(
                        BaselineWorkflow.run, phases, id=workflow_id, task_queue=group.task_queue
                    )
                elapsed = (time.perf_counter() - began) * 1000
                if number < WARM_UP_RUNS:
                    continue
                history = await client.get_workflow_handle(workflow_id).fetch_history()
                for name, value in {"client: start to result": elapsed, **intervals(history.events)}.items():
                    samples.setdefault(name, []).append(value)
        finally:
            group.stop()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", help="Temporal server (default: the configured one)")
    parser.add_argument("--side", choices=("liara", "baseline", "baseline_unsandboxed"), default="liara")
    parser.add_argument("--runs", type=int, default=20, help="runs measured, one after another")
    parser.add_argument("--phases", type=int, default=4)
    args = parser.parse_args()
    settings = ConnectionSettings.resolve(address=args.address)
    figures = asyncio.run(measure(settings, args.side, args.runs, args.phases))
    print(f"{args.side}: medians of {args.runs} runs of {args.phases} phases, one at a time (ms)")
    for name, value in figures.items():
        print(f"  {name:45s} {value:8.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    run_and_exit(main)

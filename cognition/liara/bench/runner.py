"""Both sides measured in alternating rounds, then swept over concurrency and phase count."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress
from temporalio.client import Client

from app.temporal.client import ConnectionSettings
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.bench.baseline import BaselineWorkflow
from cognition.liara.bench.workers import WorkerGroup, wait_for_pollers

#: One run of one side with P phases, from start to result.
Runner = Callable[[int], Awaitable[None]]
#: How each sweep varies the plan: by concurrency (at P phases) or by phases (at concurrency C).
SWEEPS = ("concurrency", "phases")
#: The sides, in the order of the odd rounds: the bare workflow with the SDK's defaults (its
#: workflow sandbox included), the same outside the sandbox (as Liara's worker runs its workflow),
#: and Liara.
SIDES = ("baseline", "baseline_unsandboxed", "liara")
#: Each baseline, and the suffix of the figures that compare Liara with it.
BASELINES = {"baseline": "", "baseline_unsandboxed": "_unsandboxed"}


@dataclass(frozen=True)
class BenchPlan:
    crises: int = 200
    phases: int = 4
    concurrency: int = 50
    workers: int = 1
    single_runs: int = 20
    rounds: int = 3
    sweep_concurrency: tuple[int, ...] = (1, 10, 50)
    sweep_phases: tuple[int, ...] = (1, 4, 16)
    sweep_runs: int = 60

    def sweep_points(self) -> list[tuple[str, int, int]]:
        """``(sweep, phases, concurrency)`` of every sweep point, in the order they run."""
        return [("concurrency", self.phases, c) for c in self.sweep_concurrency] + [
            ("phases", p, self.concurrency) for p in self.sweep_phases
        ]


@dataclass(frozen=True)
class Load:
    """Runs at a given concurrency: each one's latency, the wall time, the workers' CPU time."""

    latencies_ms: list[float]
    wall_seconds: float
    cpu_seconds: float

    @property
    def runs_per_second(self) -> float:
        return round(len(self.latencies_ms) / self.wall_seconds, 2)


@dataclass
class SideFigures:
    """What one side (liara or baseline) measured."""

    single_latency_ms: dict[str, float]
    load_latency_ms: dict[str, float]
    runs_per_second: float
    phases_per_second: float
    worker_cpu_seconds: float
    worker_peak_rss_mib: float
    load_latencies_ms: list[float] = field(repr=False)
    sweeps: list[dict[str, Any]] = field(default_factory=list)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "p99": round(cuts[98], 2)}


async def _timed(run_once: Runner, phases: int) -> float:
    began = time.perf_counter()
    await run_once(phases)
    return (time.perf_counter() - began) * 1000


async def load_runs(
    run_once: Runner, runs: int, phases: int, concurrency: int, group: WorkerGroup, progress: Progress, label: str
) -> Load:
    task = progress.add_task(f"{label}: {runs} runs of {phases} phases at concurrency {concurrency}", total=runs)
    gate = asyncio.Semaphore(concurrency)

    async def limited() -> float:
        async with gate:
            elapsed = await _timed(run_once, phases)
            progress.advance(task)
            return elapsed

    cpu_before = group.cpu_seconds()
    began = time.perf_counter()
    latencies = await asyncio.gather(*(limited() for _ in range(runs)))
    wall = time.perf_counter() - began
    return Load([round(value, 2) for value in latencies], wall, group.cpu_seconds() - cpu_before)


@dataclass(frozen=True)
class Round:
    """One side in one round: its single runs, and N runs at concurrency C."""

    single_ms: list[float]
    load: Load


async def single_runs(
    order: tuple[str, ...], runners: dict[str, Runner], plan: BenchPlan, progress: Progress, number: int
) -> dict[str, list[float]]:
    """Each side's single runs, one after another, the sides taking turns run by run: so that the
    sides' single runs see the server alike (a load just ended, a checkpoint) instead of one side
    meeting what the other left.
    """
    task = progress.add_task(f"round {number}: single runs", total=plan.single_runs * len(order))
    single: dict[str, list[float]] = {side: [] for side in order}
    for _ in range(plan.single_runs):
        for side in order:
            single[side].append(await _timed(runners[side], plan.phases))
            progress.advance(task)
    return single


async def _sweep(side: str, run_once: Runner, group: WorkerGroup, plan: BenchPlan, progress: Progress) -> list[dict]:
    points = []
    for sweep, phases, concurrency in plan.sweep_points():
        point = await load_runs(run_once, plan.sweep_runs, phases, concurrency, group, progress, f"{side} sweep")
        points.append(
            {
                "sweep": sweep,
                "phases": phases,
                "concurrency": concurrency,
                "runs_per_second": point.runs_per_second,
                "worker_cpu_ms_per_run": round(point.cpu_seconds * 1000 / plan.sweep_runs, 2),
            }
        )
    return points


def _side_figures(rounds: list[Round], plan: BenchPlan, group: WorkerGroup, sweeps: list[dict]) -> SideFigures:
    """All rounds of a side together: latencies pooled, throughput and CPU the median round's."""
    runs_per_second = statistics.median(r.load.runs_per_second for r in rounds)
    loaded_ms = [ms for r in rounds for ms in r.load.latencies_ms]
    return SideFigures(
        single_latency_ms=percentiles([ms for r in rounds for ms in r.single_ms]),
        load_latency_ms=percentiles(loaded_ms),
        runs_per_second=round(runs_per_second, 2),
        phases_per_second=round(runs_per_second * plan.phases, 2),
        worker_cpu_seconds=round(statistics.median(r.load.cpu_seconds for r in rounds), 2),
        worker_peak_rss_mib=round(group.peak_rss_mib(), 1),
        load_latencies_ms=loaded_ms,
        sweeps=sweeps,
    )


def _round_ratios(number: int, first: str, sides: dict[str, Round]) -> dict[str, Any]:
    """One round's figures of each side, and Liara's ratios to each baseline in that round."""
    liara = sides["liara"]
    liara_p50 = statistics.median(liara.single_ms)
    entry: dict[str, Any] = {
        "round": number,
        "first": first,
        "liara_runs_per_second": liara.load.runs_per_second,
        "liara_single_p50_ms": round(liara_p50, 2),
    }
    for side, suffix in BASELINES.items():
        baseline = sides[side]
        baseline_p50 = statistics.median(baseline.single_ms)
        entry |= {
            f"{side}_runs_per_second": baseline.load.runs_per_second,
            f"{side}_single_p50_ms": round(baseline_p50, 2),
            f"throughput_ratio{suffix}": round(liara.load.runs_per_second / baseline.load.runs_per_second, 3),
            f"single_p50_ratio{suffix}": round(liara_p50 / baseline_p50, 3),
        }
    return entry


def side_order(number: int, sides: tuple[str, ...] = SIDES) -> tuple[str, ...]:
    """The sides in the order they run in round ``number`` (from 1): it reverses every round."""
    return sides if number % 2 else sides[::-1]


#: The side whose Liara workers run from another checkout (``running_sides``'s ``before``).
LIARA_BEFORE = "liara_before"


@asynccontextmanager
async def running_sides(
    settings: ConnectionSettings, workers: int, *, before: Path | None = None
) -> AsyncIterator[tuple[dict[str, WorkerGroup], dict[str, Runner]]]:
    """Every side's worker processes, polling their task queues, and each side's runner; the
    workers are stopped on leaving. ``before``: one more side, ``liara_before``, whose Liara
    workers run from that checkout (the code before a change), driven by the same client.
    """
    agency = LiaraTemporalAgency(
        temporal_host=settings.address, namespace=settings.namespace, task_queue=settings.task_queue
    )
    client = await agency.connect()
    with tempfile.TemporaryDirectory(prefix="liara-bench-") as records:
        groups = {side: WorkerGroup(side, workers, settings, Path(records)) for side in SIDES}
        if before is not None:
            groups[LIARA_BEFORE] = WorkerGroup("liara", workers, settings, Path(records), checkout=before)
        try:
            runners = {side: _baseline_run(client, groups[side].task_queue) for side in BASELINES}
            for side in ("liara", LIARA_BEFORE) if before is not None else ("liara",):
                runners[side] = _liara_run(settings, groups[side].task_queue)
            for side, group in groups.items():
                await wait_for_pollers(agency, group, side)
            yield groups, runners
        finally:
            for group in groups.values():
                group.stop()


async def run_bench(settings: ConnectionSettings, plan: BenchPlan, progress: Progress) -> dict[str, Any]:
    """Measure every side in rounds, then sweep each; return every figure, and Liara's ratios to
    each baseline.

    Every side's workers run for the whole benchmark, and the order of the sides reverses from
    round to round, so a drift of the shared server (its database grows, SQLite checkpoints)
    weighs on all sides alike. The headline ratios are medians of the rounds'.
    """
    async with running_sides(settings, plan.workers) as (groups, runners):
        for side in SIDES:
            for _ in range(3):  # warm up caches and connections
                await _timed(runners[side], plan.phases)
        rounds: dict[str, list[Round]] = {side: [] for side in SIDES}
        orders = []
        for number in range(1, plan.rounds + 1):
            order = side_order(number)
            orders.append(order[0])
            single = await single_runs(order, runners, plan, progress, number)
            for side in order:
                loaded = await load_runs(
                    runners[side],
                    plan.crises,
                    plan.phases,
                    plan.concurrency,
                    groups[side],
                    progress,
                    f"{side}, round {number}",
                )
                rounds[side].append(Round(single[side], loaded))
        sweeps = {side: await _sweep(side, runners[side], groups[side], plan, progress) for side in SIDES}
        figures = {side: _side_figures(rounds[side], plan, groups[side], sweeps[side]) for side in SIDES}
    liara = figures["liara"]
    per_round = [
        _round_ratios(number, orders[number - 1], {side: rounds[side][number - 1] for side in SIDES})
        for number in range(1, plan.rounds + 1)
    ]
    ratios: dict[str, float] = {}
    for side, suffix in BASELINES.items():
        baseline = figures[side]
        ratios |= {
            f"throughput{suffix}": round(statistics.median(r[f"throughput_ratio{suffix}"] for r in per_round), 3),
            f"single_p50_latency{suffix}": round(
                statistics.median(r[f"single_p50_ratio{suffix}"] for r in per_round), 3
            ),
            f"load_p50_latency{suffix}": round(liara.load_latency_ms["p50"] / baseline.load_latency_ms["p50"], 3),
            f"cpu{suffix}": round(liara.worker_cpu_seconds / max(baseline.worker_cpu_seconds, 0.01), 3),
        }
    return {
        "plan": asdict(plan),
        "server": settings.address,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        **{side: asdict(figures[side]) for side in SIDES},
        "rounds": per_round,
        "ratios": ratios,
        "sweeps": [_sweep_point(index, figures) for index in range(len(liara.sweeps))],
    }


def _sweep_point(index: int, figures: dict[str, SideFigures]) -> dict[str, Any]:
    """Sweep point ``index`` of every side, with Liara's throughput ratio to each baseline."""
    ours = figures["liara"].sweeps[index]
    point = {key: ours[key] for key in ("sweep", "phases", "concurrency")}
    point |= {
        "liara_runs_per_second": ours["runs_per_second"],
        "liara_worker_cpu_ms_per_run": ours["worker_cpu_ms_per_run"],
    }
    for side, suffix in BASELINES.items():
        theirs = figures[side].sweeps[index]
        point |= {
            f"{side}_runs_per_second": theirs["runs_per_second"],
            f"throughput_ratio{suffix}": round(ours["runs_per_second"] / theirs["runs_per_second"], 3),
            f"{side}_worker_cpu_ms_per_run": theirs["worker_cpu_ms_per_run"],
        }
    return point


def bench_missions(phases: int) -> list[dict[str, Any]]:
    return [
        {"phase_id": f"phase-{i}", "agent_id": f"agent-{i:03d}", "action": "bench", "target": "bench", "priority": i}
        for i in range(1, phases + 1)
    ]


def _liara_run(settings: ConnectionSettings, task_queue: str) -> Runner:
    crises = LiaraTemporalAgency(temporal_host=settings.address, namespace=settings.namespace, task_queue=task_queue)

    async def run_once(phases: int) -> None:
        workflow_id = await crises.trigger_crisis_response("bench", bench_missions(phases), "bench")
        await crises.wait_for_crisis_completion(workflow_id)

    return run_once


def _baseline_run(client: Client, task_queue: str) -> Runner:
    async def run_once(phases: int) -> None:
        await client.execute_workflow(
            BaselineWorkflow.run, phases, id=f"bench-baseline-{uuid.uuid4()}", task_queue=task_queue
        )

    return run_once

"""``liara bench``: what a crisis costs next to a bare Temporal workflow, on the same server.

Each side gets its own worker processes on a fresh task queue: Liara's dedicated worker running
crises of P simulated phases (zero duration), and the baseline worker running a plain workflow
of P no-op activities. In each round, and for each side in turn, the benchmark measures the
latency of single runs one after another, then N runs at concurrency C (latency from start to
result, throughput) and the workers' CPU time; then, on the same workers, throughput at each
concurrency and each phase count of the sweeps, and the workers' peak RSS from /proc. It prints
the figures with Liara's as ratios of the baseline's and writes them as JSON (and a PNG plot
when matplotlib is installed).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress
from temporalio.client import Client

from app.temporal.baseline import BaselineWorkflow
from app.temporal.client import ConnectionSettings
from cognition.liara.agency import LiaraTemporalAgency

WORKER_COMMANDS = {
    "liara": [sys.executable, "-m", "cognition.liara.worker", "--log-level", "WARNING"],
    "baseline": [sys.executable, "-m", "app.temporal.baseline"],
}
READY_TIMEOUT_SECONDS = 60.0
#: One run of one side with P phases, from start to result.
Runner = Callable[[int], Awaitable[None]]
#: How each sweep varies the plan: by concurrency (at P phases) or by phases (at concurrency C).
SWEEPS = ("concurrency", "phases")
#: The two sides, in the order of the odd rounds.
SIDES = ("baseline", "liara")


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


def _proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status_mib(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _proc_peak_rss_mib(pid: int) -> float:
    return _proc_status_mib(pid, "VmHWM")


def _proc_rss_mib(pid: int) -> float:
    return _proc_status_mib(pid, "VmRSS")


class WorkerGroup:
    """Worker processes of one side on their own task queue, measured from /proc."""

    def __init__(self, side: str, count: int, settings: ConnectionSettings, records: Path) -> None:
        self.task_queue = f"bench-{side}-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "TEMPORAL_ADDRESS": settings.address, "TEMPORAL_NAMESPACE": settings.namespace}
        env |= {"LIARA_TASK_QUEUE": self.task_queue, "LIARA_CRISIS_DIR": str(records)}
        command = [*WORKER_COMMANDS[side], "--task-queue", self.task_queue]
        self.processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(count)
        ]

    def cpu_seconds(self) -> float:
        return sum(_proc_cpu_seconds(p.pid) for p in self.processes)

    def peak_rss_mib(self) -> float:
        return max(_proc_peak_rss_mib(p.pid) for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


async def _timed(run_once: Runner, phases: int) -> float:
    began = time.perf_counter()
    await run_once(phases)
    return (time.perf_counter() - began) * 1000


async def _load(
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
    """One side in one round: single runs one after another, then N runs at concurrency C."""

    single_ms: list[float]
    load: Load


async def _measure_round(
    side: str, run_once: Runner, group: WorkerGroup, plan: BenchPlan, progress: Progress, number: int
) -> Round:
    task = progress.add_task(f"{side}, round {number}: single runs", total=plan.single_runs)
    single = []
    for _ in range(plan.single_runs):
        single.append(await _timed(run_once, plan.phases))
        progress.advance(task)
    loaded = await _load(
        run_once, plan.crises, plan.phases, plan.concurrency, group, progress, f"{side}, round {number}"
    )
    return Round(single, loaded)


async def _sweep(side: str, run_once: Runner, group: WorkerGroup, plan: BenchPlan, progress: Progress) -> list[dict]:
    points = []
    for sweep, phases, concurrency in plan.sweep_points():
        point = await _load(run_once, plan.sweep_runs, phases, concurrency, group, progress, f"{side} sweep")
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


def _round_ratios(number: int, first: str, liara: Round, baseline: Round) -> dict[str, Any]:
    liara_p50, baseline_p50 = statistics.median(liara.single_ms), statistics.median(baseline.single_ms)
    return {
        "round": number,
        "first": first,
        "baseline_runs_per_second": baseline.load.runs_per_second,
        "liara_runs_per_second": liara.load.runs_per_second,
        "throughput_ratio": round(liara.load.runs_per_second / baseline.load.runs_per_second, 3),
        "baseline_single_p50_ms": round(baseline_p50, 2),
        "liara_single_p50_ms": round(liara_p50, 2),
        "single_p50_ratio": round(liara_p50 / baseline_p50, 3),
    }


async def run_bench(settings: ConnectionSettings, plan: BenchPlan, progress: Progress) -> dict[str, Any]:
    """Measure both sides in alternating rounds, then sweep each; return every figure and ratio.

    Both sides' workers run for the whole benchmark, and the side that goes first alternates
    from round to round, so a drift of the shared server (its database grows, SQLite
    checkpoints) weighs on both sides alike. The headline ratios are medians of the rounds'.
    """
    agency = LiaraTemporalAgency(
        temporal_host=settings.address, namespace=settings.namespace, task_queue=settings.task_queue
    )
    client = await agency.connect()
    with tempfile.TemporaryDirectory(prefix="liara-bench-") as records:
        groups = {side: WorkerGroup(side, plan.workers, settings, Path(records)) for side in SIDES}
        try:
            runners = {
                "baseline": _baseline_run(client, groups["baseline"].task_queue),
                "liara": _liara_run(settings, groups["liara"].task_queue),
            }
            for side in SIDES:
                await _wait_for_pollers(agency, groups[side], side)
                for _ in range(3):  # warm up caches and connections
                    await _timed(runners[side], plan.phases)
            rounds: dict[str, list[Round]] = {side: [] for side in SIDES}
            orders = []
            for number in range(1, plan.rounds + 1):
                order = SIDES if number % 2 else SIDES[::-1]
                orders.append(order[0])
                for side in order:
                    rounds[side].append(await _measure_round(side, runners[side], groups[side], plan, progress, number))
            sweeps = {side: await _sweep(side, runners[side], groups[side], plan, progress) for side in SIDES}
            figures = {side: _side_figures(rounds[side], plan, groups[side], sweeps[side]) for side in SIDES}
        finally:
            for group in groups.values():
                group.stop()
    liara, baseline = figures["liara"], figures["baseline"]
    per_round = [
        _round_ratios(number, first, ours, theirs)
        for number, first, ours, theirs in zip(
            range(1, plan.rounds + 1), orders, rounds["liara"], rounds["baseline"], strict=True
        )
    ]
    return {
        "plan": asdict(plan),
        "server": settings.address,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "liara": asdict(liara),
        "baseline": asdict(baseline),
        "rounds": per_round,
        "ratios": {
            "throughput": round(statistics.median(r["throughput_ratio"] for r in per_round), 3),
            "single_p50_latency": round(statistics.median(r["single_p50_ratio"] for r in per_round), 3),
            "load_p50_latency": round(liara.load_latency_ms["p50"] / baseline.load_latency_ms["p50"], 3),
            "cpu": round(liara.worker_cpu_seconds / max(baseline.worker_cpu_seconds, 0.01), 3),
        },
        "sweeps": [
            {
                **{key: ours[key] for key in ("sweep", "phases", "concurrency")},
                "baseline_runs_per_second": theirs["runs_per_second"],
                "liara_runs_per_second": ours["runs_per_second"],
                "throughput_ratio": round(ours["runs_per_second"] / theirs["runs_per_second"], 3),
                "baseline_worker_cpu_ms_per_run": theirs["worker_cpu_ms_per_run"],
                "liara_worker_cpu_ms_per_run": ours["worker_cpu_ms_per_run"],
            }
            for ours, theirs in zip(liara.sweeps, baseline.sweeps, strict=True)
        ],
    }


async def measure_gate_memory(settings: ConnectionSettings, crises: int, progress: Progress) -> dict[str, Any]:
    """Worker RSS with ``crises`` crises in flight, each waiting at an approval gate.

    Every waiting crisis stays in the worker's workflow cache, so this is the memory a worker
    needs to hold that many open crises. The crises are terminated afterwards.
    """
    gate = [
        {"phase_id": "gate", "agent_id": "agent-001", "action": "bench", "target": "bench", "requires_approval": True}
    ]
    with tempfile.TemporaryDirectory(prefix="liara-bench-") as records:
        group = WorkerGroup("liara", 1, settings, Path(records))
        agency = LiaraTemporalAgency(
            temporal_host=settings.address, namespace=settings.namespace, task_queue=group.task_queue
        )
        client = await agency.connect()
        workflow_ids: list[str] = []
        try:
            await _wait_for_pollers(agency, group, "liara")
            rss_idle = _proc_rss_mib(group.processes[0].pid)
            starting = progress.add_task(f"starting {crises} gated crises", total=crises)
            limit = asyncio.Semaphore(50)

            async def start_one() -> str:
                async with limit:
                    workflow_id = await agency.trigger_crisis_response("bench", gate, "bench")
                    progress.advance(starting)
                    return workflow_id

            workflow_ids = list(await asyncio.gather(*(start_one() for _ in range(crises))))
            waiting = progress.add_task("waiting at the gate", total=crises)
            query = (
                f"WorkflowType = 'CrisisResponseWorkflow' AND TaskQueue = '{group.task_queue}' "
                "AND CrisisStatus = 'awaiting_approval'"
            )
            deadline = time.monotonic() + 600
            while (count := (await client.count_workflows(query)).count) < crises:
                progress.update(waiting, completed=count)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {count} of {crises} crises reached the approval gate")
                await asyncio.sleep(0.5)
            pid = group.processes[0].pid
            figures = {
                "gated_crises": crises,
                "worker_rss_idle_mib": round(rss_idle, 1),
                "worker_rss_mib": round(_proc_rss_mib(pid), 1),
                "worker_peak_rss_mib": round(_proc_peak_rss_mib(pid), 1),
            }
        finally:
            await asyncio.gather(
                *(client.get_workflow_handle(w).terminate("benchmark over") for w in workflow_ids),
                return_exceptions=True,
            )
            group.stop()
    return figures


async def _wait_for_pollers(agency: LiaraTemporalAgency, group: WorkerGroup, side: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while await agency.pollers(group.task_queue) < len(group.processes):
        if time.monotonic() > deadline or any(p.poll() is not None for p in group.processes):
            raise RuntimeError(f"the {side} workers did not start polling {group.task_queue}")
        await asyncio.sleep(0.2)


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


def write_results(results: dict[str, Any], output_dir: Path) -> list[Path]:
    """The JSON figures and, with matplotlib installed, a latency plot; returns the files written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = output_dir / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    written = [stem.with_suffix(".json")]
    written[0].write_text(json.dumps(results, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return written
    sweeps = results["sweeps"]
    panels = 1 + sum(1 for sweep in SWEEPS if any(point["sweep"] == sweep for point in sweeps))
    figure, axes = pyplot.subplots(1, panels, figsize=(6 * panels, 4.5), squeeze=False)
    histogram = axes[0][0]
    for side in ("baseline", "liara"):
        histogram.hist(results[side]["load_latencies_ms"], bins=40, alpha=0.6, label=side)
    plan = results["plan"]
    histogram.set_title(f"Latency: {plan['crises']} runs of P={plan['phases']} at C={plan['concurrency']}")
    histogram.set_xlabel("start to result, ms")
    histogram.set_ylabel("runs")
    histogram.legend()
    for axis, sweep in zip(axes[0][1:], [s for s in SWEEPS if any(p["sweep"] == s for p in sweeps)], strict=True):
        points = [point for point in sweeps if point["sweep"] == sweep]
        for side in ("baseline", "liara"):
            axis.plot([p[sweep] for p in points], [p[f"{side}_runs_per_second"] for p in points], "o-", label=side)
        fixed = "phases" if sweep == "concurrency" else "concurrency"
        axis.set_title(f"Throughput against {sweep} ({fixed} {points[0][fixed]})")
        axis.set_xscale("log", base=2)
        axis.set_xlabel(sweep)
        axis.set_ylabel("runs/s")
        if sweep == "phases":
            axis.set_yscale("log")  # cost linear in P: a straight line of slope -1
        axis.legend()
    figure.tight_layout()
    figure.savefig(stem.with_suffix(".png"))
    written.append(stem.with_suffix(".png"))
    return written

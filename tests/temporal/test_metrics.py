"""Worker metrics end to end: a worker process started with ``--metrics-port`` runs crises on the
dev server, and its Prometheus endpoint is scraped as Prometheus would.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from app.temporal import metrics
from app.temporal.models import ApprovalDecision, CrisisRequest, PhaseStatus
from app.temporal.workflows import CrisisResponseWorkflow
from tests.helpers import assert_eventually
from tests.helpers.metrics import PORT_IN_USE_ADVICE, SDK_DASHBOARD_METRICS, crisis_request, start_crisis
from tests.helpers.network import non_loopback_address
from tests.helpers.processes import run_script

pytestmark = pytest.mark.integration

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class Scrape:
    """One scrape of a ``/metrics`` page in the Prometheus text format."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match and not line.startswith("#"):
                name, labels, value = match.groups()
                self.samples.append((name, dict(_LABEL.findall(labels or "")), float(value)))

    @property
    def families(self) -> set[str]:
        names = {name for name, _, _ in self.samples}
        return names | {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}

    def by(self, name: str, *labels: str, **match: str) -> dict[tuple[str, ...], float]:
        """Values of ``name`` summed by ``labels``, over the samples whose labels include ``match``."""
        found: dict[tuple[str, ...], float] = defaultdict(float)
        for sample, sample_labels, value in self.samples:
            if sample == name and all(sample_labels.get(k) == v for k, v in match.items()):
                found[tuple(sample_labels.get(label, "") for label in labels)] += value
        return dict(found)

    def total(self, name: str, **match: str) -> float:
        return self.by(name, **match).get((), 0.0)

    def series(self, name: str, **match: str) -> list[dict[str, str]]:
        """Label sets of the samples of ``name`` whose labels include ``match``."""
        return [labels for sample, labels, _ in self.samples if sample == name and match.items() <= labels.items()]


async def scrape(port: int) -> Scrape:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    return Scrape(response.text)


def free_port(consecutive: int = 1, host: str = metrics.METRICS_HOST) -> int:
    """A port of ``host`` with ``consecutive - 1`` free ports after it, free when asked."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if port + consecutive - 1 > 65535:
            continue
        try:
            for offset in range(1, consecutive):
                with socket.socket() as follower:
                    follower.bind((host, port + offset))
        except OSError:
            continue
        return port
    raise AssertionError(f"no {consecutive} consecutive free ports found")


def crisis(*phases: dict[str, Any]) -> CrisisRequest:
    return crisis_request(*phases, heartbeat_timeout_seconds=5)


async def test_worker_serves_the_sdk_metrics_and_the_crisis_metrics(dev_server, spawn, liara_env, task_queue, tmp_path):
    port = free_port()
    worker = await asyncio.to_thread(
        spawn, "cognition/liara/worker.py", liara_env, tmp_path, "--metrics-port", str(port)
    )
    assert f"INFO - Prometheus metrics: http://127.0.0.1:{port}/metrics" in worker.lines, worker.output
    client = dev_server.client
    queue = {"task_queue": task_queue}

    # The crisis counters are there from the start, at 0, so rate() sees the first crisis.
    before = await scrape(port)
    for name in (metrics.CRISES_STARTED, *metrics.CRISES_ENDED.values()):
        assert before.by(name, "workflow_type", **queue) == {("CrisisResponseWorkflow",): 0}, name

    completed = crisis(
        {"phase_id": "recon-1", "action": "reconnaissance"}, {"phase_id": "cleanup-2", "action": "cleanup"}
    )
    failed = crisis(
        {"phase_id": "recon-1", "action": "reconnaissance"},
        {"phase_id": "secure-2", "action": "secure", "params": {"fail": "permanent"}},
        {
            "phase_id": "extract-3",
            "action": "extract",
            "params": {"fail_attempts": 1},
            "retry": {"maximum_attempts": 3, "initial_interval_seconds": 0.1},
        },
    )
    cancelled = crisis(
        {"phase_id": "secure-1", "action": "secure", "compensate_action": "release"},
        {"phase_id": "extract-2", "action": "extract", "params": {"hang": True}},
        {"phase_id": "cleanup-3", "action": "cleanup"},
    )
    assert (await (await start_crisis(client, completed, task_queue)).result()).status == "completed"
    assert (await (await start_crisis(client, failed, task_queue)).result()).status == "failed"
    handle = await start_crisis(client, cancelled, task_queue)

    async def extract_running() -> bool:
        progress = await handle.query(CrisisResponseWorkflow.progress)
        return any(p.phase_id == "extract-2" and p.status == PhaseStatus.RUNNING for p in progress.phases)

    await assert_eventually(extract_running, timeout=30)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()

    page: Scrape | None = None

    async def all_crises_counted() -> bool:
        nonlocal page
        page = await scrape(port)
        return page.total(metrics.CRISES_CANCELLED, **queue) == 1

    await assert_eventually(all_crises_counted)
    assert page is not None

    # Liara's own metrics: one series each for the crisis counters (the zeroed one, counted on).
    for name in (metrics.CRISES_STARTED, *metrics.CRISES_ENDED.values()):
        assert len(page.series(name, **queue)) == 1, page.series(name, **queue)
    assert page.total(metrics.CRISES_STARTED, **queue) == 3
    assert page.total(metrics.CRISES_COMPLETED, **queue) == 1
    assert page.total(metrics.CRISES_FAILED, **queue) == 1
    assert page.by(metrics.PHASES, "action", "outcome", **queue) == {
        ("reconnaissance", "completed"): 2,
        ("cleanup", "completed"): 1,
        ("secure", "failed"): 1,
        ("extract", "completed"): 1,
        ("secure", "completed"): 1,
        ("extract", "cancelled"): 1,
        ("cleanup", "skipped"): 1,
    }
    assert page.by(metrics.COMPENSATIONS, "action", "outcome", **queue) == {("release", "completed"): 1}
    assert page.by(metrics.PHASE_RETRIES, "action", **queue) == {("extract",): 1}
    attempts = page.by(f"{metrics.PHASE_DURATION}_count", "action", "outcome", **queue)
    assert attempts == {
        ("reconnaissance", "completed"): 2,
        ("cleanup", "completed"): 1,
        ("secure", "failed"): 1,
        ("extract", "failed"): 1,
        ("extract", "completed"): 1,
        ("secure", "completed"): 1,
        ("extract", "cancelled"): 1,
        ("release", "completed"): 1,
    }
    for (action, outcome), count in attempts.items():
        series = {**queue, "action": action, "outcome": outcome}
        buckets = page.by(f"{metrics.PHASE_DURATION}_bucket", "le", **series)
        bounds = sorted((float(le), value) for (le,), value in buckets.items())
        assert [bound for bound, _ in bounds] == [*map(float, metrics.PHASE_DURATION_BUCKETS), float("inf")]
        assert [value for _, value in bounds] == sorted(value for _, value in bounds)  # cumulative
        assert bounds[-1][1] == count
        assert page.total(f"{metrics.PHASE_DURATION}_sum", **series) >= 0
    # The hung agent ran until it was cancelled: its attempt is the longest of all.
    cancelled_series = {**queue, "action": "extract", "outcome": "cancelled"}
    assert page.total(f"{metrics.PHASE_DURATION}_sum", **cancelled_series) > page.total(
        f"{metrics.PHASE_DURATION}_sum", **{**queue, "action": "cleanup", "outcome": "completed"}
    )

    # The SDK's own metrics, with this worker's task queue and the crisis workflow.
    assert page.total("temporal_workflow_completed", **queue, workflow_type="CrisisResponseWorkflow") == 2
    agent_attempts = page.total(
        "temporal_activity_execution_latency_count", **queue, activity_type="perform_agent_mission"
    )
    assert agent_attempts >= sum(attempts.values()) - 1  # the cancelled attempt may not be timed by the SDK
    assert page.total("temporal_activity_execution_failed", **queue, activity_type="perform_agent_mission") >= 2
    assert page.total("temporal_workflow_task_schedule_to_start_latency_count", **queue) > 0
    assert page.total("temporal_worker_task_slots_available", **queue, worker_type="ActivityWorker") > 0
    assert page.by("temporal_num_pollers", "poller_type", **queue).keys() >= {("workflow_task",), ("activity_task",)}
    # Every metric the Grafana dashboard reads is there (the model metrics come with a first model
    # call: see test_model_metrics.py).
    assert SDK_DASHBOARD_METRICS | (set(metrics.LIARA_METRICS) - set(metrics.MODEL_METRICS)) <= page.families

    assert await asyncio.to_thread(worker.stop) == 0, worker.output


async def test_each_worker_process_serves_its_own_port(spawn, liara_env, task_queue, tmp_path):
    port = free_port(consecutive=2)
    worker = await asyncio.to_thread(
        spawn, "cognition/liara/worker.py", liara_env, tmp_path, "--processes", "2", "--metrics-port", str(port)
    )
    ready = "Liara worker is running. Press Ctrl+C to stop."

    async def both_ready() -> bool:
        return all(f"[worker-{n}] {ready}" in worker.output for n in (1, 2))

    await assert_eventually(both_ready, timeout=60)
    assert f"INFO - [worker-1] Prometheus metrics: http://127.0.0.1:{port}/metrics" in worker.lines, worker.output
    assert f"INFO - [worker-2] Prometheus metrics: http://127.0.0.1:{port + 1}/metrics" in worker.lines, worker.output

    for served in (port, port + 1):
        page = await scrape(served)
        assert page.total("temporal_worker_start", task_queue=task_queue) == 1
        assert ("workflow_task",) in page.by("temporal_num_pollers", "poller_type", task_queue=task_queue)
    assert await asyncio.to_thread(worker.stop) == 0, worker.output


def test_a_taken_port_stops_every_worker_process_with_exit_1(dev_server, liara_env, tmp_path):
    port = free_port(consecutive=2)
    with socket.socket() as taken:
        taken.bind((metrics.METRICS_HOST, port + 1))
        taken.listen()
        done = run_script(
            "cognition/liara/worker.py",
            liara_env,
            tmp_path,
            "--processes",
            "2",
            "--metrics-port",
            str(port),
            timeout=120,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("ERROR - ")]
    assert errors == [f"ERROR - [worker-2] Cannot serve metrics on port {port + 1}: {PORT_IN_USE_ADVICE}"], output
    assert "Traceback" not in output


# --- where the endpoint listens ----------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 and IPv6 addresses with a socket listening on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host byte order (little-endian here).
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, words))
    return found


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


async def test_metrics_listen_on_loopback_only_unless_a_host_is_given(spawn, liara_env, tmp_path):
    port = free_port(host="0.0.0.0")
    worker = await asyncio.to_thread(
        spawn, "cognition/liara/worker.py", liara_env, tmp_path, "--metrics-port", str(port)
    )
    assert f"INFO - Prometheus metrics: http://127.0.0.1:{port}/metrics" in worker.lines, worker.output
    assert listening_addresses(port) == {"127.0.0.1"}
    assert (await scrape(port)).total("temporal_worker_start", task_queue=liara_env["LIARA_TASK_QUEUE"]) == 1
    outside = non_loopback_address()
    if outside:
        assert not connects(outside, port), f"{outside}:{port} answers"
    assert await asyncio.to_thread(worker.stop) == 0, worker.output

    everywhere = free_port(host="0.0.0.0")
    env = {**liara_env, metrics.METRICS_HOST_ENV: "0.0.0.0"}
    worker = await asyncio.to_thread(
        spawn, "cognition/liara/worker.py", env, tmp_path, "--metrics-port", str(everywhere)
    )
    assert f"INFO - Prometheus metrics: http://0.0.0.0:{everywhere}/metrics" in worker.lines, worker.output
    assert listening_addresses(everywhere) == {"0.0.0.0"}
    if outside:
        assert connects(outside, everywhere), f"{outside}:{everywhere} does not answer"
    assert await asyncio.to_thread(worker.stop) == 0, worker.output


def test_a_metrics_host_that_is_not_an_ip_address_is_one_sentence(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TEMPORAL_ADDRESS": "127.0.0.1:1", "LIARA_CRISIS_DIR": str(tmp_path)}
    args = ("--metrics-port", str(free_port()), "--metrics-host", "localhost")
    done = run_script("cognition/liara/worker.py", env, tmp_path, *args)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("ERROR - ")]
    assert errors == [
        "ERROR - Metrics host 'localhost' is not an IP address: give --metrics-host an address such as "
        "127.0.0.1 (this machine only) or 0.0.0.0 (every interface)."
    ], output
    assert "Traceback" not in output


# --- the action label is capped ----------------------------------------------------------------


async def test_actions_past_the_first_hundred_are_labelled_other(dev_server, spawn, liara_env, task_queue, tmp_path):
    """A fresh worker process (its own first hundred) runs one crisis with 103 distinct actions:
    the first 100 keep their label on every crisis metric, the last three share ``other``."""
    count = metrics.MAX_ACTION_LABELS + 3
    actions = [f"act-{n:03d}" for n in range(count)]
    quick_retry = {"maximum_attempts": 2, "initial_interval_seconds": 0.1}
    phases = [{"phase_id": f"phase-{n:03d}", "action": action} for n, action in enumerate(actions)]
    # One retried phase among the labelled ones and one among the others.
    phases[0].update(params={"fail_attempts": 1}, retry=quick_retry)
    phases[-1].update(params={"fail_attempts": 1}, retry=quick_retry)
    port = free_port()
    worker = await asyncio.to_thread(
        spawn, "cognition/liara/worker.py", liara_env, tmp_path, "--metrics-port", str(port)
    )
    queue = {"task_queue": task_queue}

    result = await (await start_crisis(dev_server.client, crisis(*phases), task_queue)).result()
    assert result.status == "completed", result

    page: Scrape | None = None

    async def crisis_counted() -> bool:
        nonlocal page
        page = await scrape(port)
        return page.total(metrics.CRISES_COMPLETED, **queue) == 1

    await assert_eventually(crisis_counted)
    assert page is not None
    kept = {(action, "completed"): 1 for action in actions[: metrics.MAX_ACTION_LABELS]}
    assert page.by(metrics.PHASES, "action", "outcome", **queue) == {**kept, ("other", "completed"): 3}
    assert page.by(metrics.PHASE_RETRIES, "action", **queue) == {("act-000",): 1, ("other",): 1}
    attempts = page.by(f"{metrics.PHASE_DURATION}_count", "action", "outcome", **queue)
    assert attempts == {**kept, ("act-000", "failed"): 1, ("other", "completed"): 3, ("other", "failed"): 1}
    labels = {labels["action"] for name, labels, _ in page.samples if name.startswith("liara_") and "action" in labels}
    assert len(labels) == metrics.MAX_ACTION_LABELS + 1
    assert not set(actions[metrics.MAX_ACTION_LABELS :]) & labels
    assert await asyncio.to_thread(worker.stop) == 0, worker.output


async def test_the_workflow_cache_setting_bounds_the_crises_a_worker_keeps_in_memory(
    dev_server, spawn, liara_env, task_queue, tmp_path
):
    port = free_port()
    args = ("--metrics-port", str(port), "--max-cached-workflows", "2")
    worker = await asyncio.to_thread(spawn, "cognition/liara/worker.py", liara_env, tmp_path, *args)
    assert "INFO - Crises kept in memory: at most 2" in worker.lines, worker.output
    client = dev_server.client
    gated = [crisis({"phase_id": "gate", "action": "reconnaissance", "requires_approval": True}) for _ in range(5)]
    handles = [await start_crisis(client, request, task_queue) for request in gated]

    async def all_at_the_gate() -> bool:
        reports = [await handle.query(CrisisResponseWorkflow.progress) for handle in handles]
        return all(report.phases[0].status == PhaseStatus.AWAITING_APPROVAL for report in reports)

    await assert_eventually(all_at_the_gate, timeout=60, interval=0.5)
    gated_scrape = await scrape(port)
    assert "temporal_sticky_cache_size" in gated_scrape.families
    assert 1 <= gated_scrape.total("temporal_sticky_cache_size") <= 2

    # Crises out of the cache are replayed when their approval comes, and complete.
    for handle in handles:
        decision = ApprovalDecision(phase_id="gate", approved=True, decided_by="ops-1")
        await handle.execute_update(CrisisResponseWorkflow.decide_approval, decision)
    results = [await handle.result() for handle in handles]
    assert [result.status for result in results] == ["completed"] * len(handles)
    assert (await scrape(port)).total("temporal_sticky_cache_size") <= 2

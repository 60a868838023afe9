"""Crisis metrics, the Grafana dashboard, worker log formats and the tracing switch, without a dev server.

Metrics are read from a ``MetricBuffer`` runtime: crises run on the time-skipping test server
with the real activities (simulated agents), and recorded histories are replayed on it to show
that replay records nothing.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import socket
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import CancelledError
from temporalio.runtime import (
    BufferedMetricUpdate,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from app.temporal import metrics
from app.temporal.logs import CrisisContextFilter, JsonFormatter, crisis_fields_of
from app.temporal.models import CrisisRequest, PhaseAssignment, PhaseLogEntry, PhaseOutcome, PhaseStatus
from app.temporal.records import FileRecordStore
from app.temporal.tracing import INSTALL_HINT, TracingUnavailableError, start_tracing
from app.temporal.workflows import CrisisResponseWorkflow
from tests.helpers import REPO_ROOT, assert_eventually
from tests.helpers.metrics import PORT_IN_USE_ADVICE, SDK_DASHBOARD_METRICS, crisis_request, start_crisis
from tests.helpers.processes import run_script
from tests.helpers.workflows import crisis_worker

DASHBOARD = REPO_ROOT / "deploy/grafana/liara-dashboard.json"
HISTORIES = sorted((REPO_ROOT / "tests/temporal/histories").glob("*.json"))

#: Made by Prometheus itself for every scrape target.
PROMETHEUS_METRICS = {"up"}
KNOWN_METRICS = set(metrics.LIARA_METRICS) | SDK_DASHBOARD_METRICS | PROMETHEUS_METRICS
_METRIC_TOKEN = re.compile(r"\b(?:liara|temporal)_[a-z_]+\b|\bup\b(?=\s*\{)")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


# --- metrics from a crisis ---------------------------------------------------------------------


@pytest.fixture
def buffer() -> MetricBuffer:
    return MetricBuffer(100_000, duration_format=MetricBufferDurationFormat.SECONDS)


@pytest.fixture
async def metered_client(time_skipping_env: WorkflowEnvironment, buffer: MetricBuffer) -> Client:
    """A client of the time-skipping server whose workers record metrics into ``buffer``."""
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    return await Client.connect(
        time_skipping_env.client.service_client.config.target_host,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )


@pytest.fixture
def store(tmp_path: Path) -> FileRecordStore:
    return FileRecordStore(tmp_path / "crises")


def totals(updates: Sequence[BufferedMetricUpdate], name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """Counter ``name`` summed by the values of ``labels``."""
    found: dict[tuple[str, ...], float] = defaultdict(float)
    for update in updates:
        if update.metric.name == name:
            found[tuple(str(update.attributes.get(label)) for label in labels)] += update.value
    return dict(found)


def observations(updates: Sequence[BufferedMetricUpdate], name: str) -> list[tuple[str, str, float]]:
    """``(action, outcome, value)`` of each histogram observation of ``name``."""
    return [
        (str(u.attributes["action"]), str(u.attributes["outcome"]), float(u.value))
        for u in updates
        if u.metric.name == name
    ]


async def test_a_crisis_counts_its_start_end_phases_retries_and_attempt_durations(
    metered_client, buffer, task_queue, store
):
    request = crisis_request(
        {"phase_id": "recon-1", "action": "reconnaissance"},
        {"phase_id": "secure-2", "action": "secure", "params": {"fail": "permanent"}},
        {
            "phase_id": "extract-3",
            "action": "extract",
            "params": {"fail_attempts": 2},
            "retry": {"maximum_attempts": 3, "initial_interval_seconds": 1},
        },
        crisis_id="crisis-metrics-1",
    )
    async with crisis_worker(metered_client, task_queue, store):
        result = await (await start_crisis(metered_client, request, task_queue)).result()
    assert result.status == "failed"

    updates = buffer.retrieve_updates()
    assert totals(updates, metrics.CRISES_STARTED, "task_queue") == {(task_queue,): 1}
    assert totals(updates, metrics.CRISES_FAILED, "workflow_type") == {("CrisisResponseWorkflow",): 1}
    assert totals(updates, metrics.CRISES_COMPLETED) == {}
    assert totals(updates, metrics.PHASES, "action", "outcome") == {
        ("reconnaissance", "completed"): 1,
        ("secure", "failed"): 1,
        ("extract", "completed"): 1,
    }
    assert totals(updates, metrics.PHASE_RETRIES, "action") == {("extract",): 2}
    attempts = observations(updates, metrics.PHASE_DURATION)
    assert sorted((action, outcome) for action, outcome, _ in attempts) == [
        ("extract", "completed"),
        ("extract", "failed"),
        ("extract", "failed"),
        ("reconnaissance", "completed"),
        ("secure", "failed"),
    ]
    assert all(seconds >= 0 for _, _, seconds in attempts)


async def test_a_completed_crisis_counts_completed(metered_client, buffer, task_queue, store):
    request = crisis_request({"phase_id": "recon-1", "action": "reconnaissance"}, crisis_id="crisis-metrics-2")
    async with crisis_worker(metered_client, task_queue, store):
        assert (await (await start_crisis(metered_client, request, task_queue)).result()).success

    updates = buffer.retrieve_updates()
    assert totals(updates, metrics.CRISES_STARTED) == {(): 1}
    assert totals(updates, metrics.CRISES_COMPLETED) == {(): 1}
    assert totals(updates, metrics.CRISES_FAILED) == {}


async def test_a_cancelled_crisis_counts_cancelled_phases_skipped_ones_and_compensations(
    metered_client, buffer, task_queue, store
):
    request = crisis_request(
        {"phase_id": "secure-1", "action": "secure", "compensate_action": "release"},
        {"phase_id": "extract-2", "action": "extract", "params": {"hang": True}},
        {"phase_id": "cleanup-3", "action": "cleanup"},
        crisis_id="crisis-metrics-3",
        heartbeat_timeout_seconds=5,
    )
    async with crisis_worker(metered_client, task_queue, store):
        handle = await start_crisis(metered_client, request, task_queue)

        async def extract_running() -> bool:
            progress = await handle.query(CrisisResponseWorkflow.progress)
            return any(p.phase_id == "extract-2" and p.status == PhaseStatus.RUNNING for p in progress.phases)

        await assert_eventually(extract_running)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)

    updates = buffer.retrieve_updates()
    assert totals(updates, metrics.CRISES_CANCELLED) == {(): 1}
    assert totals(updates, metrics.CRISES_FAILED) == {}
    assert totals(updates, metrics.PHASES, "action", "outcome") == {
        ("secure", "completed"): 1,
        ("extract", "cancelled"): 1,
        ("cleanup", "skipped"): 1,
    }
    assert totals(updates, metrics.COMPENSATIONS, "action", "outcome") == {("release", "completed"): 1}
    assert ("extract", "cancelled") in {
        (action, outcome) for action, outcome, _ in observations(updates, "liara_phase_duration")
    }


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_replaying_a_crisis_records_no_crisis_metrics(path: Path) -> None:
    buffer = MetricBuffer(10_000)
    replayer = Replayer(
        workflows=[CrisisResponseWorkflow],
        data_converter=pydantic_data_converter,
        runtime=Runtime(telemetry=TelemetryConfig(metrics=buffer)),
    )
    history = WorkflowHistory.from_json(f"crisis-workflow-{path.stem}", path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
    assert [u.metric.name for u in buffer.retrieve_updates() if u.metric.name.startswith("liara_")] == []


# --- the metrics endpoint ------------------------------------------------------------------------


def test_a_port_in_use_is_one_sentence_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind((metrics.METRICS_HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(metrics.MetricsUnavailableError) as err:
            metrics.worker_runtime(port)
    message = str(err.value)
    assert f"port {port}" in message and "already in use" in message
    assert message.endswith(".") and message.count(". ") == 0


def test_worker_with_a_port_in_use_exits_1_before_connecting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((metrics.METRICS_HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PATH": "/usr/bin:/bin", "TEMPORAL_ADDRESS": "127.0.0.1:1", "LIARA_CRISIS_DIR": str(tmp_path)}
        done = run_script("cognition/liara/worker.py", env, tmp_path, "--metrics-port", str(port))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    errors = [line for line in output.splitlines() if line.startswith("ERROR - ")]
    assert errors == [f"ERROR - Cannot serve metrics on port {port}: {PORT_IN_USE_ADVICE}"], output
    assert "Traceback" not in output


def test_metrics_port_range_must_fit_every_process(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    done = run_script("cognition/liara/worker.py", env, tmp_path, "--processes", "3", "--metrics-port", "65534")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "choose a lower port" in done.stderr


# --- the Grafana dashboard -------------------------------------------------------------------------


def dashboard_panels() -> Iterator[dict[str, Any]]:
    model = json.loads(DASHBOARD.read_text())
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


def metric_names(expr: str) -> set[str]:
    names = set()
    for token in _METRIC_TOKEN.findall(expr):
        for suffix in _HISTOGRAM_SUFFIXES:
            if token.endswith(suffix) and token.removesuffix(suffix) in KNOWN_METRICS:
                token = token.removesuffix(suffix)
        names.add(token)
    return names


def test_dashboard_is_a_grafana_model_with_a_prometheus_datasource_variable() -> None:
    model = json.loads(DASHBOARD.read_text())
    assert model["title"] and model["uid"] and isinstance(model["schemaVersion"], int)
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard_panels():
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids))


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """``(where, PromQL)`` of every panel target and every query variable."""
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        if variable["type"] == "query":
            yield f"variable {variable['name']}", variable["query"]["query"]


def test_every_dashboard_query_reads_metrics_that_workers_emit() -> None:
    used: set[str] = set()
    for where, expr in dashboard_queries():
        names = metric_names(expr)
        assert names, f"{where}: {expr}"
        assert names <= KNOWN_METRICS, f"{where}: unknown {names - KNOWN_METRICS}"
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
        used |= names
    # Every crisis metric is on the dashboard, and every SDK metric listed here is used.
    assert set(metrics.LIARA_METRICS) <= used
    assert SDK_DASHBOARD_METRICS <= used


def test_dashboard_covers_the_key_metrics() -> None:
    titles = " | ".join(panel["title"].lower() for panel in dashboard_panels())
    for topic in ("success rate", "failure rate", "phase duration", "retries", "backlog", "workers up", "in flight"):
        assert topic in titles, topic


# --- logs --------------------------------------------------------------------------------------------


def record(message: str, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("liara.activities", logging.INFO, __file__, 1, message, None, None)
    made.__dict__.update(extra)
    return made


def test_json_lines_carry_the_crisis_fields_when_known() -> None:
    formatter, crisis_filter = JsonFormatter(), CrisisContextFilter()
    known = record(
        "AGENT DEPLOYMENT - Phase: p1", crisis_id="c-1", phase_id="p1", temporal_activity={"workflow_id": "w-1"}
    )
    unknown = record("Connected to Temporal server")
    assert crisis_filter.filter(known) and crisis_filter.filter(unknown)

    line = json.loads(formatter.format(known))
    assert line["level"] == "INFO" and line["logger"] == "liara.activities"
    assert line["message"] == "AGENT DEPLOYMENT - Phase: p1"
    assert (line["crisis_id"], line["workflow_id"], line["phase_id"]) == ("c-1", "w-1", "p1")
    assert set(json.loads(formatter.format(unknown))) == {"time", "level", "logger", "message"}


def test_crisis_fields_come_from_each_activity_input() -> None:
    phase = {"phase_id": "p1", "agent_id": "a1", "action": "recon", "target": "t"}
    request = CrisisRequest.model_validate({"crisis_id": "c-1", "target_member": "t", "missions": [phase]})
    assignment = PhaseAssignment(crisis_id="c-1", workflow_id="w-1", phase=request.missions[0])
    entry = PhaseLogEntry(
        crisis_id="c-1", target="t", outcome=PhaseOutcome(phase_id="p1", agent_id="a1", action="recon")
    )
    assert crisis_fields_of(request) == ("c-1", None)
    assert crisis_fields_of(assignment) == ("c-1", "p1")
    assert crisis_fields_of(entry) == ("c-1", "p1")
    assert crisis_fields_of(None) == (None, None)


# --- tracing -------------------------------------------------------------------------------------------


def test_tracing_without_opentelemetry_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_opentelemetry(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry") or name == "temporalio.contrib.opentelemetry":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_opentelemetry)
    with pytest.raises(TracingUnavailableError) as err:
        start_tracing()
    assert INSTALL_HINT in str(err.value)
    assert str(err.value).endswith(".")

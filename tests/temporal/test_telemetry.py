"""Worker tracing (``--tracing``) and JSON logs (``--log-format json``) end to end on the dev server."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from temporalio.client import Client

from app.temporal.models import CrisisRequest
from app.temporal.workflows import CrisisResponseWorkflow
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration


def crisis(*actions: str) -> CrisisRequest:
    return CrisisRequest.model_validate(
        {
            "crisis_id": f"crisis-telemetry-{uuid.uuid4().hex[:12]}",
            "target_member": "target-alpha",
            "missions": [
                {
                    "phase_id": f"{action}-{n}",
                    "agent_id": f"{action}-agent",
                    "action": action,
                    "target": "target-alpha",
                    "priority": n,
                }
                for n, action in enumerate(actions, start=1)
            ],
        }
    )


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


async def test_a_traced_worker_exports_the_spans_of_a_crisis_in_the_starters_trace(
    dev_server, spawn, liara_env, task_queue, tmp_path
):
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider
    from temporalio.contrib.pydantic import pydantic_data_converter

    worker = await asyncio.to_thread(spawn, "cognition/liara/worker.py", liara_env, tmp_path, "--tracing")
    assert "INFO - OpenTelemetry tracing: spans go to standard output" in worker.lines, worker.output

    # The starter traces too, so the worker's spans join the trace of its StartWorkflow span.
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    starter = await Client.connect(
        dev_server.address,
        data_converter=pydantic_data_converter,
        plugins=[OpenTelemetryPlugin(add_temporal_spans=True)],
    )
    request = crisis("reconnaissance", "secure")
    workflow_id = f"crisis-workflow-{request.crisis_id}"
    result = await starter.execute_workflow(CrisisResponseWorkflow.run, request, id=workflow_id, task_queue=task_queue)
    assert result.success
    (started,) = [span for span in exporter.get_finished_spans() if span.name.startswith("StartWorkflow:")]
    trace_id = f"0x{started.context.trace_id:032x}"

    def spans() -> list[dict[str, Any]]:
        return [
            span
            for span in json_lines(worker.lines)
            if span.get("attributes", {}).get("temporalWorkflowID") == workflow_id
        ]

    async def finished() -> bool:
        return any(span["name"] == "RunWorkflow:CrisisResponseWorkflow" for span in spans())

    await assert_eventually(finished)
    traced = spans()
    names = [span["name"] for span in traced]
    assert "RunWorkflow:CrisisResponseWorkflow" in names
    assert names.count("StartActivity:perform_agent_mission") == 2
    assert names.count("RunActivity:perform_agent_mission") == 2
    assert {span["context"]["trace_id"] for span in traced} == {trace_id}
    # Each activity run is a child of the span that scheduled it.
    scheduled = {span["context"]["span_id"] for span in traced if span["name"].startswith("StartActivity:")}
    assert all(span["parent_id"] in scheduled for span in traced if span["name"].startswith("RunActivity:"))
    assert {span["resource"]["attributes"]["service.name"] for span in traced} == {"liara-worker"}

    assert await asyncio.to_thread(worker.stop) == 0, worker.output


async def test_json_logs_carry_the_crisis_workflow_and_phase_ids(dev_server, spawn, liara_env, task_queue, tmp_path):
    worker = await asyncio.to_thread(spawn, "cognition/liara/worker.py", liara_env, tmp_path, "--log-format", "json")
    request = crisis("reconnaissance", "secure")
    workflow_id = f"crisis-workflow-{request.crisis_id}"
    result = await dev_server.client.execute_workflow(
        CrisisResponseWorkflow.run, request, id=workflow_id, task_queue=task_queue
    )
    assert result.success
    assert await asyncio.to_thread(worker.stop) == 0, worker.output

    lines = [json.loads(line) for line in worker.lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert lines[0]["message"] == "Starting Liara Temporal Agency Worker"
    assert lines[-1]["message"] == "Liara worker stopped"
    assert "crisis_id" not in lines[0]

    deployments = [line for line in lines if line["message"].startswith("AGENT DEPLOYMENT - ")]
    assert [line["message"] for line in deployments] == [
        "AGENT DEPLOYMENT - Phase: reconnaissance-1 | Agent: reconnaissance-agent | Action: reconnaissance"
        " | Target: target-alpha",
        "AGENT DEPLOYMENT - Phase: secure-2 | Agent: secure-agent | Action: secure | Target: target-alpha",
    ]
    assert [(line["crisis_id"], line["workflow_id"], line["phase_id"]) for line in deployments] == [
        (request.crisis_id, workflow_id, "reconnaissance-1"),
        (request.crisis_id, workflow_id, "secure-2"),
    ]
    assert all(line["level"] == "INFO" and line["logger"] == "liara.activities" for line in deployments)
    # The workflow's own lines and the record bookkeeping carry the ids too.
    about_crisis = [line for line in lines if request.crisis_id in line["message"]]
    assert {line["logger"] for line in about_crisis} >= {"temporalio.workflow", "liara.activities"}
    assert all(
        line.get("crisis_id") == request.crisis_id and line.get("workflow_id") == workflow_id for line in about_crisis
    )

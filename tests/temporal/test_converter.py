"""The payload converter: the SDK's pydantic converter, its type adapters built once per process,
models encoded without their defaults."""

from __future__ import annotations

import json

from temporalio.contrib.pydantic import pydantic_data_converter

from app.temporal import converter
from app.temporal.client import data_converter
from app.temporal.crisis.state import CrisisState
from app.temporal.models import AgentReport
from app.temporal.validation import CrisisInput
from tests.helpers.workflows import crisis_request


def test_payloads_are_read_by_the_sdk_pydantic_converter_and_read_its_own() -> None:
    ours, sdk = data_converter().payload_converter, pydantic_data_converter.payload_converter
    request = crisis_request()
    report = AgentReport(phase_id="recon-phase-1", agent_id="agent-1", attempt=2, output={"hosts": 3})
    values = [request, report, None, "a path", {"any": [1, "json"]}]
    hints = [CrisisInput, AgentReport, CrisisState | None, str, None]

    assert sdk.from_payloads(ours.to_payloads(values), hints) == values, "a worker of an earlier release reads ours"
    assert ours.from_payloads(sdk.to_payloads(values), hints) == values, "and we read its payloads"
    assert ours.to_payloads(values)[2:] == sdk.to_payloads(values)[2:], "what is no model is encoded as the SDK does"


def test_a_model_payload_leaves_out_the_fields_at_their_defaults() -> None:
    report = AgentReport(phase_id="recon-phase-1", agent_id="agent-1", attempt=2, output={"hosts": 3})
    (payload,) = data_converter().payload_converter.to_payloads([report])

    assert json.loads(payload.data) == {
        "phase_id": "recon-phase-1",
        "agent_id": "agent-1",
        "attempt": 2,
        "output": {"hosts": 3},
    }
    (full,) = pydantic_data_converter.payload_converter.to_payloads([report])
    assert json.loads(full.data)["output_ref"] is None and len(payload.data) < len(full.data) / 2


def test_every_converter_of_the_process_decodes_with_the_same_type_adapters() -> None:
    # The SDK makes a payload converter for each workflow run: they share what they build.
    payload = pydantic_data_converter.payload_converter.to_payloads([crisis_request()])
    data_converter().payload_converter.from_payloads(payload, [CrisisInput])
    built = converter._type_adapter.cache_info().currsize

    for _ in range(3):
        decoded = converter.PayloadConverter().from_payloads(payload, [CrisisInput])
        assert decoded == [crisis_request()]
    assert converter._type_adapter.cache_info().currsize == built

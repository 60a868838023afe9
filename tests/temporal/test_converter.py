"""The payload converter: the SDK's pydantic converter, its type adapters built once per process."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter

from app.temporal import converter
from app.temporal.client import data_converter
from app.temporal.crisis.state import CrisisState
from app.temporal.models import AgentReport
from app.temporal.validation import CrisisInput
from tests.helpers.workflows import crisis_request


def test_payloads_are_the_sdk_pydantic_converters_both_ways() -> None:
    ours, sdk = data_converter().payload_converter, pydantic_data_converter.payload_converter
    request = crisis_request()
    report = AgentReport(phase_id="recon-phase-1", agent_id="agent-1", attempt=2, output={"hosts": 3})
    values = [request, report, None, "a path", {"any": [1, "json"]}]
    hints = [CrisisInput, AgentReport, CrisisState | None, str, None]

    assert ours.to_payloads(values) == sdk.to_payloads(values)
    assert ours.from_payloads(sdk.to_payloads(values), hints) == sdk.from_payloads(sdk.to_payloads(values), hints)


def test_every_converter_of_the_process_decodes_with_the_same_type_adapters() -> None:
    # The SDK makes a payload converter for each workflow run: they share what they build.
    payload = pydantic_data_converter.payload_converter.to_payloads([crisis_request()])
    data_converter().payload_converter.from_payloads(payload, [CrisisInput])
    built = converter._type_adapter.cache_info().currsize

    for _ in range(3):
        decoded = converter.PayloadConverter().from_payloads(payload, [CrisisInput])
        assert decoded == [crisis_request()]
    assert converter._type_adapter.cache_info().currsize == built

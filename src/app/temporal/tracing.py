"""Optional OpenTelemetry tracing of a worker (``--tracing`` or ``LIARA_TRACING=1``).

The SDK's ``OpenTelemetryPlugin`` (with its Temporal spans on) records a span for each workflow
run (``RunWorkflow:...``, from its start to its end), each activity the workflow schedules
(``StartActivity:...``), each activity execution (``RunActivity:...``, a child of its
``StartActivity``) and each update and query handled; the spans carry ``temporalWorkflowID``
and ``temporalRunID``. Spans made in workflow code come from a replay-safe tracer provider, so a
replayed history exports nothing twice. When the client that started the crisis traces too (its
``StartWorkflow:...`` span travels in the workflow's headers), all of a crisis's spans form one
trace under it.

Spans go to an OTLP collector over HTTP (protobuf, e.g. ``http://collector:4318``) when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, else to
standard output, one JSON object per span and line. ``OTEL_SERVICE_NAME`` names the service
(default ``liara-worker``); the other ``OTEL_*`` variables of the OpenTelemetry SDK apply too.

The OpenTelemetry packages are an optional extra: ``pip install 'liara-temporal-agency[tracing]'``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from app.temporal.errors import LiaraError

logger = logging.getLogger("liara.tracing")

TRACING_ENV = "LIARA_TRACING"
DEFAULT_SERVICE_NAME = "liara-worker"
INSTALL_HINT = "pip install 'liara-temporal-agency[tracing]'"
_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class TracingUnavailableError(LiaraError):
    """Tracing was asked for but the OpenTelemetry packages are not installed."""


@dataclass
class Tracing:
    """The plugin to give the client (and so its workers), and the provider to flush when the worker stops."""

    plugin: Any
    provider: Any
    destination: str

    def shutdown(self) -> None:
        """Export the spans still buffered and stop exporting."""
        self.provider.shutdown()


def start_tracing() -> Tracing:
    """Set up a replay-safe OpenTelemetry tracer provider (also the global one) and the SDK's
    tracing plugin, for a worker's or a starter's ``connect(settings, plugins=[...])``.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
        from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider
    except ImportError:
        raise TracingUnavailableError(
            f"Tracing needs the OpenTelemetry SDK, which is not installed: run `{INSTALL_HINT}` "
            "or start the worker without --tracing."
        ) from None

    endpoint = next((os.environ[name] for name in _OTLP_ENDPOINT_VARIABLES if os.environ.get(name)), None)
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    provider = create_tracer_provider(resource=Resource.create(attributes))
    if endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise TracingUnavailableError(
                f"OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed: run `{INSTALL_HINT}` "
                "or unset it to print spans instead."
            ) from None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        destination = f"OTLP/HTTP at {endpoint}"
    else:
        # One span per line, written as the span ends.
        exporter = ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + os.linesep)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        destination = "standard output"
    trace.set_tracer_provider(provider)
    # Crises are usually started by clients without tracing: trace the workflow all the same.
    return Tracing(plugin=OpenTelemetryPlugin(add_temporal_spans=True), provider=provider, destination=destination)

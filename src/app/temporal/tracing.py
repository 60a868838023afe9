"""Optional OpenTelemetry tracing of a worker (``--tracing`` or ``LIARA_TRACING=1``).

The SDK's ``TracingInterceptor`` records a span for each workflow run (``RunWorkflow:...``) and
completion (``CompleteWorkflow:...``), each activity the workflow schedules (``StartActivity:...``)
and each activity execution (``RunActivity:...``, a child of its ``StartActivity``); every span
carries ``temporalWorkflowID`` and ``temporalRunID``. When the client that started the crisis
traces too (its ``StartWorkflow:...`` span travels in the workflow's headers), all of a crisis's
spans form one trace under it; otherwise each workflow step is a trace of its own, found by
``temporalWorkflowID``.

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
    """The interceptor to give the client, and the provider to flush when the worker stops."""

    interceptor: Any
    provider: Any
    destination: str

    def shutdown(self) -> None:
        """Export the spans still buffered and stop exporting."""
        self.provider.shutdown()


def start_tracing() -> Tracing:
    """Set up an OpenTelemetry tracer provider (also the global one) and the SDK's tracing
    interceptor, for a worker's or a starter's ``connect(settings, interceptors=[...])``.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError:
        raise TracingUnavailableError(
            f"Tracing needs the OpenTelemetry SDK, which is not installed: run `{INSTALL_HINT}` "
            "or start the worker without --tracing."
        ) from None

    endpoint = next((os.environ[name] for name in _OTLP_ENDPOINT_VARIABLES if os.environ.get(name)), None)
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
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
    interceptor = TracingInterceptor(provider.get_tracer("liara"), always_create_workflow_spans=True)
    return Tracing(interceptor=interceptor, provider=provider, destination=destination)

"""Prometheus metrics of a worker: the SDK's own runtime telemetry plus the crisis metrics of Liara.

A worker started with ``--metrics-port PORT`` (or ``LIARA_METRICS_PORT``) runs on a Temporal
``Runtime`` that serves every metric on ``http://127.0.0.1:PORT/metrics``: this machine only,
unless ``--metrics-host`` (``LIARA_METRICS_HOST``) names another interface, such as ``0.0.0.0``
for Prometheus scraping a worker in a container or on another host. Durations are in seconds.
Without such a runtime the SDK's metric meter is a no-op, so the helpers below cost nothing.

Crisis metrics (every one also carries the SDK's ``namespace`` and ``task_queue`` attributes):

- in the workflow, through ``workflow.metric_meter()``, which records nothing while a history
  replays (so a crisis resumed by another worker is not counted twice) and adds no commands:
  ``liara_crises_started``, ``liara_crises_completed``, ``liara_crises_failed``,
  ``liara_crises_cancelled``; ``liara_phases`` and ``liara_compensations`` by ``action`` and
  ``outcome``, the final status of each phase (``completed``, ``failed``, ``skipped``,
  ``cancelled``), counted once when the phase ends;
- in ``perform_agent_mission``, through ``activity.metric_meter()``, once per attempt:
  ``liara_phase_duration`` (histogram, seconds) by ``action`` and ``outcome`` (``completed``,
  ``failed``, ``cancelled``) and ``liara_phase_retries`` by ``action`` (attempts after the first);
- in ``call_model``, once per model call of a language-model agent, by ``model`` (the executor's
  configured model): ``liara_model_calls`` by ``outcome`` (``completed``, or ``failed``: an attempt
  that raised, a retried one included) and ``liara_model_tokens`` by ``kind`` (``prompt``,
  ``completion``), the tokens a completed call spent as its provider reported them. They appear
  with a worker's first model call (no model is known before it).

Actions come from users, so the ``action`` label is capped: the first :data:`MAX_ACTION_LABELS`
distinct actions a process labels keep their own value, any later new one is labelled
:data:`OTHER_ACTION` (``other``), which keeps every metric's series count bounded. The choice
is per process (a worker restarted, or another worker, may keep a different first hundred; a
replayed crisis takes no slot) and never feeds back into workflow code: :func:`action_label`
only decides a label.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import MetricCounter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from app.temporal.errors import LiaraError
from app.temporal.models import ModelUsage

METRICS_PORT_ENV = "LIARA_METRICS_PORT"
METRICS_HOST_ENV = "LIARA_METRICS_HOST"
#: This machine only; ``--metrics-host 0.0.0.0`` (as docker-compose.yml sets) for every interface.
METRICS_HOST = "127.0.0.1"

#: Distinct ``action`` label values a process exports; later new actions are labelled ``other``.
MAX_ACTION_LABELS = 100
OTHER_ACTION = "other"

CRISES_STARTED = "liara_crises_started"
CRISES_COMPLETED = "liara_crises_completed"
CRISES_FAILED = "liara_crises_failed"
CRISES_CANCELLED = "liara_crises_cancelled"
PHASES = "liara_phases"
COMPENSATIONS = "liara_compensations"
PHASE_DURATION = "liara_phase_duration"
PHASE_RETRIES = "liara_phase_retries"
MODEL_TOKENS = "liara_model_tokens"
MODEL_CALLS = "liara_model_calls"

#: Counter of crises that ended, by the status they ended with.
CRISES_ENDED = {"completed": CRISES_COMPLETED, "failed": CRISES_FAILED, "cancelled": CRISES_CANCELLED}
_DESCRIPTIONS = {
    CRISES_STARTED: "Crises that started running",
    CRISES_COMPLETED: "Crises that ended with every phase completed",
    CRISES_FAILED: "Crises that ended with a phase failed or skipped, or failed as a workflow",
    CRISES_CANCELLED: "Crises that were cancelled",
    PHASES: "Mission phases by action and final outcome",
    COMPENSATIONS: "Compensations by action and outcome",
    PHASE_DURATION: "Duration of one attempt of a mission phase, in seconds",
    PHASE_RETRIES: "Retried attempts of mission phases",
    MODEL_TOKENS: "Tokens spent by language-model calls, by model and kind (prompt, completion)",
    MODEL_CALLS: "Language-model calls by model and outcome (completed, failed)",
}

#: Bucket bounds (seconds) of ``liara_phase_duration``: from quick agents to the longest phases.
PHASE_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

#: Liara's own metric families as Prometheus shows them (histograms add _bucket/_sum/_count).
LIARA_METRICS = (
    CRISES_STARTED,
    CRISES_COMPLETED,
    CRISES_FAILED,
    CRISES_CANCELLED,
    PHASES,
    COMPENSATIONS,
    PHASE_DURATION,
    PHASE_RETRIES,
    MODEL_TOKENS,
    MODEL_CALLS,
)
#: The metrics a worker exports from its first model call on (their ``model`` label comes from it).
MODEL_METRICS = (MODEL_TOKENS, MODEL_CALLS)


class MetricsUnavailableError(LiaraError):
    """The metrics endpoint cannot be served (port in use, bad port, host not an IP address)."""


_labelled_actions: set[str] = set()
_labelled_actions_lock = threading.Lock()


def action_label(action: str) -> str:
    """``action`` itself if it is one of the first :data:`MAX_ACTION_LABELS` this process labelled,
    else :data:`OTHER_ACTION`, for the life of the process. Workflow code calls this (through
    :func:`count_phase`, not while replaying) and activities do; it only picks a metric label,
    and nothing the workflow does depends on it. Thread-safe: workflows and activities of a
    worker run on several threads.
    """
    with _labelled_actions_lock:
        if action in _labelled_actions:
            return action
        if len(_labelled_actions) < MAX_ACTION_LABELS:
            _labelled_actions.add(action)
            return action
    return OTHER_ACTION


def worker_runtime(metrics_port: int | None, *, host: str = METRICS_HOST, forward_core_logs: bool = False) -> Runtime:
    """The Temporal runtime of a worker: Prometheus metrics on ``host:metrics_port`` if given, and
    the SDK core's own log lines sent through Python logging (so they follow the worker's log
    format) if ``forward_core_logs``, instead of printed by the core.
    """
    logs = LoggingConfig.default
    if forward_core_logs:
        logs = LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
        )
    config = None
    if metrics_port:
        try:
            address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        except ValueError:
            raise MetricsUnavailableError(
                f"Metrics host {host!r} is not an IP address: give --metrics-host an address such as "
                "127.0.0.1 (this machine only) or 0.0.0.0 (every interface)."
            ) from None
        config = PrometheusConfig(
            bind_address=f"[{address}]:{metrics_port}" if address.version == 6 else f"{address}:{metrics_port}",
            durations_as_seconds=True,
            histogram_bucket_overrides={PHASE_DURATION: list(PHASE_DURATION_BUCKETS)},
        )
    try:
        return Runtime(telemetry=TelemetryConfig(logging=logs, metrics=config))
    except ValueError as err:  # the SDK's bridge reports bind failures as ValueError
        if "in use" in str(err).lower():
            raise MetricsUnavailableError(
                f"Cannot serve metrics on port {metrics_port}: it is already in use; "
                "choose another --metrics-port or stop the process holding it."
            ) from err
        raise MetricsUnavailableError(
            f"Cannot serve metrics on {host} port {metrics_port} ({err}): "
            "choose another --metrics-host or --metrics-port."
        ) from err


def zero_crisis_counters(runtime: Runtime, *, namespace: str, task_queue: str, workflow_type: str) -> None:
    """Export the crisis counters of a worker at 0 from its start.

    Prometheus needs a sample before a counter's first increment to see it in ``rate`` and
    ``increase``; without this, the first crisis a worker completes (or fails, or cancels) would
    not show on the dashboard. The attributes are those the SDK gives workflow metrics.
    """
    meter = runtime.metric_meter.with_additional_attributes(
        {"namespace": namespace, "task_queue": task_queue, "workflow_type": workflow_type}
    )
    for name in (CRISES_STARTED, *CRISES_ENDED.values()):
        meter.create_counter(name, _DESCRIPTIONS[name]).add(0)


# --- in the workflow (replay-safe, no commands) -----------------------------------------------


def _workflow_counter(name: str) -> MetricCounter:
    return workflow.metric_meter().create_counter(name, _DESCRIPTIONS[name])


def count_crisis_started() -> None:
    _workflow_counter(CRISES_STARTED).add(1)


def count_crisis_ended(status: str) -> None:
    """``status`` is ``completed``, ``failed`` or ``cancelled``."""
    _workflow_counter(CRISES_ENDED[status]).add(1)


def count_phase(action: str, outcome: str, *, compensation: bool = False) -> None:
    """A phase (or a compensation) ended with ``outcome``, its final status."""
    if workflow.unsafe.is_replaying():
        return  # the meter would drop it anyway; the action must not take a label slot either
    _workflow_counter(COMPENSATIONS if compensation else PHASES).add(
        1, {"action": action_label(action), "outcome": str(outcome)}
    )


# --- in perform_agent_mission -----------------------------------------------------------------


def count_phase_retry(action: str) -> None:
    """An attempt after the first of a phase."""
    activity.metric_meter().create_counter(PHASE_RETRIES, _DESCRIPTIONS[PHASE_RETRIES]).add(
        1, {"action": action_label(action)}
    )


def record_phase_attempt(action: str, outcome: str, duration: timedelta) -> None:
    """How long one attempt of a phase's agent ran, and how it ended.

    Recorded as float seconds: the SDK's timedelta histograms round to whole milliseconds.
    """
    activity.metric_meter().create_histogram_float(PHASE_DURATION, _DESCRIPTIONS[PHASE_DURATION], "s").record(
        duration.total_seconds(), {"action": action_label(action), "outcome": outcome}
    )


# --- in call_model ------------------------------------------------------------------------------


def record_model_call(model: str, usage: ModelUsage | None, *, completed: bool) -> None:
    """One model call to ``model`` (an attempt of ``call_model``): completed, with the tokens it
    spent (``usage``, as its provider reported them), or failed.
    """
    meter = activity.metric_meter()
    outcome = "completed" if completed else "failed"
    meter.create_counter(MODEL_CALLS, _DESCRIPTIONS[MODEL_CALLS]).add(1, {"model": model, "outcome": outcome})
    if completed:
        tokens = meter.create_counter(MODEL_TOKENS, _DESCRIPTIONS[MODEL_TOKENS])
        spent = usage or ModelUsage()
        tokens.add(max(spent.prompt_tokens, 0), {"model": model, "kind": "prompt"})
        tokens.add(max(spent.completion_tokens, 0), {"model": model, "kind": "completion"})

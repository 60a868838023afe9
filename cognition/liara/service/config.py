"""The service's settings, and its limits: what bounds its memory and its waits, whoever calls it."""

from __future__ import annotations

from dataclasses import dataclass

from app.temporal.server import default_ui_port

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780
#: The embedded Temporal server's Web UI (``python scripts/setup_temporal.py start``).
DEFAULT_WEB_UI_URL = "http://localhost:8233"
#: Longest long poll of ``GET /v1/crises/{id}/result?wait=``; shutdown waits this long for one.
MAX_WAIT_SECONDS = 60
#: Largest page of ``GET /v1/crises``.
MAX_PAGE_SIZE = 200
#: Crises the approvals inbox looks into (the newest that await approval).
MAX_INBOX_CRISES = 50


def web_ui_for(temporal_address: str) -> str:
    """The Web UI of the Temporal server at ``host:port``, where ``temporal server start-dev`` (and
    the compose file) serve it: the same host, the port + 1000.
    """
    host, _, port = temporal_address.rpartition(":")
    return f"http://{host}:{default_ui_port(int(port))}"


@dataclass(frozen=True)
class ServiceSettings:
    #: Largest request body (a crisis of 1000 phases with params fits).
    max_body_bytes: int = 1024 * 1024
    #: Event streams one token may hold open at once.
    max_streams_per_identity: int = 20
    #: Result requests with ``wait`` one token may have waiting at once.
    max_long_polls_per_identity: int = 20
    #: Crises started by one token that may run at once (0: no quota), counted on Temporal.
    max_running_crises_per_identity: int = 100
    #: Crises one token may start within any 60 seconds (0: no quota), counted by this process.
    max_starts_per_minute_per_identity: int = 60
    #: The ``Retry-After`` of a start refused for running crises: when one may have ended.
    running_quota_retry_seconds: int = 30
    #: Seconds between ``: keep-alive`` comments on an idle event stream.
    heartbeat_seconds: float = 15.0
    #: The Temporal Web UI the console links each crisis to.
    web_ui_url: str = DEFAULT_WEB_UI_URL
    #: Crises looked up at once for one answer (a listing's progress, the approvals inbox).
    lookup_concurrency: int = 4
    #: Seconds one lookup may take before its crisis is shown without it.
    lookup_timeout_seconds: float = 5.0
    #: Seconds a running crisis's summary is reused, whoever asks.
    summary_fresh_seconds: float = 2.0
    #: Summaries of ended crises kept (they never change).
    summaries_kept: int = 10_000

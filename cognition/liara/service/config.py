"""The service's limits: what bounds its memory and its waits, whoever calls it."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780
#: Longest long poll of ``GET /v1/crises/{id}/result?wait=``; shutdown waits this long for one.
MAX_WAIT_SECONDS = 60
#: Largest page of ``GET /v1/crises``.
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class ServiceSettings:
    #: Largest request body (a crisis of 1000 phases with params fits).
    max_body_bytes: int = 1024 * 1024
    #: Event streams one token may hold open at once.
    max_streams_per_identity: int = 20
    #: Seconds between ``: keep-alive`` comments on an idle event stream.
    heartbeat_seconds: float = 15.0

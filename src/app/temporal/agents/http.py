"""The ``http`` executor: POSTs the mission to an agent's endpoint; also HTTP's rules for the ``mcp`` one."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import httpx
from pydantic import Field, JsonValue, field_validator
from temporalio.exceptions import ApplicationError

from app.temporal.agents.mission import ExecutorSettings, Mission, TimeoutSeconds, agent_failure, parse_json
from app.temporal.models import MAX_OUTPUT_BYTES

#: 4xx answers that mean "not now" rather than "never".
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})


def parse_http_url(url: str) -> httpx.URL:
    """``url`` parsed; ``ValueError`` unless it is an absolute http:// or https:// URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as err:
        raise ValueError(f"not a URL ({err})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("must be an absolute http:// or https:// URL")
    return parsed


def display_url(url: httpx.URL) -> str:
    """``url`` without credentials or query string: what error messages and records may show."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"


def is_retryable_status(status_code: int) -> bool:
    """Whether an error status may go away on the next attempt (5xx, 408, 425, 429)."""
    return status_code >= 500 or status_code in _RETRYABLE_CLIENT_STATUSES


class HttpExecutor:
    """POSTs the mission to an agent's HTTP endpoint and returns the JSON it answers.

    The ``Idempotency-Key`` header is the same on every attempt of a phase, so an agent that
    stores it can answer a retried delivery without acting twice.
    """

    def __init__(self, url: str, timeout_seconds: float = 30.0, headers: Mapping[str, str] | None = None) -> None:
        try:
            parsed = parse_http_url(url)
        except ValueError as err:
            raise ValueError(f"url {url!r}: {err}") from None
        if not timeout_seconds > 0:
            raise ValueError("timeout_seconds must be greater than 0")
        self.url = url
        self.timeout_seconds = float(timeout_seconds)
        self.headers = dict(headers or {})
        self.display_url = display_url(parsed)
        self._client: httpx.AsyncClient | None = None

    def _client_for_run(self) -> httpx.AsyncClient:
        # Created on first use, inside the worker's event loop; pooled connections are reused.
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        """Close pooled connections (at worker shutdown)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run(self, mission: Mission) -> JsonValue:
        phase_id = mission.phase.phase_id
        headers = {**self.headers, "Idempotency-Key": mission.idempotency_key}
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange (a trickling agent).
            async with asyncio.timeout(self.timeout_seconds):
                request = self._client_for_run().stream("POST", self.url, json=mission.payload(), headers=headers)
                async with request as response:
                    if not response.is_success:
                        raise self._status_failure(response, phase_id)
                    body = await self._read_capped(response, phase_id)
                    encoding = response.encoding or "utf-8"
        except (TimeoutError, httpx.TimeoutException):
            raise agent_failure(
                f"Agent at {self.display_url} did not answer phase {phase_id} within {self.timeout_seconds:g} seconds.",
                retryable=True,
            ) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            raise agent_failure(f"Agent URL {self.display_url} is unusable: {err}.", retryable=False) from None
        except httpx.HTTPError as err:
            reason = str(err) or type(err).__name__
            raise agent_failure(
                f"Could not reach agent at {self.display_url} for phase {phase_id} ({reason}).", retryable=True
            ) from None
        if not body.strip():
            return None
        parsed, value = parse_json(body)
        return value if parsed else {"text": body.decode(encoding, errors="replace")}

    def _status_failure(self, response: httpx.Response, phase_id: str) -> ApplicationError:
        status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        if is_retryable_status(response.status_code):
            return agent_failure(f"Agent at {self.display_url} failed phase {phase_id} with {status}.", retryable=True)
        return agent_failure(f"Agent at {self.display_url} rejected phase {phase_id} with {status}.", retryable=False)

    async def _read_capped(self, response: httpx.Response, phase_id: str) -> bytes:
        too_large = agent_failure(
            f"Agent at {self.display_url} answered phase {phase_id} with more than {MAX_OUTPUT_BYTES} bytes.",
            retryable=False,
        )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_OUTPUT_BYTES:
            raise too_large
        body = bytearray()
        async for chunk in response.aiter_bytes():  # decoded, so a compressed bomb is capped too
            body += chunk
            if len(body) > MAX_OUTPUT_BYTES:
                raise too_large
        return bytes(body)


class HttpSettings(ExecutorSettings):
    """What ``type = "http"`` takes."""

    url: str
    timeout_seconds: TimeoutSeconds = 30.0
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _absolute_http(cls, url: str) -> str:
        parse_http_url(url)
        return url

    def build(self, config_dir: Path) -> HttpExecutor:
        return HttpExecutor(**self.model_dump())

"""Webhook notifications of crises that are never lost: ``approval_required``, ``phase_failed``
and ``finished``, signed, delivered at least once and deduplicable by their event id.

A crisis that names webhooks (``CrisisRequest.webhooks``) starts, for each such event and each
webhook, a small ``WebhookDeliveryWorkflow`` on the notification task queue, abandoned by the
crisis (so a receiver that is down never holds a crisis up). Its one activity POSTs the event and
is retried (1 s to 5 min apart, for up to a week) until the receiver answers 2xx; a 4xx other
than 408/425/429 means the receiver refuses the event, and the delivery fails with that. Temporal
keeps the delivery through worker crashes and restarts; the delivery's workflow id (crisis
workflow id, event id, webhook) starts it at most once.

The receiving end: the body is JSON (``event``, ``event_id``, ``workflow_id``, ``crisis_id``,
``at``, ``data``); ``Idempotency-Key`` is ``<workflow id>/<event id>``, the same on every
attempt; ``Liara-Signature: t=<unix seconds>,v1=<hex>`` is HMAC-SHA256 of ``"<t>.<body>"``
with the webhook's secret (``verify_signature`` checks one and refuses stale timestamps, so a
captured request cannot be replayed later). Webhooks and their secrets are configured where the
deliveries run (``liara serve``, ``liara notifier``), in ``liara.toml``::

    [webhooks.ops]
    url = "https://hooks.example.org/liara"
    secret_env = "LIARA_WEBHOOK_OPS_SECRET"      # or secret_file = "/run/secrets/ops"
    events = ["approval_required", "finished"]   # default: all three
    all_crises = true                            # every crisis tells it, named or not (default: false)

``all_crises`` takes effect where crises are started (``build_request`` reads the same file),
adding the webhook to each crisis's own list.

A webhook's URL is ``https://``, or ``http://`` to this machine only (``localhost``,
127.0.0.0/8, ``::1``): events and their signatures never cross a network unencrypted. A
receiver's answer counts by its status code; at most ``MAX_ANSWER_BYTES`` of its body are read,
so a receiver answering a huge or endless body cannot exhaust the worker, and the whole exchange
gets ``DELIVERY_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

# The sandbox re-imports this module for the delivery workflow: the rest serves the activity.
with workflow.unsafe.imports_passed_through():
    import httpx
    from pydantic import (
        BaseModel,
        ConfigDict,
        Field,
        JsonValue,
        Strict,
        ValidationError,
        field_validator,
        model_validator,
    )

    from app.temporal.errors import LiaraError
    from app.temporal.identity import delivery_workflow_id
    from app.temporal.logs import log_failed_attempt
    from app.temporal.loopback import is_loopback_host

NOTIFICATION_TASK_QUEUE_ENV = "LIARA_NOTIFICATION_TASK_QUEUE"
DEFAULT_NOTIFICATION_TASK_QUEUE = "liara-notifications"
SIGNATURE_HEADER = "Liara-Signature"
#: How old a signature's timestamp may be before a receiver refuses it as a replay.
SIGNATURE_TOLERANCE_SECONDS = 300
#: How long one delivery attempt may take, from connecting to the last byte read of the answer.
DELIVERY_TIMEOUT_SECONDS = 30.0
#: The most of a receiver's answer an attempt reads: it counts by the status code alone.
MAX_ANSWER_BYTES = 64 * 1024
#: A receiver that is down is retried for this long.
DELIVERY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
DELIVERY_DEADLINE = timedelta(days=7)
#: 4xx answers that mean "not now" rather than "never".
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
REFUSED_ERROR = "WebhookRefused"

logger = logging.getLogger("liara.notifications")


class WebhookEvent(StrEnum):
    APPROVAL_REQUIRED = "approval_required"
    PHASE_FAILED = "phase_failed"
    FINISHED = "finished"


class WebhookConfigError(LiaraError, ValueError):
    """The ``[webhooks]`` configuration is unusable; the notifier must not start."""


class Webhook(BaseModel):
    """One ``[webhooks.NAME]`` table."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    secret_env: str | None = None
    secret_file: str | None = None
    #: Names from a TOML file are text: the only field where text becomes an enum.
    events: list[Annotated[WebhookEvent, Strict(False)]] = Field(default_factory=lambda: list(WebhookEvent))
    #: Told of every crisis, not only of those that name it.
    all_crises: bool = False

    @field_validator("url")
    @classmethod
    def _encrypted_unless_local(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            raise ValueError("not a URL") from None
        if parts.scheme == "http" and not is_loopback_host(host):
            raise ValueError(
                "an http:// URL may only name this machine (localhost, 127.0.0.0/8 or ::1), as it would carry "
                "events and their signatures unencrypted: use https://"
            )
        return url

    @model_validator(mode="after")
    def _one_secret(self) -> Webhook:
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("give exactly one of secret_env and secret_file")
        return self

    def secret(self, name: str, environ: Mapping[str, str]) -> bytes:
        """The signing secret, read when the notifier starts; one sentence if it is missing."""
        if self.secret_env is not None:
            value = environ.get(self.secret_env, "")
            where = f"the environment variable {self.secret_env}"
        else:
            try:
                value = Path(self.secret_file or "").read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                reason = getattr(err, "strerror", None) or "not UTF-8 text"
                raise WebhookConfigError(f"Cannot read the secret file of webhook {name!r} ({reason}).") from None
            where = f"the file {self.secret_file}"
        if len(value.strip()) < 16:
            raise WebhookConfigError(f"Webhook {name!r} needs a secret of at least 16 characters in {where}.")
        return value.strip().encode()


def _checked(table: Mapping[str, Any], source: str) -> dict[str, Webhook]:
    """The ``[webhooks]`` table of a configuration file, each webhook checked (not its secret)."""
    hooks: dict[str, Webhook] = {}
    for name, settings in table.items():
        try:
            hooks[name] = Webhook.model_validate(settings)
        except ValidationError as err:
            problem = err.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            field = f".{where}" if where else ""
            said = str(problem["msg"]).removeprefix("Value error, ")
            raise WebhookConfigError(f"{source} sets webhooks.{name}{field} wrongly: {said}.") from None
    return hooks


def load_webhooks(table: Mapping[str, Any], source: str, environ: Mapping[str, str] | None = None) -> WebhookBook:
    """The ``[webhooks]`` table of a configuration file, checked, with each webhook's secret."""
    environ = os.environ if environ is None else environ
    return WebhookBook({name: (hook, hook.secret(name, environ)) for name, hook in _checked(table, source).items()})


def webhooks_for_all_crises(table: Mapping[str, Any], source: str) -> list[str]:
    """The names of the webhooks of a ``[webhooks]`` table that every crisis tells (``all_crises``)."""
    return [name for name, hook in _checked(table, source).items() if hook.all_crises]


def webhook_names(table: Mapping[str, Any], source: str) -> list[str]:
    """The names of the webhooks a ``[webhooks]`` table defines, each checked (not its secret)."""
    return sorted(_checked(table, source))


class WebhookBook:
    """The configured webhooks by name, with their secrets; what a delivery looks up."""

    def __init__(self, hooks: Mapping[str, tuple[Webhook, bytes]]) -> None:
        self._hooks = dict(hooks)

    def names(self) -> list[str]:
        return sorted(self._hooks)

    def get(self, name: str) -> tuple[Webhook, bytes] | None:
        return self._hooks.get(name)


# --- signing ------------------------------------------------------------------------------------


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``Liara-Signature`` header of ``body``: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``."""
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret, f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def verify_signature(secret: bytes, header: str, body: bytes, *, tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of now."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        moment = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(time.time() - moment) > tolerance:
        return False
    expected = sign(secret, body, moment).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# --- delivery -----------------------------------------------------------------------------------


class WebhookDelivery(BaseModel):
    """One event for one webhook: the input of ``WebhookDeliveryWorkflow`` and its activity."""

    model_config = ConfigDict(extra="ignore")

    webhook: str
    workflow_id: str
    crisis_id: str
    event_id: int
    event: WebhookEvent
    at: datetime
    data: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"{self.workflow_id}/{self.event_id}"

    def body(self) -> bytes:
        document = {
            "event": self.event.value,
            "event_id": self.event_id,
            "workflow_id": self.workflow_id,
            "crisis_id": self.crisis_id,
            "at": self.at.isoformat(),
            "data": self.data,
        }
        return json.dumps(document, separators=(",", ":")).encode()


class WebhookDeliverer:
    """The delivery activity, bound to the configured webhooks."""

    def __init__(self, book: WebhookBook) -> None:
        self.book = book

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, delivery: WebhookDelivery) -> int:
        """POST the event, signed; return the receiver's status (0: not an event the webhook takes).
        Raises to be retried; each failed attempt is one log line saying when the next one comes.
        """
        try:
            return await self._deliver(delivery)
        except ApplicationError as err:
            delivery_id = delivery_workflow_id(delivery)
            stop = f"Stop it with `liara webhook cancel {delivery.workflow_id} --webhook {delivery.webhook}`."
            log_failed_attempt(logger, f"Webhook delivery {delivery_id}", err, hint=stop)
            raise

    async def _deliver(self, delivery: WebhookDelivery) -> int:
        configured = self.book.get(delivery.webhook)
        if configured is None:
            # Retried: the operator may add the webhook to the notifier's configuration.
            raise ApplicationError(f"Webhook {delivery.webhook!r} is not configured on this notifier.")
        hook, secret = configured
        if delivery.event not in hook.events:
            return 0  # this webhook does not subscribe to such events
        body = delivery.body()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": delivery.idempotency_key,
            SIGNATURE_HEADER: sign(secret, body),
        }
        try:
            async with asyncio.timeout(DELIVERY_TIMEOUT_SECONDS):
                response = await _post(hook.url, body, headers)
        except httpx.HTTPError as err:
            reason = str(err) or type(err).__name__
            raise ApplicationError(f"Webhook {delivery.webhook!r} could not be reached ({reason}).") from None
        except TimeoutError:
            raise ApplicationError(
                f"Webhook {delivery.webhook!r} did not answer within {DELIVERY_TIMEOUT_SECONDS:g} s."
            ) from None
        if response.is_success:
            return response.status_code
        retryable = response.is_server_error or response.status_code in _RETRYABLE_STATUSES
        raise ApplicationError(
            f"Webhook {delivery.webhook!r} answered HTTP {response.status_code} to event {delivery.event_id}.",
            type=None if retryable else REFUSED_ERROR,
            non_retryable=not retryable,
        )


async def _post(url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
    """POST ``body``; the answer, of which at most ``MAX_ANSWER_BYTES`` of the body were read
    (as sent: a compressed body is never expanded), the rest left unread.
    """
    async with (
        httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS, follow_redirects=False) as http,
        http.stream("POST", url, content=body, headers=headers) as response,
    ):
        read = 0
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read >= MAX_ANSWER_BYTES:
                break
        return response


@workflow.defn
class WebhookDeliveryWorkflow:
    """Delivers one event to one webhook, retrying until the receiver takes it."""

    @workflow.run
    async def run(self, delivery: WebhookDelivery) -> int:
        return await workflow.execute_activity_method(
            WebhookDeliverer.deliver_webhook,
            delivery,
            start_to_close_timeout=timedelta(seconds=DELIVERY_TIMEOUT_SECONDS + 5),
            schedule_to_close_timeout=DELIVERY_DEADLINE,
            retry_policy=DELIVERY_RETRY,
        )


def notification_task_queue(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(NOTIFICATION_TASK_QUEUE_ENV) or DEFAULT_NOTIFICATION_TASK_QUEUE

"""The FastAPI app: routers, the console, problem handlers, limits, and the one agency it shares.

The lifespan connects the agency when the service starts and lets it go when it stops. A
Temporal server that does not answer yet does not stop the service: ``/readyz`` and every crisis
route say 503 until it does, the agency connects on the next request, and the notifier starts
as soon as Temporal answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.temporal.errors import TemporalUnavailableError
from app.temporal.notifications import WebhookBook
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.notifier import deliver_once_reachable
from cognition.liara.service.config import ServiceSettings
from cognition.liara.service.lookups import CrisisLookups
from cognition.liara.service.middleware import BodyLimit, LocalOnly, SecurityHeaders
from cognition.liara.service.problem_types import TOO_MANY_LONG_POLLS
from cognition.liara.service.problems import add_problem_schema, install_problem_handlers
from cognition.liara.service.quotas import Quota
from cognition.liara.service.routes import approvals, console, crises, events, health, identity, missions, playbooks
from cognition.liara.service.start_quotas import StartQuotas
from cognition.liara.service.streams import EventStreams
from cognition.liara.service.tokens import TokenVerifier

logger = logging.getLogger("liara.service")

DESCRIPTION = """Start, follow and steer crises of the Liara Temporal Agency over HTTP.

Send `Authorization: Bearer <token>` (from `liara token create`) unless the service runs on
loopback without `--tokens`. Errors are RFC 9457 problems (`application/problem+json`).
"""


def _operation_id(route: APIRoute) -> str:
    """``crises-start_crisis``: readable ids for generated clients."""
    return f"{route.tags[0]}-{route.name}"


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def create_app(
    agency: LiaraTemporalAgency,
    *,
    tokens: TokenVerifier | None,
    settings: ServiceSettings | None = None,
    local_hosts: Iterable[str] = (),
    webhooks: WebhookBook | None = None,
) -> FastAPI:
    """The service over ``agency``. Without ``tokens`` every caller is the admin ``local``, and
    only requests to this machine's names (and ``local_hosts``) are answered. With ``webhooks``
    it also delivers crises' webhook notifications, as ``liara notifier`` does.
    """
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as running:
            running.push_async_exit(agency)  # connected now or by a later request, it lets go
            try:
                await agency.connect()
            except TemporalUnavailableError as err:
                logger.warning("%s The service answers 503 until it can connect.", err)
            if webhooks is not None:
                notifier = asyncio.create_task(deliver_once_reachable(agency.connect, webhooks))
                running.push_async_callback(_stopped, notifier)
            yield

    app = FastAPI(
        title="Liara Temporal Agency",
        version=version("liara-temporal-agency"),
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.agency = agency
    app.state.tokens = tokens
    app.state.settings = settings
    app.state.lookups = CrisisLookups(
        agency,
        concurrency=settings.lookup_concurrency,
        timeout=settings.lookup_timeout_seconds,
        fresh=settings.summary_fresh_seconds,
        keep=settings.summaries_kept,
    )
    app.state.streams = EventStreams(
        per_identity=settings.max_streams_per_identity, heartbeat=settings.heartbeat_seconds
    )
    app.state.long_polls = Quota(
        settings.max_long_polls_per_identity, TOO_MANY_LONG_POLLS, "long polls", "wait for one to end first"
    )
    app.state.start_quotas = StartQuotas(
        running=settings.max_running_crises_per_identity,
        per_minute=settings.max_starts_per_minute_per_identity,
        running_retry=settings.running_quota_retry_seconds,
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(crises.router)
    app.include_router(events.router)
    app.include_router(approvals.router)
    app.include_router(missions.router)
    app.include_router(identity.router)
    console.install(app)
    app.include_router(playbooks.router)
    if tokens is None:
        app.add_middleware(LocalOnly, hosts=local_hosts)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, documents=[url for url in (app.docs_url, app.redoc_url) if url])

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_schema(generate_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

"""The notifier of ``liara notifier`` and ``liara serve``: the engine's webhook delivery worker
(``app.temporal.notifier``), which the main worker runs too.

``liara serve`` starts it whenever Temporal first answers, even long after the service started
(``deliver_once_reachable``), so a service started before Temporal still delivers. Crises
started on this machine also tell the webhooks its configuration marks ``all_crises``
(``app.temporal.notifier.configured_webhooks_for_all_crises``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio.client import Client

from app.temporal.errors import TemporalUnavailableError
from app.temporal.notifications import WebhookBook
from app.temporal.notifier import configured_webhooks, notifier_worker

__all__ = ["configured_webhooks", "deliver_once_reachable", "notifier_worker"]

#: Seconds between attempts to reach Temporal before the notifier can start.
REACH_RETRY_SECONDS = 2.0


async def deliver_once_reachable(
    connect: Callable[[], Awaitable[Client]], book: WebhookBook, *, retry_seconds: float = REACH_RETRY_SECONDS
) -> None:
    """Run the notifier of ``book`` on the client ``connect`` gives as soon as Temporal answers,
    trying every ``retry_seconds`` until it does; it delivers until cancelled, then shuts down.
    """
    while True:
        try:
            client = await connect()
        except TemporalUnavailableError:
            await asyncio.sleep(retry_seconds)
            continue
        async with notifier_worker(client, book):
            await asyncio.Future()  # until the service stops

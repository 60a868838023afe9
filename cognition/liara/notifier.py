"""The notifier of ``liara notifier`` and ``liara serve``: the engine's webhook delivery worker
(``app.temporal.notifier``), which the main worker runs too.

``liara serve`` starts it whenever Temporal first answers, even long after the service started
(``deliver_once_reachable``), so a service started before Temporal still delivers.
"""

from __future__ import annotations

import asyncio

from app.temporal.errors import TemporalUnavailableError
from app.temporal.notifications import WebhookBook
from app.temporal.notifier import configured_webhooks, notifier_worker
from cognition.liara.agency import LiaraTemporalAgency

__all__ = ["configured_webhooks", "deliver_once_reachable", "notifier_worker"]

#: Seconds between attempts to reach Temporal before the notifier can start.
REACH_RETRY_SECONDS = 2.0


async def deliver_once_reachable(
    agency: LiaraTemporalAgency, book: WebhookBook, *, retry_seconds: float = REACH_RETRY_SECONDS
) -> None:
    """Run the notifier of ``book`` on the agency's connection as soon as Temporal answers,
    trying every ``retry_seconds`` until it does; it delivers until cancelled, then shuts down.
    """
    while True:
        try:
            client = await agency.connect()
        except TemporalUnavailableError:
            await asyncio.sleep(retry_seconds)
            continue
        async with notifier_worker(client, book):
            await asyncio.Future()  # until the service stops

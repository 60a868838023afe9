"""The notifier of ``liara notifier`` and ``liara serve``: the engine's webhook delivery worker
(``app.temporal.notifier``), which the main worker runs too.

``liara serve`` starts it whenever Temporal first answers, even long after the service started
(``deliver_once_reachable``), so a service started before Temporal still delivers. Crises
started on this machine also tell the webhooks its configuration marks ``all_crises``
(``webhooks_for_all_crises``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping

from temporalio.client import Client

from app.temporal.agents.config import config_file_path, read_config_file
from app.temporal.errors import TemporalUnavailableError
from app.temporal.notifications import WebhookBook
from app.temporal.notifications import webhooks_for_all_crises as all_crises_of
from app.temporal.notifier import configured_webhooks, notifier_worker

__all__ = ["configured_webhooks", "deliver_once_reachable", "notifier_worker", "webhooks_for_all_crises"]

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


def webhooks_for_all_crises(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The webhooks of the configuration file that every crisis tells (none without a file)."""
    source = config_file_path(None, environ)
    if source is None:
        return []
    return all_crises_of(read_config_file(source).webhooks, f"Configuration {source}")

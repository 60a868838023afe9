"""``liara notifier``: deliver crises' webhook notifications, on their own task queue."""

from __future__ import annotations

import asyncio
import signal

import typer

from app.temporal.logs import configure_logging
from app.temporal.notifications import notification_task_queue
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.commands.connection import Connection
from cognition.liara.commands.output import say
from cognition.liara.notifier import configured_webhooks, notifier_worker


def notifier(ctx: typer.Context) -> None:
    """Deliver the webhook notifications of crises (the webhooks table of liara.toml) until Ctrl+C or SIGTERM."""
    connection: Connection = ctx.obj

    async def deliver(agency: LiaraTemporalAgency) -> None:
        book = configured_webhooks()
        configure_logging("WARNING")  # a failed delivery attempt is one "WARNING - ..." line
        client = await agency.connect()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        async with notifier_worker(client, book):
            names = ", ".join(book.names()) or "none configured"
            say(f"Liara notifier is running on task queue {notification_task_queue()} (webhooks: {names}).")
            await stop.wait()

    connection.run(deliver)

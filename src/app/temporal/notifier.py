"""The notifier: a Temporal worker that delivers crises' webhook notifications.

It polls the notification task queue (``LIARA_NOTIFICATION_TASK_QUEUE``, default
``liara-notifications``) and runs ``WebhookDeliveryWorkflow`` with the ``[webhooks]`` of
``liara.toml`` (or the file in ``LIARA_CONFIG``) and their secrets. The main worker runs one
beside its crisis worker; ``liara serve`` runs one beside the HTTP service and ``liara notifier``
one on its own. While none runs, deliveries wait in Temporal: nothing is lost.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from app.temporal.config import load_config
from app.temporal.notifications import (
    WebhookBook,
    WebhookDeliverer,
    WebhookDeliveryWorkflow,
    load_webhooks,
    notification_task_queue,
    webhooks_for_all_crises,
)


def configured_webhooks(environ: Mapping[str, str] = os.environ) -> WebhookBook:
    """The webhooks of the configuration file, checked, with their secrets (none without a file)."""
    config = load_config(environ=environ)
    return load_webhooks(config.webhooks, config.where, environ)


def configured_webhooks_for_all_crises(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The webhooks of the configuration file that every crisis tells (none without a file)."""
    config = load_config(environ=environ)
    return webhooks_for_all_crises(config.webhooks, config.where)


def notifier_worker(
    client: Client,
    book: WebhookBook,
    task_queue: str | None = None,
    *,
    graceful_shutdown: timedelta = timedelta(),
) -> Worker:
    """A worker delivering the notifications of the webhooks in ``book``; on shutdown, deliveries
    under way get ``graceful_shutdown`` to finish (one cut short is retried).
    """
    return Worker(
        client,
        task_queue=task_queue or notification_task_queue(),
        workflows=[WebhookDeliveryWorkflow],
        activities=[WebhookDeliverer(book).deliver_webhook],
        graceful_shutdown_timeout=graceful_shutdown,
    )

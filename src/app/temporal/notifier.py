"""The notifier: a Temporal worker that delivers crises' webhook notifications.

It polls the notification task queue (``LIARA_NOTIFICATION_TASK_QUEUE``, default
``liara-notifications``) and runs ``WebhookDeliveryWorkflow`` with the ``[webhooks]`` of
``liara.toml`` (or the file in ``LIARA_CONFIG``) and their secrets. The main worker runs one
beside its crisis worker; ``liara serve`` runs one beside the HTTP service and ``liara notifier``
one on its own. While none runs, deliveries wait in Temporal: nothing is lost.

Where a crisis starts, the same file says which webhooks it may name and which every crisis
tells (``configured_crisis_webhooks``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from app.temporal.config import load_config
from app.temporal.notifications import (
    WebhookBook,
    WebhookDeliverer,
    WebhookDeliveryWorkflow,
    load_webhooks,
    notification_task_queue,
    webhook_names,
    webhooks_for_all_crises,
)


def configured_webhooks(environ: Mapping[str, str] = os.environ) -> WebhookBook:
    """The webhooks of the configuration file, checked, with their secrets (none without a file)."""
    config = load_config(environ=environ)
    return load_webhooks(config.webhooks, config.where, environ)


@dataclass(frozen=True)
class CrisisWebhooks:
    """What the configuration file where a crisis starts says of webhooks: the names a crisis
    may name (``defined``), those every crisis tells (``all_crises``) and the file (``path``,
    None without one).
    """

    defined: list[str]
    all_crises: list[str]
    path: Path | None


def configured_crisis_webhooks(environ: Mapping[str, str] = os.environ) -> CrisisWebhooks:
    """The webhooks of the configuration file, as a crisis started here may name them (none
    without a file); their secrets are the notifier's business, not read here.
    """
    config = load_config(environ=environ)
    return CrisisWebhooks(
        defined=webhook_names(config.webhooks, config.where),
        all_crises=webhooks_for_all_crises(config.webhooks, config.where),
        path=config.path,
    )


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

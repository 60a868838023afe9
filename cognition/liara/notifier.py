"""The notifier of ``liara notifier`` and ``liara serve``: the engine's webhook delivery worker
(``app.temporal.notifier``), which the main worker runs too.
"""

from __future__ import annotations

from app.temporal.notifier import configured_webhooks, notifier_worker

__all__ = ["configured_webhooks", "notifier_worker"]

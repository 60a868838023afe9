"""Which listed pollers are live workers: the server lists a worker for minutes after it stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.api.taskqueue.v1 import PollerInfo

from cognition.liara.diagnostics import LIVE_POLLER_SECONDS, live_pollers


def poller(seconds_ago: float | None) -> PollerInfo:
    info = PollerInfo(identity=f"worker-{seconds_ago}")
    if seconds_ago is not None:
        info.last_access_time.FromDatetime(datetime.now(UTC) - timedelta(seconds=seconds_ago))
    return info


def test_a_worker_not_seen_for_longer_than_a_long_poll_is_not_counted() -> None:
    listed = [poller(1), poller(LIVE_POLLER_SECONDS - 15), poller(LIVE_POLLER_SECONDS + 15), poller(300)]
    assert live_pollers(listed) == 2


def test_a_poller_without_a_last_access_time_counts() -> None:
    assert live_pollers([poller(None)]) == 1
    assert live_pollers([]) == 0

"""Maps kept in memory for a while (caches, what a process remembers): the newest entries only."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def keep_newest(entries: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Put ``value`` under ``key`` as the newest of ``entries``, dropping the oldest past ``limit``."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > limit:
        entries.popitem(last=False)

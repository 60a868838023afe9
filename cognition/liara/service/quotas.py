"""What one token may hold at once (open event streams, long polls), so that no caller can hold
an unbounded number of connections; past its quota a request is a 429 problem.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from cognition.liara.service.problem_types import ProblemType
from cognition.liara.service.problems import ProblemError


class Quota:
    """At most ``limit`` of one kind of thing held per token; past it, a ``kind`` problem saying
    the token holds ``limit`` ``things`` and what to do (``advice``).
    """

    def __init__(self, limit: int, kind: ProblemType, things: str, advice: str) -> None:
        self.limit = limit
        self._kind = kind
        self._things = things
        self._advice = advice
        self._held: Counter[str] = Counter()

    def take(self, owner: str) -> None:
        """One more held by ``owner``; raises the problem if it holds ``limit`` already."""
        if self._held[owner] >= self.limit:
            raise ProblemError(
                self._kind, f"Token {owner!r} already holds {self.limit} {self._things}: {self._advice}."
            )
        self._held[owner] += 1

    def give_back(self, owner: str) -> None:
        self._held[owner] -= 1
        if not self._held[owner]:
            del self._held[owner]

    @contextmanager
    def held(self, owner: str) -> Iterator[None]:
        """One held by ``owner`` while the block runs."""
        self.take(owner)
        try:
            yield
        finally:
            self.give_back(owner)

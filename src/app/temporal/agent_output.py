"""A model call's text, live: ``call_model`` hands its crisis the text it streams, in batches,
and the crisis publishes each batch on its event stream as an ``agent_output`` event.

A batch is a signal (``AGENT_OUTPUT_SIGNAL``) to the crisis's run, and every signal is an event
of its history, so batches are few and bounded, per attempt of a model call:

- text waits ``BATCH_SECONDS`` before it goes, with what came meanwhile: at most one batch a
  second while the answer streams; what is left goes when the answer ends;
- at most ``MAX_BATCHES`` batches: past them, the text waits for the end of the answer;
- at most ``MAX_STREAMED_CHARS`` characters: past them, nothing more goes, and the last batch
  says ``cut`` (the phase's output holds the whole answer).

So a model call adds at most ``MAX_BATCHES`` signals to the history per attempt, a short answer
one, and an answer without text (tool calls only) none. A retried attempt always sends one (its
first text, or at its end an empty batch) so the crisis can tell readers to drop the text of
the attempt that failed. Streaming is a view, never a cause of failure: a batch that cannot be
delivered ends the streaming of that attempt, and the model call goes on.

Only the text of the answer is streamed (never the request, tool calls' arguments or the key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import activity

from app.temporal.models import AGENT_OUTPUT_SIGNAL, AgentOutputBatch

logger = logging.getLogger("liara.activities")

#: How long text waits before it goes (with what came meanwhile): one batch a second at most.
BATCH_SECONDS = 1.0
#: Batches a model call sends at most per attempt (the last one included).
MAX_BATCHES = 60
#: Characters of text a model call streams at most per attempt.
MAX_STREAMED_CHARS = 64 * 1024
#: How long delivering one batch may take.
SEND_TIMEOUT = timedelta(seconds=5)

T = TypeVar("T")

Send = Callable[[AgentOutputBatch], Awaitable[None]]


class OutputBatcher:
    """One attempt's streamed text, in batches to ``send``: ``add`` each piece as it comes (never
    blocks), then ``close`` once the answer is complete (sends the rest) or ``abandon`` if it failed.
    """

    def __init__(
        self,
        send: Send,
        *,
        phase_id: str,
        turn: int,
        attempt: int,
        interval: float = BATCH_SECONDS,
        max_batches: int = MAX_BATCHES,
        max_chars: int = MAX_STREAMED_CHARS,
    ) -> None:
        self._send = send
        self._phase_id = phase_id
        self._turn = turn
        self._attempt = attempt
        self._interval = interval
        self._max_batches = max_batches
        self._max_chars = max_chars
        self._buffer: list[str] = []
        self._chars = 0  # taken so far (sent or waiting)
        self._cut = False
        self.batches = 0
        self._broken = False  # a batch could not be delivered: no more are sent
        self._closed = False
        self._timer: asyncio.Task[None] | None = None
        self._timer_sleeping = False
        self._sending = asyncio.Lock()

    def add(self, text: str) -> None:
        """Take a piece of the answer's text; it goes with the next batch."""
        if not text or self._closed or self._cut:
            return
        room = self._max_chars - self._chars
        if len(text) > room:
            text, self._cut = text[:room], True
        if text:
            self._buffer.append(text)
            self._chars += len(text)
        self._schedule()

    def _schedule(self) -> None:
        """Send the text waiting in ``interval`` (the last batch is the one ``close`` sends)."""
        if self._timer is None and not self._closed and not self._broken and self.batches < self._max_batches - 1:
            self._timer = asyncio.ensure_future(self._send_later())

    async def _send_later(self) -> None:
        self._timer_sleeping = True
        try:
            await asyncio.sleep(self._interval)
        finally:
            self._timer_sleeping = False
        try:
            await self._send_batch()
        finally:
            self._timer = None
        if self._buffer:  # text came while the batch went: it waits its turn
            self._schedule()

    async def _send_batch(self, *, last: bool = False) -> None:
        async with self._sending:
            delta = "".join(self._buffer)
            # A retried attempt sends at least its last batch, empty or not: the crisis tells
            # readers to drop what the failed attempt streamed.
            announce = last and self._attempt > 1 and not self.batches
            if self._broken or not (delta or announce or (last and self._cut)):
                return
            self._buffer = []
            batch = AgentOutputBatch(
                phase_id=self._phase_id,
                turn=self._turn,
                attempt=self._attempt,
                delta=delta,
                cut=last and self._cut,
            )
            try:
                await self._send(batch)
            except Exception as err:  # the view is lost, not the model call
                self._broken = True
                logger.warning(
                    "Model call %d of phase %s streams no more text: a batch could not reach its crisis (%s)",
                    self._turn,
                    self._phase_id,
                    err,
                )
                return
            self.batches += 1

    async def close(self) -> None:
        """The answer is complete: send what is left (and wait until it is delivered)."""
        self._closed = True
        timer = self._timer
        if timer is not None:
            if self._timer_sleeping:  # a batch being delivered is let finish
                timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)
        await self._send_batch(last=True)

    async def abandon(self) -> None:
        """The attempt failed or was cancelled: send nothing more."""
        self._closed = True
        timer = self._timer
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await timer


async def streamed_to_crisis(
    complete: Callable[[Callable[[str], None]], Awaitable[T]], *, workflow_id: str, phase_id: str, turn: int
) -> T:
    """``complete(on_chunk)``'s result, the text it gives ``on_chunk`` batched to the crisis that
    runs this activity (its run: never a later crisis of the same workflow id).
    """
    info = activity.info()
    handle = activity.client().get_workflow_handle(workflow_id, run_id=info.workflow_run_id)

    async def send(batch: AgentOutputBatch) -> None:
        await handle.signal(AGENT_OUTPUT_SIGNAL, batch, rpc_timeout=SEND_TIMEOUT)

    batcher = OutputBatcher(send, phase_id=phase_id, turn=turn, attempt=info.attempt)
    try:
        result = await complete(batcher.add)
    except BaseException:
        await batcher.abandon()
        raise
    await batcher.close()
    return result

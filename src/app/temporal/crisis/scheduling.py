"""``PhaseScheduler``: the crisis's plan run as it grows (see app.temporal.plan).

Each phase runs as a task of its own, started once: one at a time in a sequential crisis, every
ready one in a graph (at most ``max_parallel`` agents at once; the others wait for a slot). A
cancel stops them all; so does an abort, after which no phase starts. Past its history budget
the crisis starts no phase, and continues as a new run once nothing runs (a language-model
agent's loop stops between two model calls for it, and goes on first in the new run).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

from app.temporal import plan
from app.temporal.crisis.continuation import Continuation
from app.temporal.crisis.phases import UNDER_WAY, PhaseBoard
from app.temporal.crisis.running import PhaseRunner
from app.temporal.models import PhaseStatus


class PhaseScheduler:
    def __init__(self, board: PhaseBoard, runner: PhaseRunner, continuation: Continuation) -> None:
        self._board = board
        self._runner = runner
        self._continuation = continuation

    async def run_phases(self) -> bool:
        """Run the plan to its end; return True if a failure aborted it."""
        board, runner = self._board, self._runner
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while not runner.aborting:
                board.skip_blocked()
                over_budget = self._continuation.over_budget()
                for phase in [] if over_budget else [*board.suspended(), *board.ready()]:
                    if phase.phase_id not in running:
                        running[phase.phase_id] = asyncio.ensure_future(runner.run_and_record(phase))
                if not running:
                    if not (over_budget and (board.ready() or board.suspended())):
                        return False
                    await self._continuation.continue_as_new()  # returns only if the crisis stays in this run
                    continue
                planned = len(board.plan)
                await workflow.wait_condition(
                    lambda planned=planned: (
                        runner.aborting or any(task.done() for task in running.values()) or len(board.plan) != planned
                    )
                )
                for phase_id, task in list(running.items()):
                    if task.done():
                        del running[phase_id]
                        task.result()  # raises what the task raised
        except asyncio.CancelledError:
            await self._stop(running)
            raise
        await self._stop(running)
        return True

    async def _stop(self, running: dict[str, asyncio.Task[None]]) -> None:
        """Cancel the phases not finished yet and wait until their agents have stopped (a finished
        phase's task only writes its record: it ends on its own). Phases that were running or
        awaiting approval are cancelled; those still waiting for a slot never started, and stay
        pending until the crisis winds down and skips them.
        """
        board = self._board
        for phase_id, task in running.items():
            if board.phases[board.index_of(phase_id)].status not in plan.FINISHED:
                task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        for phase_id in running:
            index = board.index_of(phase_id)
            if board.phases[index].status in UNDER_WAY:
                board.close(index, PhaseStatus.CANCELLED)

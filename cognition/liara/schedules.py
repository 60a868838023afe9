"""Crises on a timetable, on Temporal Schedules: ``liara schedule create|list|describe|...``.

A schedule keeps one checked crisis request (from action words, a missions file or a rendered
playbook) and starts it on its spec. Each run is its own crisis: Temporal gives each started
workflow a unique id (the schedule's workflow id plus the time it was due), the workflow takes
its crisis id from it, and the crisis records the schedule's name (``liara list --schedule``
finds them through Temporal's ``TemporalScheduledById``). The overlap policy is ``skip`` by
default: one crisis of a schedule runs at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleListActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import Priority
from temporalio.service import RPCError, RPCStatusCode

from app.temporal.errors import InvalidCrisisRequestError, LiaraError
from app.temporal.identity import MAX_SCHEDULE_NAME_LENGTH, schedule_request_crisis_id, scheduled_workflow_id
from app.temporal.models import CrisisRequest, MissionPhase
from app.temporal.visibility import start_attributes
from app.temporal.workflows import CrisisResponseWorkflow
from cognition.liara.crisis_requests import build_request

MAX_INTERVAL_SECONDS = 366 * 24 * 3600


class Overlap(StrEnum):
    """What a schedule does when a run is due while the previous one still runs."""

    SKIP = "skip"
    BUFFER_ONE = "buffer-one"
    BUFFER_ALL = "buffer-all"
    CANCEL_OTHER = "cancel-other"
    TERMINATE_OTHER = "terminate-other"
    ALLOW_ALL = "allow-all"

    @property
    def policy(self) -> ScheduleOverlapPolicy:
        return ScheduleOverlapPolicy[self.name]


class ScheduleError(LiaraError):
    """A schedule that does not exist, exists already, or cannot be changed as asked."""


def spec_of(cron: str | None, every: float | None) -> ScheduleSpec:
    """The timetable: a cron expression or an interval in seconds, exactly one of them."""
    if (cron is None) == (every is None):
        raise InvalidCrisisRequestError("Give a schedule either --cron EXPR or --every SECONDS, not both or neither.")
    if every is not None:
        if not 1 <= every <= MAX_INTERVAL_SECONDS:
            raise InvalidCrisisRequestError(f"--every takes 1 to {MAX_INTERVAL_SECONDS} seconds, not {every:g}.")
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every))])
    return ScheduleSpec(cron_expressions=[cron or ""])


async def create(
    client: Client,
    name: str,
    spec: ScheduleSpec,
    *,
    task_queue: str,
    target_member: str,
    missions: Iterable[MissionPhase | Mapping[str, Any]],
    initiated_by: str,
    overlap: Overlap = Overlap.SKIP,
    **options: Any,
) -> None:
    """Create schedule ``name`` starting the crisis that ``build_request`` makes of the rest."""
    if len(name) > MAX_SCHEDULE_NAME_LENGTH:
        raise InvalidCrisisRequestError(
            f"A schedule name has at most {MAX_SCHEDULE_NAME_LENGTH} characters (each run's crisis id adds the time it "
            f"was due), not {len(name)}."
        )
    request: CrisisRequest = build_request(
        target_member=target_member,
        missions=missions,
        initiated_by=initiated_by,
        crisis_id=schedule_request_crisis_id(name),  # each run takes its own (see CrisisResponseWorkflow)
        schedule=name,
        **options,
    )
    action = ScheduleActionStartWorkflow(
        CrisisResponseWorkflow.run,
        request,
        id=scheduled_workflow_id(name),
        task_queue=task_queue,
        typed_search_attributes=start_attributes(request.target_member, request.initiated_by),
        priority=Priority(priority_key=request.priority),
    )
    schedule = Schedule(action=action, spec=spec, policy=SchedulePolicy(overlap=overlap.policy))
    try:
        await client.create_schedule(name, schedule)
    except ScheduleAlreadyRunningError:
        raise ScheduleError(
            f"A schedule named {name!r} exists already: delete it first or choose another name."
        ) from None
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            raise InvalidCrisisRequestError(f"Temporal refused schedule {name!r}: {err.message}.") from None
        raise


async def listed(client: Client) -> list[dict[str, Any]]:
    """Every schedule of the namespace that starts crises, by name (Temporal lists a new one
    within a few seconds).
    """
    rows = []
    async for entry in await client.list_schedules():
        info, schedule = entry.info, entry.schedule
        if info is None or schedule is None or not isinstance(schedule.action, ScheduleListActionStartWorkflow):
            continue
        if schedule.action.workflow != CrisisResponseWorkflow.__name__:
            continue
        rows.append(
            {
                "name": entry.id,
                "paused": schedule.state.paused,
                "next_run": info.next_action_times[0].isoformat() if info.next_action_times else None,
                "last_run": info.recent_actions[-1].started_at.isoformat() if info.recent_actions else None,
            }
        )
    return sorted(rows, key=lambda row: row["name"])


async def described(client: Client, name: str) -> dict[str, Any]:
    description = await _describe(client, name)
    schedule, info = description.schedule, description.info
    spec = schedule.spec
    state: ScheduleState = schedule.state
    return {
        "name": name,
        "cron": list(spec.cron_expressions),
        "every_seconds": [interval.every.total_seconds() for interval in spec.intervals],
        "overlap": Overlap[schedule.policy.overlap.name].value,
        "paused": state.paused,
        "note": state.note,
        "runs": info.num_actions,
        "skipped_overlapping": info.num_actions_skipped_overlap,
        # A crisis schedule's actions start workflows, the only kind of action Temporal has.
        "running": [
            action.workflow_id
            for action in info.running_actions
            if isinstance(action, ScheduleActionExecutionStartWorkflow)
        ],
        "recent": [
            {"workflow_id": result.action.workflow_id, "started_at": result.started_at.isoformat()}
            for result in info.recent_actions
            if isinstance(result.action, ScheduleActionExecutionStartWorkflow)
        ],
        "next_runs": [moment.isoformat() for moment in info.next_action_times],
    }


async def pause(client: Client, name: str, note: str | None = None) -> None:
    await _describe(client, name)
    await client.get_schedule_handle(name).pause(note=note or "paused with liara")


async def unpause(client: Client, name: str, note: str | None = None) -> None:
    await _describe(client, name)
    await client.get_schedule_handle(name).unpause(note=note or "unpaused with liara")


async def trigger(client: Client, name: str) -> None:
    """Start a run now (the overlap policy still applies)."""
    await _describe(client, name)
    await client.get_schedule_handle(name).trigger()


async def delete(client: Client, name: str) -> None:
    await _describe(client, name)
    await client.get_schedule_handle(name).delete()


async def _describe(client: Client, name: str) -> ScheduleDescription:
    try:
        return await client.get_schedule_handle(name).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ScheduleError(f"No schedule named {name!r}: see `liara schedule list`.") from None
        raise

"""Crises on a timetable, on Temporal Schedules: ``liara schedule create|list|describe|...``.

A schedule keeps one checked crisis request (from action words, a missions file or a rendered
playbook) and starts it on its spec. Each run is its own crisis: Temporal gives each started
workflow a unique id (the schedule's workflow id plus the time it was due), the workflow takes
its crisis id from it, and the crisis records the schedule's name (``liara list --schedule``
finds them through Temporal's ``TemporalScheduledById``). The overlap policy is ``skip`` by
default: one crisis of a schedule runs at a time.

A cron expression has five fields, or is one of Temporal's names (``@daily``...): Temporal would
take six or seven too, reading a sixth field as the year, so ``0 0 3 * * *`` meant with seconds
first would run monthly; such an expression is refused, saying what was probably meant. Temporal
keeps a cron expression only as the calendar it compiles it to, so the schedule's memo keeps the
text as given, which ``described`` shows (a schedule created without it shows its calendars as
cron text).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleListActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
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
#: Memo key of the cron expressions of a schedule, as they were given.
CRON_MEMO = "liara_cron"
#: What Temporal takes instead of the five fields.
CRON_NAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CRON_FIELDS = "minute hour day-of-month month day-of-week"
#: How long ``create`` waits for Temporal to work out a new schedule's next runs.
NEXT_RUNS_WAIT_SECONDS = 5.0
_NEXT_RUNS_POLL_SECONDS = 0.1
#: The calendar fields of a five-field cron expression, with their full ranges.
_CRON_RANGES = (("minute", 0, 59), ("hour", 0, 23), ("day_of_month", 1, 31), ("month", 1, 12), ("day_of_week", 0, 6))


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
    return ScheduleSpec(cron_expressions=[check_cron(cron or "")])


def check_cron(cron: str) -> str:
    """``cron`` if it has five fields (after an optional ``CRON_TZ=zone`` and before an optional
    ``# comment``) or is one of ``CRON_NAMES``; else ``InvalidCrisisRequestError`` saying what
    was probably meant. Temporal checks each field's values when the schedule is created.
    """
    fields = cron.split("#", 1)[0].split()
    if fields and fields[0].startswith(("CRON_TZ=", "TZ=")):
        fields = fields[1:]
    if len(fields) == 5 or (len(fields) == 1 and fields[0] in CRON_NAMES):
        return cron
    raise InvalidCrisisRequestError(_cron_problem(cron, fields))


def _cron_problem(cron: str, fields: list[str]) -> str:
    takes = f"--cron takes five fields ({CRON_FIELDS}) or a name such as @daily"
    if len(fields) == 1 and fields[0].startswith("@"):
        return f"--cron takes five fields ({CRON_FIELDS}) or one of {', '.join(CRON_NAMES)}, not {cron!r}."
    if fields and fields[0] == "@every":
        return f"--cron {cron!r} is an interval: give --every SECONDS instead."
    # Seconds first (and, of seven, the year last), as Quartz and Spring write them.
    meant = " ".join("*" if field == "?" else field for field in fields[1:6])
    if len(fields) == 6:
        return (
            f"{takes}, not six: Temporal would read the sixth field of {cron!r} as the year; with the seconds "
            f"first, you probably meant --cron {meant!r}."
        )
    if len(fields) == 7:
        return (
            f"{takes}, not seven: with the seconds first and the year last, {cron!r} probably means --cron {meant!r}."
        )
    return f"{takes}, not {cron!r}: e.g. '0 3 * * *' is every day at 03:00 UTC."


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
) -> list[datetime]:
    """Create schedule ``name`` starting the crisis that ``build_request`` makes of the rest;
    return its next run times (none if its timetable matches no time to come).
    """
    for cron in spec.cron_expressions:
        check_cron(cron)
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
    memo = {CRON_MEMO: list(spec.cron_expressions)} if spec.cron_expressions else None
    try:
        await client.create_schedule(name, schedule, memo=memo)
    except ScheduleAlreadyRunningError:
        raise ScheduleError(
            f"A schedule named {name!r} exists already: delete it first or choose another name."
        ) from None
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            raise InvalidCrisisRequestError(f"Temporal refused schedule {name!r}: {err.message}.") from None
        raise
    return await next_runs(client, name)


async def next_runs(client: Client, name: str, wait: float = NEXT_RUNS_WAIT_SECONDS) -> list[datetime]:
    """The schedule's next run times; a new schedule's take Temporal a moment to work out, so this
    waits up to ``wait`` seconds for them (a timetable that matches no time to come has none).
    """
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        upcoming = (await _describe(client, name)).info.next_action_times
        if upcoming or asyncio.get_running_loop().time() >= deadline:
            return list(upcoming)
        await asyncio.sleep(_NEXT_RUNS_POLL_SECONDS)


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
    given = await description.memo_value(CRON_MEMO, None)
    return {
        "name": name,
        "cron": list(given) if given else [_cron_text(calendar, spec) for calendar in spec.calendars],
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


def _cron_text(calendar: ScheduleCalendarSpec, spec: ScheduleSpec) -> str:
    """A calendar Temporal compiled a cron expression to, as cron text again (with the seconds
    first and the year last when they are not the defaults).
    """
    fields = [_cron_field(getattr(calendar, field), low, high) for field, low, high in _CRON_RANGES]
    second = _cron_field(calendar.second, 0, 59)
    if second != "0" or calendar.year:
        fields = [second, *fields, _cron_field(calendar.year, 1970, 2199)]
    zone = f"CRON_TZ={spec.time_zone_name} " if spec.time_zone_name else ""
    comment = f" # {calendar.comment}" if calendar.comment else ""
    return f"{zone}{' '.join(fields)}{comment}"


def _cron_field(ranges: Sequence[ScheduleRange], low: int, high: int) -> str:
    parts = []
    for piece in ranges or [ScheduleRange(low, high)]:
        end = max(piece.end, piece.start)
        if (piece.start, end) == (low, high):
            text = "*"
        elif end == piece.start:
            text = str(piece.start)
        else:
            text = f"{piece.start}-{end}"
        parts.append(f"{text}/{piece.step}" if piece.step > 1 else text)
    return ",".join(parts)


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

"""Commands on crises: start, follow, steer and list them."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from app.temporal.errors import InvalidCrisisRequestError, TemporalUnavailableError
from app.temporal.models import MAX_PARALLEL, FailurePolicy
from app.temporal.validation import FieldProblem, InvalidFieldsError, Location
from app.temporal.visibility import CRISIS_STATUSES, DEFAULT_LIST_LIMIT, CrisisFilter
from cognition.liara.actions import missions_from_actions
from cognition.liara.commands.connection import EXIT_CRISIS_UNSUCCESSFUL, Connection
from cognition.liara.commands.live_text import (
    Event,
    LiveText,
    Standing,
    finish_reading,
    follow_to_the_end,
    print_agent_text,
    print_event_line,
)
from cognition.liara.commands.options import (
    WORKER_TIMEOUT_SECONDS,
    JsonFlag,
    Priority,
    Timeout,
    WorkerTimeout,
    WorkflowId,
)
from cognition.liara.commands.output import (
    crisis_table,
    err_console,
    out,
    phase_table,
    print_json,
    print_result,
    print_status,
    say,
)
from cognition.liara.crisis_agency import CrisisAgency
from cognition.liara.diagnostics import awaiting_approval
from cognition.liara.errors import CrisisNotRunningError


def blocked_by(status: dict[str, Any], options: list[str]) -> list[str]:
    """What keeps a running crisis from going on, each with the command that would let it (the
    connection ``options`` given before it): no worker polling its task queue, phases awaiting
    approval.
    """
    if status["status"] != "running":
        return []
    blocked = [status["note"]] if status.get("workers_polling") == 0 and "note" in status else []
    return blocked + awaiting_approval(status["workflow_id"], status.get("phases") or [], options)


def _progress_line(status: dict[str, Any]) -> tuple[str, int, int] | None:
    """``(description, phases done, phases in all)`` of a running crisis, if a worker answered."""
    if status["status"] != "running" or "summary" not in status:
        return None
    summary = status["summary"]
    current = status.get("current_phase")
    description = f"{status['stage']}" + (f": {current}" if current else "")
    return description, summary["completed_phases"] + summary["failed_phases"], summary["total_phases"]


async def _follow(
    agency: CrisisAgency,
    workflow_id: str,
    timeout: float | None,
    console: Console,
    options: list[str],
    *,
    lines: bool = False,
) -> dict[str, Any]:
    """Wait for the result while showing progress and what blocks it (no worker, a phase awaiting
    approval, with the command that lets it go on): a live bar on a terminal, else (with
    ``lines``) one line per change, else nothing. With ``lines``, the text the crisis's agents
    write too, as they write it.

    Progress comes from the crisis's event stream: its status is read once, at the start, and
    its events tell every change after (no status is asked for while it runs).
    """
    if not console.is_terminal and not lines:
        return await agency.wait_for_crisis_completion(workflow_id, timeout)
    report = await agency.get_crisis_status(workflow_id)
    if report["status"] != "running":
        return await _ended(agency, workflow_id, timeout, console if lines else None)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        shown = _Shown(progress, progress.add_task(workflow_id, total=None), console, options)
        standing = Standing(report)
        shown.show(standing.report())
        text = LiveText() if lines else None
        changed = False

        async def on_events(batch: list[Event]) -> None:
            nonlocal standing, changed
            for event in batch:
                if not standing.evented and not standing.knows_phases:
                    # No worker told the phases at the start: one does now (it runs the crisis).
                    standing = Standing(await agency.get_crisis_status(workflow_id))
                said = text.lines(event) if text is not None else []
                if said and changed and event["event"] == "agent_output":
                    shown.show(standing.report())  # where the crisis stands, then the text it writes there
                    changed = False
                for line in said:
                    say(line, console)
                changed = standing.apply(event) or changed
            if changed:
                shown.show(standing.report())
                changed = False

        return await follow_to_the_end(agency, workflow_id, timeout, on_events)


async def _ended(
    agency: CrisisAgency, workflow_id: str, timeout: float | None, console: Console | None
) -> dict[str, Any]:
    """The result of a crisis that has ended; on ``console`` first the text its agents wrote."""
    if console is None:
        return await agency.wait_for_crisis_completion(workflow_id, timeout)
    reading = asyncio.ensure_future(print_agent_text(agency, workflow_id, console))
    try:
        result = await agency.wait_for_crisis_completion(workflow_id, timeout)
    except BaseException:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        raise
    await finish_reading(reading)  # its text, read from its stream
    return result


class _Shown:
    """What ``_follow`` shows of where the crisis stands: the bar on a terminal, else a line per
    change; what blocks it on a line of its own, once.
    """

    def __init__(self, progress: Progress, task: TaskID, console: Console, options: list[str]) -> None:
        self._progress, self._task, self._console, self._options = progress, task, console, options
        self._last: tuple[str, int, int] | None = None
        self._told: set[str] = set()

    def show(self, status: dict[str, Any]) -> None:
        progress, task, console = self._progress, self._task, self._console
        line = _progress_line(status)
        blocked = blocked_by(status, self._options)
        if line is not None:
            description, done, total = line
            progress.update(task, description=description, completed=done, total=total)
            if not console.is_terminal and line != self._last:
                say(f"{description} ({done}/{total} phases done)", console)
            self._last = line
        if blocked:
            progress.update(task, description="; ".join(blocked))
        if not console.is_terminal:
            for said in blocked:
                if said not in self._told:
                    say(said, console)
        self._told = set(blocked)


def _finish(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        print_result(result)
    if not result["success"]:
        raise typer.Exit(EXIT_CRISIS_UNSUCCESSFUL)


#: The request fields that trigger's options set, and the flag of each.
_FLAGS: dict[Location, str] = {
    ("crisis_id",): "--crisis-id",
    ("initiated_by",): "--initiated-by",
    ("retry", "maximum_attempts"): "--max-attempts",
    ("retry", "initial_interval_seconds"): "--retry-initial-interval",
    ("retry", "maximum_interval_seconds"): "--retry-maximum-interval",
    ("retry", "backoff_coefficient"): "--retry-backoff",
    ("phase_timeout_seconds",): "--phase-timeout",
    ("heartbeat_timeout_seconds",): "--heartbeat-timeout",
    ("failure_policy",): "--failure-policy",
    ("max_parallel",): "--max-parallel",
    ("priority",): "--priority",
    ("token_budget",): "--token-budget",
    ("cost_budget",): "--cost-budget",
}


def as_flags(
    given: Mapping[Location, object], *, target: bool = False, webhooks: int = 0
) -> Callable[[FieldProblem], str | None]:
    """How a problem of the request reads on the command line: at the flag that gave the field
    (``given``: the fields the options set), at TARGET for the target (``target``: from the
    arguments, copied into each phase), at --webhook for the first ``webhooks`` webhooks; None
    for the others (a missions file's, a playbook's own), which keep their request names.
    """
    flags = {location: flag for location, flag in _FLAGS.items() if given.get(location) is not None}

    def word(problem: FieldProblem) -> str | None:
        location, message = problem.location, problem.message
        if location in flags:
            return f"{flags[location]}: {message}"
        if target and (
            location == ("target_member",) or (location[:1] == ("missions",) and location[2:] == ("target",))
        ):
            return f"TARGET: {message}"
        # The webhooks given are the request's first (the service's body names them on their own).
        listed = location[1:] if location[:1] == ("webhooks",) else location[2:]
        if location[:1] == ("webhooks",) or location[:2] == ("notifications", "webhooks"):
            if len(listed) == 1 and isinstance(listed[0], int) and listed[0] < webhooks:
                return f"--webhook: {message}"
        if location == ("retry",) and any(field[0] == "retry" for field in flags):
            # A rule across the retry options names each field: say the flags instead.
            for (_, field), flag in ((field, flag) for field, flag in _FLAGS.items() if field[0] == "retry"):
                message = message.replace(str(field), flag)
            return message
        return None

    return word


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs (the playbook converts each value to its input's type)."""
    inputs = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="'--input'")
        inputs[name.strip()] = value
    return inputs


def json_object_option(text: str, option: str) -> dict[str, Any]:
    """An option's JSON object (``--arguments '{"host": "web-1"}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise typer.BadParameter(f"{text!r} is not JSON ({err.msg})", param_hint=f"'{option}'") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{text!r} is not a JSON object", param_hint=f"'{option}'")
    return value


def missions_from_file(path: Path) -> list[Any]:
    """A JSON list of mission phases (the Python API's ``missions``)."""
    try:
        missions = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InvalidCrisisRequestError(f"Cannot read missions file {path}: {err.strerror}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidCrisisRequestError(f"Missions file {path} is not valid JSON ({err}).") from None
    if not isinstance(missions, list):
        raise InvalidCrisisRequestError(f"Missions file {path} must hold a JSON list of phases.")
    return missions


MaxParallel = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_PARALLEL,
        metavar="N",
        help="Phases of a graph (phases with depends_on) that run at once (default 4, or the playbook's)",
    ),
]


def trigger(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(help="The target member, e.g. target-alpha")] = None,
    actions: Annotated[
        list[str] | None,
        typer.Argument(help="One phase per action, run in this order, e.g. recon secure extract cleanup"),
    ] = None,
    missions_file: Annotated[
        Path | None,
        typer.Option(help="JSON list of phases (phase_id, agent_id, action, target, ...) instead of ACTIONS"),
    ] = None,
    playbook: Annotated[
        str | None,
        typer.Option(
            help="A playbook file, or the name of one in the playbooks directory (LIARA_PLAYBOOKS), instead of "
            "TARGET and ACTIONS"
        ),
    ] = None,
    input_values: Annotated[
        list[str] | None,
        typer.Option("--input", metavar="NAME=VALUE", help="A playbook input (repeatable)"),
    ] = None,
    crisis_id: Annotated[
        str | None, typer.Option(help="Your own crisis id (letters, digits, . _ -); never reused. Default: generated")
    ] = None,
    initiated_by: Annotated[str | None, typer.Option(help="Who starts the crisis. Default: your user name")] = None,
    max_attempts: Annotated[int | None, typer.Option(min=1, help="Attempts per phase (default 3)")] = None,
    retry_initial_interval: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Wait before a phase's second attempt (default 2)")
    ] = None,
    retry_maximum_interval: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Longest wait between attempts (default 30)")
    ] = None,
    retry_backoff: Annotated[
        float | None, typer.Option(metavar="COEFFICIENT", help="Each wait is this many times the last (default 2)")
    ] = None,
    phase_timeout: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Seconds one attempt of a phase may take (default 300)")
    ] = None,
    heartbeat_timeout: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="A phase whose worker is silent this long is retried (default 10)"),
    ] = None,
    failure_policy: Annotated[
        FailurePolicy | None,
        typer.Option(help="continue: run the other phases (the default); abort: stop at the first failed phase"),
    ] = None,
    max_parallel: MaxParallel = None,
    priority: Priority = None,
    token_budget: Annotated[
        int | None,
        typer.Option(
            metavar="TOKENS",
            help="Tokens its language-model agents may spend in all; reached, they wait at an extend-budget gate",
        ),
    ] = None,
    cost_budget: Annotated[
        float | None,
        typer.Option(metavar="AMOUNT", help="What its agents' model calls may cost in all (models with prices)"),
    ] = None,
    webhook: Annotated[
        list[str] | None,
        typer.Option(
            help="Tell this webhook (a webhooks.NAME table of the notifier's liara.toml) of approvals needed, "
            "failed phases and the end (repeatable)"
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result and print it")] = False,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="With --wait: give up waiting after this many seconds")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a crisis with one phase per ACTION against TARGET and print its workflow id."""
    connection: Connection = ctx.obj
    if playbook is not None:
        if target or actions or missions_file:
            raise typer.BadParameter("a playbook names its own target and phases: leave them out", param_hint="TARGET")
    elif input_values:
        raise typer.BadParameter("inputs are for --playbook", param_hint="'--input'")
    elif target is None:
        raise typer.BadParameter("give TARGET and ACTIONS, --missions-file or --playbook", param_hint="TARGET")
    elif bool(actions) == bool(missions_file):
        raise typer.BadParameter("give either ACTIONS or --missions-file", param_hint="ACTIONS")
    inputs = parse_inputs(input_values or [])
    if timeout is not None and not wait:
        raise typer.BadParameter("it only limits --wait: add --wait, or leave --timeout out", param_hint="'--timeout'")
    retry = {
        name: value
        for name, value in (
            ("maximum_attempts", max_attempts),
            ("initial_interval_seconds", retry_initial_interval),
            ("maximum_interval_seconds", retry_maximum_interval),
            ("backoff_coefficient", retry_backoff),
        )
        if value is not None
    }

    given: dict[Location, object] = {
        ("crisis_id",): crisis_id,
        ("initiated_by",): initiated_by,
        **{("retry", name): value for name, value in retry.items()},
        ("phase_timeout_seconds",): phase_timeout,
        ("heartbeat_timeout_seconds",): heartbeat_timeout,
        ("failure_policy",): failure_policy,
        ("max_parallel",): max_parallel,
        ("priority",): priority,
        ("token_budget",): token_budget,
        ("cost_budget",): cost_budget,
    }
    flags = as_flags(given, target=playbook is None and not missions_file, webhooks=len(webhook or []))

    async def start(agency: CrisisAgency) -> tuple[str, dict[str, Any] | None]:
        try:
            return await start_it(agency)
        except InvalidFieldsError as err:
            raise err.reworded(flags) from None

    async def start_it(agency: CrisisAgency) -> tuple[str, dict[str, Any] | None]:
        options = {
            "crisis_id": crisis_id,
            "retry": retry or None,
            "phase_timeout_seconds": phase_timeout,
            "heartbeat_timeout_seconds": heartbeat_timeout,
            "webhooks": webhook,
            "failure_policy": failure_policy,
            "max_parallel": max_parallel,
            "priority": priority,
            "token_budget": token_budget,
            "cost_budget": cost_budget,
        }
        who = initiated_by or getpass.getuser()
        if playbook is not None:
            started = await agency.start_playbook(playbook, inputs, who, **options)
            described = f"playbook {playbook}"
        else:
            assert target is not None  # checked above
            missions = (
                missions_from_file(missions_file) if missions_file else missions_from_actions(target, actions or [])
            )
            started = await agency.start_crisis(target, missions, who, **options)
            described = f"crisis on {target} with {len(missions)} phases"
        workflow_id = started["workflow_id"]
        if not as_json:
            print(workflow_id, flush=True)
            say(f"Started {described}. Follow it with: liara watch {workflow_id}", err_console)
        result = await _follow(agency, workflow_id, timeout, err_console, connection.options) if wait else None
        return workflow_id, result

    workflow_id, result = connection.run_on_crises(start)
    if result is not None:
        if as_json:
            result = {"workflow_id": workflow_id, **result}
        _finish(result, as_json)
    elif as_json:
        print_json({"workflow_id": workflow_id})


def status(ctx: typer.Context, workflow_id: WorkflowId, as_json: JsonFlag = False) -> None:
    """Show where a crisis stands (never waits): its state, current phase and every phase so far."""
    connection: Connection = ctx.obj
    report = connection.run_on_crises(lambda agency: agency.get_crisis_status(workflow_id))
    if as_json:
        print_json(report)
    else:
        print_status(workflow_id, report, blocked=blocked_by(report, connection.options))


def wait(ctx: typer.Context, workflow_id: WorkflowId, timeout: Timeout = None, as_json: JsonFlag = False) -> None:
    """Wait until a crisis finishes and print its result (exit 3 if a phase failed).

    On a terminal a progress bar shows the current phase, or what the crisis waits for; piped, it
    stays quiet (a --timeout that runs out says what it waits for).
    """
    connection: Connection = ctx.obj
    result = connection.run_on_crises(
        lambda agency: _follow(agency, workflow_id, timeout, err_console, connection.options)
    )
    _finish(result, as_json)


WatchJsonFlag = Annotated[
    bool, typer.Option("--json", help="Print each event as a JSON line (the last, finished, with the result)")
]


def watch(ctx: typer.Context, workflow_id: WorkflowId, timeout: Timeout = None, as_json: WatchJsonFlag = False) -> None:
    """Show live progress (a bar and the current phase, or what the crisis waits for and the command
    that lets it go on) and the text its agents write, as they write it, until the crisis ends,
    then its result.
    """
    connection: Connection = ctx.obj
    if as_json:
        result = connection.run_on_crises(lambda agency: _events_as_json(agency, workflow_id, timeout))
        if not result["success"]:
            raise typer.Exit(EXIT_CRISIS_UNSUCCESSFUL)
        return
    result = connection.run_on_crises(
        lambda agency: _follow(agency, workflow_id, timeout, out, connection.options, lines=True)
    )
    _finish(result, as_json=False)


async def _events_as_json(agency: CrisisAgency, workflow_id: str, timeout: float | None) -> dict[str, Any]:
    """Print the crisis's events as JSON lines until it ends; its result."""
    await agency.get_crisis_status(workflow_id)  # an unknown id is one sentence, before any event

    async def print_lines(batch: list[Event]) -> None:
        for event in batch:
            print_event_line(event)

    return await follow_to_the_end(agency, workflow_id, timeout, print_lines, fallback=False)


def cancel(ctx: typer.Context, workflow_id: WorkflowId) -> None:
    """Cancel a running crisis: stop its running phase, skip the rest, compensate completed phases."""
    connection: Connection = ctx.obj
    connection.run_on_crises(lambda agency: agency.cancel_crisis(workflow_id, cancelled_by=getpass.getuser()))
    say(f"Cancellation requested for {workflow_id}; follow it with: liara watch {workflow_id}")


def approve(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    phase_id: Annotated[str, typer.Argument(help="The phase that waits for approval")],
    by: Annotated[str | None, typer.Option(help="Who approves (recorded). Default: your user name")] = None,
    arguments: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help="When the phase's agent waits for approval of a tool call: the arguments it runs with instead "
            "of the model's, a JSON object (recorded with the decision)",
        ),
    ] = None,
    extend_tokens: Annotated[
        int | None,
        typer.Option(
            min=1,
            metavar="TOKENS",
            help="When the phase's agent waits at an extend-budget gate: tokens to add (default: as many again)",
        ),
    ] = None,
    extend_cost: Annotated[
        float | None,
        typer.Option(metavar="AMOUNT", help="At an extend-budget gate: cost to add (default: as much again)"),
    ] = None,
    timeout: WorkerTimeout = WORKER_TIMEOUT_SECONDS,
) -> None:
    """Approve a phase that requires approval, so it runs (once its quorum has approved); or, when
    the phase's agent waits for approval of a tool call, that call.
    """
    connection: Connection = ctx.obj
    approver = by or getpass.getuser()
    edited = json_object_option(arguments, "--arguments") if arguments is not None else None
    decision = connection.run_on_crises(
        lambda agency: agency.approve_phase(
            workflow_id,
            phase_id,
            approved_by=approver,
            arguments=edited,
            extend_tokens=extend_tokens,
            extend_cost=extend_cost,
            timeout=timeout,
        )
    )
    quorum = decision["approvals_required"]
    progress = f" ({decision['approvals']} of {quorum} approvals)" if quorum > 1 else ""
    what = f"Tool call {decision['tool']} of phase" if decision.get("tool") else "Phase"
    say(f"{what} {phase_id} of {workflow_id} approved by {decision['decided_by']}{progress}")


def reject(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    phase_id: Annotated[str, typer.Argument(help="The phase that waits for approval")],
    reason: Annotated[str | None, typer.Option(help="Why (recorded as the phase's error)")] = None,
    by: Annotated[str | None, typer.Option(help="Who rejects (recorded). Default: your user name")] = None,
    timeout: WorkerTimeout = WORKER_TIMEOUT_SECONDS,
) -> None:
    """Reject a phase that requires approval: it fails without running."""
    connection: Connection = ctx.obj
    rejecter = by or getpass.getuser()
    decision = connection.run_on_crises(
        lambda agency: agency.reject_phase(workflow_id, phase_id, rejected_by=rejecter, reason=reason, timeout=timeout)
    )
    what = f"Tool call {decision['tool']} of phase" if decision.get("tool") else "Phase"
    say(f"{what} {phase_id} of {workflow_id} rejected by {decision['decided_by']}")


def add_phases(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    actions: Annotated[list[str] | None, typer.Argument(help="One new phase per action, appended in order")] = None,
    missions_file: Annotated[Path | None, typer.Option(help="JSON list of phases instead of ACTIONS")] = None,
    timeout: WorkerTimeout = WORKER_TIMEOUT_SECONDS,
    as_json: JsonFlag = False,
) -> None:
    """Append phases to a running crisis (refused once its phases are over)."""
    connection: Connection = ctx.obj
    if bool(actions) == bool(missions_file):
        raise typer.BadParameter("give either ACTIONS or --missions-file", param_hint="ACTIONS")

    async def add(agency: CrisisAgency) -> dict[str, Any]:
        if missions_file:
            missions = missions_from_file(missions_file)
        else:
            current = await agency.get_crisis_status(workflow_id)
            if "phases" not in current:
                if "note" in current:  # running, but no worker answered: nothing to number the phases from
                    raise TemporalUnavailableError(f"Cannot add phases to {workflow_id} now: {current['note']}.")
                raise CrisisNotRunningError(f"Cannot add phases to {workflow_id}: it is {current['status']}.")
            missions = missions_from_actions(
                current["target"], actions or [], first_position=len(current["phases"]) + 1
            )
        return await agency.add_phases(workflow_id, missions, timeout=timeout)

    progress = connection.run_on_crises(add)
    if as_json:
        print_json(progress)
    else:
        say(f"Crisis workflow {workflow_id} now has {len(progress['phases'])} phases:")
        out.print(phase_table(progress["phases"]))


def list_crises(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option(help="Only crises against this target")] = None,
    status_filter: Annotated[
        str | None, typer.Option("--status", help=f"Only crises in this state: {', '.join(CRISIS_STATUSES)}")
    ] = None,
    initiated_by: Annotated[str | None, typer.Option(help="Only crises started by this user")] = None,
    schedule: Annotated[str | None, typer.Option(help="Only crises this schedule started")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first")] = DEFAULT_LIST_LIMIT,
    as_json: JsonFlag = False,
) -> None:
    """List crises, newest first, from the CrisisTarget / CrisisStatus / CrisisInitiatedBy search attributes."""
    connection: Connection = ctx.obj
    crisis_filter = CrisisFilter(
        target=target, status=status_filter, initiated_by=initiated_by, schedule=schedule, limit=limit
    )
    rows = connection.run_on_crises(lambda agency: agency.list_crises(crisis_filter))
    if as_json:
        print_json(rows)
        return
    if rows:
        out.print(crisis_table(rows))
    else:
        say("No crises match.")

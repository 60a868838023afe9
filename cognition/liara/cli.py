"""The ``liara`` command line (also ``python cognition/liara/cli.py``).

Exit codes: 0 success, 1 an error you can fix (the message says how), 2 a usage error,
3 the crisis finished but did not succeed.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from app.temporal.client import DEFAULT_ADDRESS, run_and_exit
from app.temporal.errors import (
    CrisisFailedError,
    CrisisNotRunningError,
    InvalidCrisisRequestError,
    LiaraError,
    TemporalUnavailableError,
)
from app.temporal.models import MAX_PHASES, FailurePolicy
from app.temporal.server import EmbeddedServer
from app.temporal.visibility import CRISIS_STATUSES
from app.temporal.worker import AddressOption, NamespaceOption, ProfileOption, TaskQueueOption
from cognition.liara.agency import LiaraTemporalAgency, missions_from_actions
from cognition.liara.bench import BenchPlan, measure_gate_memory, run_bench, write_results
from cognition.liara.doctor import Check, diagnose
from cognition.liara.worker import liara_worker_command

EXIT_ERROR = 1
EXIT_CRISIS_UNSUCCESSFUL = 3
#: Seconds between progress polls while waiting on a terminal.
PROGRESS_POLL_SECONDS = 0.5

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help=(
        "Launch crisis responses on Temporal and follow them.\n\n"
        "Start the server (python scripts/setup_temporal.py start) and a worker (liara worker) first; "
        "then `liara trigger target-alpha recon secure extract cleanup` prints a workflow id to use "
        "with `liara status` and `liara wait`."
    ),
)
app.command("worker")(liara_worker_command)

out = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
for _console in (out, err_console):
    if not _console.is_terminal:
        _console.width = 500  # piped output: never cut table cells to an 80-column guess
T = TypeVar("T")


class Connection:
    """Connection options given before the command; turned into an agency per command."""

    def __init__(self, address: str | None, namespace: str | None, task_queue: str | None, profile: str | None):
        self.options = {"temporal_host": address, "namespace": namespace, "task_queue": task_queue, "profile": profile}

    def run(self, command: Callable[[LiaraTemporalAgency], Awaitable[T]]) -> T:
        async def with_agency() -> T:
            # The agency connects on first use, so `doctor` can report a failed connection itself.
            return await command(LiaraTemporalAgency(**self.options))

        try:
            return asyncio.run(with_agency())
        except CrisisFailedError as err:
            say(f"Error: {err}", err_console)
            raise typer.Exit(EXIT_CRISIS_UNSUCCESSFUL) from None
        except LiaraError as err:
            say(f"Error: {err}", err_console)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            say("Interrupted; the crisis goes on in Temporal.", err_console)
            raise typer.Exit(130) from None


@app.callback()
def connection_options(
    ctx: typer.Context,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    task_queue: TaskQueueOption = None,
    profile: ProfileOption = None,
) -> None:
    ctx.obj = Connection(address, namespace, task_queue, profile)


def _print_json(value: Any) -> None:
    if out.is_terminal:
        out.print_json(json.dumps(value))
    else:
        print(json.dumps(value, indent=2))


def say(message: str, console: Console | None = None) -> None:
    """Print a message as it is: user data in it (ids, errors, names) is never Rich markup or emoji codes."""
    (console or out).print(message, markup=False, emoji=False, highlight=False)


def cell(value: object) -> Text:
    """A table cell showing ``value`` literally (Rich would parse a ``str`` cell as markup)."""
    return Text("" if value is None else str(value))


def table_of(headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> Table:
    """A borderless table whose every cell is shown literally."""
    table = Table(*headers, box=None)
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    return table


def _phase_table(phases: list[dict[str, Any]]) -> Table:
    return table_of(
        ("phase", "agent", "action", "status", "attempts", "error"),
        [
            (
                phase["phase_id"],
                phase["agent_id"],
                phase["action"],
                phase["status"],
                phase.get("attempts"),
                phase.get("error") or "",
            )
            for phase in phases
        ],
    )


def _crisis_table(rows: list[dict[str, Any]]) -> Table:
    return table_of(
        ("workflow id", "target", "crisis status", "initiated by", "started"),
        [
            (row["workflow_id"], row["target"], row["crisis_status"], row["initiated_by"], row["started_at"])
            for row in rows
        ],
    )


def _print_phases(phases: list[dict[str, Any]], compensations: list[dict[str, Any]] | None, console: Console) -> None:
    console.print(_phase_table(phases))
    if compensations:
        say("Compensations:", console)
        console.print(_phase_table(compensations))


def _print_result(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or out
    summary = result["summary"]
    say(f"Crisis {result['crisis_id']} on {result['target']}: {result['status']}", console)
    _print_phases(result["phases"], result.get("compensations"), console)
    say(
        f"Success: {result['success']} ({summary['completed_phases']} of {summary['total_phases']} phases completed, "
        f"{summary['failed_phases']} failed)",
        console,
    )
    if result.get("record_path"):
        say(f"Record: {result['record_path']}", console)


def _print_status(workflow_id: str, report: dict[str, Any], console: Console | None = None) -> None:
    console = console or out
    say(f"Crisis workflow {workflow_id}: {report['status']}", console)
    if report["status"] == "running":
        if "note" in report:
            say(report["note"], console)
        else:
            say(f"Stage: {report['stage']}; current phase: {report['current_phase'] or '-'}", console)
            _print_phases(report["phases"], report.get("compensations"), console)
        if "problem" in report:
            say(f"Problem: {report['problem']}", console)
    elif "result" in report:
        _print_result(report["result"], console)
    else:
        say(report.get("error", ""), console)


def _print_checks(checks: list[Check], console: Console | None = None) -> None:
    console = console or out
    for check in checks:
        mark = Text("ok  ", style="green") if check.ok else Text("FAIL", style="red")
        console.print(Text.assemble(mark, f" {check.name}: {check.detail}"))
        if check.fix:
            say(f"      fix: {check.fix}", console)


def _progress_line(status: dict[str, Any]) -> tuple[str, int, int] | None:
    """``(description, phases done, phases in all)`` of a running crisis, if a worker answered."""
    if status["status"] != "running" or "summary" not in status:
        return None
    summary = status["summary"]
    current = status.get("current_phase")
    description = f"{status['stage']}" + (f": {current}" if current else "")
    return description, summary["completed_phases"] + summary["failed_phases"], summary["total_phases"]


async def _follow(
    agency: LiaraTemporalAgency, workflow_id: str, timeout: float | None, console: Console, *, lines: bool = False
) -> dict[str, Any]:
    """Wait for the result while showing progress: a live bar on a terminal, else (with
    ``lines``) one line per change, else nothing.
    """
    waiting = asyncio.ensure_future(agency.wait_for_crisis_completion(workflow_id, timeout))
    if not console.is_terminal and not lines:
        return await waiting
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(workflow_id, total=None)
        last = None
        while not waiting.done():
            line = _progress_line(await agency.get_crisis_status(workflow_id))
            if line is not None:
                description, done, total = line
                progress.update(task, description=description, completed=done, total=total)
                if not console.is_terminal and line != last:
                    say(f"{description} ({done}/{total} phases done)", console)
                last = line
            await asyncio.wait([waiting], timeout=PROGRESS_POLL_SECONDS)
    return await waiting


def _finish(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(result)
    else:
        _print_result(result)
    if not result["success"]:
        raise typer.Exit(EXIT_CRISIS_UNSUCCESSFUL)


def _missions_from_file(path: Path) -> list[Any]:
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


WorkflowId = Annotated[str, typer.Argument(help="The id printed by `liara trigger`")]
#: How long approve, reject and add-phases wait for a worker to take the change.
WORKER_TIMEOUT_SECONDS = 10.0
WorkerTimeout = Annotated[
    float,
    typer.Option(
        "--timeout", min=0, metavar="SECONDS", help="Give up after this many seconds if no worker takes the change"
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
Timeout = Annotated[float | None, typer.Option(min=0, help="Give up waiting after this many seconds")]


@app.command()
def trigger(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The target member, e.g. target-alpha")],
    actions: Annotated[
        list[str] | None,
        typer.Argument(help="One phase per action, run in this order, e.g. recon secure extract cleanup"),
    ] = None,
    missions_file: Annotated[
        Path | None,
        typer.Option(help="JSON list of phases (phase_id, agent_id, action, target, ...) instead of ACTIONS"),
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
        FailurePolicy, typer.Option(help="continue: run the other phases; abort: stop at the first failed phase")
    ] = FailurePolicy.CONTINUE,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result and print it")] = False,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="With --wait: give up waiting after this many seconds")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a crisis with one phase per ACTION against TARGET and print its workflow id."""
    connection: Connection = ctx.obj
    if bool(actions) == bool(missions_file):
        raise typer.BadParameter("give either ACTIONS or --missions-file", param_hint="ACTIONS")
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

    async def start(agency: LiaraTemporalAgency) -> tuple[str, dict[str, Any] | None]:
        missions = _missions_from_file(missions_file) if missions_file else missions_from_actions(target, actions or [])
        workflow_id = await agency.trigger_crisis_response(
            target_member=target,
            missions=missions,
            initiated_by=initiated_by or getpass.getuser(),
            crisis_id=crisis_id,
            retry=retry or None,
            phase_timeout_seconds=phase_timeout,
            heartbeat_timeout_seconds=heartbeat_timeout,
            failure_policy=failure_policy,
        )
        if not as_json:
            print(workflow_id, flush=True)
            say(
                f"Started crisis on {target} with {len(missions)} phases. Follow it with: liara watch {workflow_id}",
                err_console,
            )
        result = await _follow(agency, workflow_id, timeout, err_console) if wait else None
        return workflow_id, result

    workflow_id, result = connection.run(start)
    if result is not None:
        if as_json:
            result = {"workflow_id": workflow_id, **result}
        _finish(result, as_json)
    elif as_json:
        _print_json({"workflow_id": workflow_id})


@app.command()
def status(ctx: typer.Context, workflow_id: WorkflowId, as_json: JsonFlag = False) -> None:
    """Show where a crisis stands (never waits): its state, current phase and every phase so far."""
    connection: Connection = ctx.obj
    report = connection.run(lambda agency: agency.get_crisis_status(workflow_id))
    if as_json:
        _print_json(report)
    else:
        _print_status(workflow_id, report)


@app.command()
def wait(ctx: typer.Context, workflow_id: WorkflowId, timeout: Timeout = None, as_json: JsonFlag = False) -> None:
    """Wait until a crisis finishes and print its result (exit 3 if a phase failed).

    On a terminal a progress bar shows the current phase; piped, it stays quiet.
    """
    connection: Connection = ctx.obj
    result = connection.run(lambda agency: _follow(agency, workflow_id, timeout, err_console))
    _finish(result, as_json)


@app.command()
def watch(ctx: typer.Context, workflow_id: WorkflowId, timeout: Timeout = None) -> None:
    """Show live progress (a bar and the current phase) until the crisis ends, then its result."""
    connection: Connection = ctx.obj
    result = connection.run(lambda agency: _follow(agency, workflow_id, timeout, out, lines=True))
    _finish(result, as_json=False)


@app.command()
def cancel(ctx: typer.Context, workflow_id: WorkflowId) -> None:
    """Cancel a running crisis: stop its running phase, skip the rest, compensate completed phases."""
    connection: Connection = ctx.obj
    connection.run(lambda agency: agency.cancel_crisis(workflow_id))
    say(f"Cancellation requested for {workflow_id}; follow it with: liara watch {workflow_id}")


@app.command()
def approve(
    ctx: typer.Context,
    workflow_id: WorkflowId,
    phase_id: Annotated[str, typer.Argument(help="The phase that waits for approval")],
    by: Annotated[str | None, typer.Option(help="Who approves (recorded). Default: your user name")] = None,
    timeout: WorkerTimeout = WORKER_TIMEOUT_SECONDS,
) -> None:
    """Approve a phase that requires approval, so it runs."""
    connection: Connection = ctx.obj
    approver = by or getpass.getuser()
    connection.run(lambda agency: agency.approve_phase(workflow_id, phase_id, approved_by=approver, timeout=timeout))
    say(f"Phase {phase_id} of {workflow_id} approved by {approver}")


@app.command()
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
    connection.run(
        lambda agency: agency.reject_phase(workflow_id, phase_id, rejected_by=rejecter, reason=reason, timeout=timeout)
    )
    say(f"Phase {phase_id} of {workflow_id} rejected by {rejecter}")


@app.command("add-phases")
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

    async def add(agency: LiaraTemporalAgency) -> dict[str, Any]:
        if missions_file:
            missions = _missions_from_file(missions_file)
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

    progress = connection.run(add)
    if as_json:
        _print_json(progress)
    else:
        say(f"Crisis workflow {workflow_id} now has {len(progress['phases'])} phases:")
        out.print(_phase_table(progress["phases"]))


@app.command("list")
def list_crises(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option(help="Only crises against this target")] = None,
    status_filter: Annotated[
        str | None, typer.Option("--status", help=f"Only crises in this state: {', '.join(CRISIS_STATUSES)}")
    ] = None,
    initiated_by: Annotated[str | None, typer.Option(help="Only crises started by this user")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List crises, newest first, from the CrisisTarget / CrisisStatus / CrisisInitiatedBy search attributes."""
    connection: Connection = ctx.obj
    rows = connection.run(
        lambda agency: agency.list_crises(target=target, status=status_filter, initiated_by=initiated_by, limit=limit)
    )
    if as_json:
        _print_json(rows)
        return
    if rows:
        out.print(_crisis_table(rows))
    else:
        say("No crises match.")


@app.command()
def doctor(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check the server, namespace, search attributes, workers, backlog and local setup; say what to fix.

    Exit 0 when every check passes, 1 otherwise.
    """
    connection: Connection = ctx.obj
    checks = connection.run(diagnose)
    if as_json:
        _print_json([check.as_dict() for check in checks])
    else:
        _print_checks(checks)
    if not all(check.ok for check in checks):
        raise typer.Exit(EXIT_ERROR)


#: Beyond this the benchmark client, not the worker, is what gets measured.
MAX_SWEEP_CONCURRENCY = 1000


def _counts(text: str, maximum: int) -> tuple[int, ...]:
    """``"1,10,50"`` as ``(1, 10, 50)``; an empty text is no sweep."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of whole numbers, e.g. 1,10,50") from None
    if any(count < 1 or count > maximum for count in counts):
        raise typer.BadParameter(f"each value must be between 1 and {maximum}, not {text!r}")
    return counts


@app.command()
def bench(
    ctx: typer.Context,
    crises: Annotated[int, typer.Option(min=1, help="Runs per side under load (N)")] = 200,
    phases: Annotated[int, typer.Option(min=1, max=1000, help="Phases per crisis (P)")] = 4,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs in flight at once (C)")] = 50,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Worker processes per side")] = 1,
    single_runs: Annotated[int, typer.Option(min=2, help="Runs one after another for single-run latency")] = 20,
    rounds: Annotated[
        int, typer.Option(min=1, help="Rounds in which the two sides take turns; ratios are the rounds' median")
    ] = 3,
    output_dir: Annotated[Path, typer.Option(help="Where the JSON figures (and PNG plot) go")] = Path("bench-results"),
    sweep_concurrency: Annotated[
        str, typer.Option(help="Then throughput at each of these concurrencies, at P phases ('' for none)")
    ] = "1,10,50",
    sweep_phases: Annotated[
        str, typer.Option(help="Then throughput at each of these phase counts, at concurrency C ('' for none)")
    ] = "1,4,16",
    sweep_runs: Annotated[int, typer.Option(min=2, help="Runs per side at each sweep point")] = 60,
    gate: Annotated[
        int | None, typer.Option(min=1, help="Instead: worker RSS with this many crises waiting at an approval gate")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Measure crises against a bare workflow of as many no-op activities, on the same server.

    Uses the configured server; on the default address it starts the embedded one if needed.
    The plot shows the latency distribution and throughput against concurrency and against P.
    With --gate N it measures instead how much memory a worker needs to hold N open crises.
    """
    plan = BenchPlan(
        crises,
        phases,
        concurrency,
        workers,
        single_runs,
        rounds,
        sweep_concurrency=_counts(sweep_concurrency, MAX_SWEEP_CONCURRENCY),
        sweep_phases=_counts(sweep_phases, MAX_PHASES),
        sweep_runs=sweep_runs,
    )
    connection: Connection = ctx.obj
    settings = LiaraTemporalAgency(**connection.options).settings
    if settings.address == DEFAULT_ADDRESS and not EmbeddedServer().answers():
        say("Starting the embedded Temporal server...", err_console)
        try:
            EmbeddedServer().start()
        except LiaraError as err:
            say(f"Error: {err}", err_console)
            raise typer.Exit(EXIT_ERROR) from None
    if gate is not None:

        async def measure_gate(agency: LiaraTemporalAgency) -> dict[str, Any]:
            with Progress(console=err_console, transient=True) as progress:
                return await measure_gate_memory(agency.settings, gate, progress)

        figures = connection.run(measure_gate)
        if as_json:
            _print_json(figures)
        else:
            say(
                f"{figures['gated_crises']} crises waiting at an approval gate: "
                f"worker RSS {figures['worker_rss_mib']} MiB (idle {figures['worker_rss_idle_mib']} MiB, "
                f"peak {figures['worker_peak_rss_mib']} MiB)"
            )
        return

    async def measure(agency: LiaraTemporalAgency) -> dict[str, Any]:
        with Progress(console=err_console, transient=True) as progress:
            return await run_bench(agency.settings, plan, progress)

    results = connection.run(measure)
    files = write_results(results, output_dir)
    if as_json:
        _print_json(results)
        return
    liara, baseline, ratios = results["liara"], results["baseline"], results["ratios"]
    rows: list[tuple[object, ...]] = [
        ("runs/s under load", baseline["runs_per_second"], liara["runs_per_second"], ratios["throughput"]),
        ("phases/s under load", baseline["phases_per_second"], liara["phases_per_second"], ""),
    ]
    for label, key, ratio in (
        ("single run", "single_latency_ms", "single_p50_latency"),
        ("under load", "load_latency_ms", "load_p50_latency"),
    ):
        for cut in ("p50", "p95", "p99"):
            rows.append(
                (f"{label} {cut} ms", baseline[key][cut], liara[key][cut], ratios[ratio] if cut == "p50" else "")
            )
    rows.append(("worker CPU s under load", baseline["worker_cpu_seconds"], liara["worker_cpu_seconds"], ratios["cpu"]))
    rows.append(("worker peak RSS MiB", baseline["worker_peak_rss_mib"], liara["worker_peak_rss_mib"], ""))
    say(
        f"{plan.crises} runs of {plan.phases} phases at concurrency {plan.concurrency}, "
        f"{plan.workers} worker process(es) per side, {plan.rounds} round(s), server {results['server']}; "
        "runs/s and CPU are the median round's, ratios the median of the rounds' ratios"
    )
    out.print(table_of(("", "baseline", "liara", "liara / baseline"), rows))
    if len(results["rounds"]) > 1:
        headers = ("round", "first", "baseline runs/s", "liara runs/s", "ratio", "single p50 ratio")
        per_round = [
            (
                entry["round"],
                entry["first"],
                entry["baseline_runs_per_second"],
                entry["liara_runs_per_second"],
                entry["throughput_ratio"],
                entry["single_p50_ratio"],
            )
            for entry in results["rounds"]
        ]
        out.print(table_of(headers, per_round))
    if results["sweeps"]:
        headers = ("sweep", "P", "C", "baseline runs/s", "liara runs/s", "liara / baseline")
        sweeps = [
            (
                point["sweep"],
                point["phases"],
                point["concurrency"],
                point["baseline_runs_per_second"],
                point["liara_runs_per_second"],
                point["throughput_ratio"],
            )
            for point in results["sweeps"]
        ]
        out.print(table_of(headers, sweeps))
    say("Written: " + ", ".join(str(path) for path in files))


@app.command()
def setup(ctx: typer.Context) -> None:
    """Register the crisis search attributes on the namespace (once per cluster or namespace)."""
    connection: Connection = ctx.obj
    added = connection.run(lambda agency: agency.register_search_attributes())
    say(f"Registered: {', '.join(added)}" if added else "The crisis search attributes are already registered.")


@app.command("codec-server")
def codec_server(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port)")] = 8081,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    ui_origin: Annotated[
        list[str] | None,
        typer.Option(help="Web UI origin allowed by CORS (repeatable). Default: http://localhost:8233"),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Host name clients reach the server by, besides localhost, 127.0.0.1, [::1] and --host "
            "(repeatable); requests with any other Host header are refused"
        ),
    ] = None,
) -> None:
    """Serve POST /encode and /decode with the configured encryption keys, for the Web UI's codec endpoint.

    Every request needs `Authorization: Bearer <token>` with a token from LIARA_CODEC_SERVER_TOKENS
    (comma-separated) or LIARA_CODEC_SERVER_TOKEN_FILE (one per line).
    """
    from app.temporal.codec import configured_codec
    from app.temporal.codec_server import DEFAULT_UI_ORIGIN, serve, tokens_from_environment

    try:
        codec = configured_codec()
        tokens = tokens_from_environment() if codec is not None else ()
    except LiaraError as err:
        err_console.print(f"Error: {err}", markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    if codec is None:
        err_console.print(
            "Error: No encryption keys are configured: set LIARA_ENCRYPTION_KEYS or LIARA_ENCRYPTION_KEY_FILE.",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(EXIT_ERROR)
    serve(
        codec,
        host=host,
        port=port,
        ui_origins=ui_origin or [DEFAULT_UI_ORIGIN],
        tokens=tokens,
        allowed_hosts=allowed_host or [],
    )


@app.command("codec-key")
def codec_key(
    key_id: Annotated[str | None, typer.Argument(help="Id of the new key. Default: key-<random hex>")] = None,
) -> None:
    """Print a new random encryption key line, `id:<base64 of 32 bytes>`, for LIARA_ENCRYPTION_KEYS or a key file."""
    from app.temporal.codec import new_key_line

    try:
        print(new_key_line(key_id))
    except LiaraError as err:
        err_console.print(f"Error: {err}", markup=False, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None


def main() -> None:
    run_and_exit(app)


if __name__ == "__main__":
    main()

"""The ``liara`` command line (also ``python cognition/liara/cli.py``).

Exit codes: 0 success, 1 an error you can fix (the message says how), 2 a usage error,
3 the crisis finished but did not succeed.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from app.temporal.client import run_and_exit
from app.temporal.errors import CrisisFailedError, LiaraError
from app.temporal.worker import AddressOption, NamespaceOption, ProfileOption, TaskQueueOption
from cognition.liara.agency import LiaraTemporalAgency, missions_from_actions
from cognition.liara.worker import liara_worker_command

EXIT_ERROR = 1
EXIT_CRISIS_UNSUCCESSFUL = 3
#: Seconds between progress polls while waiting on a terminal.
PROGRESS_POLL_SECONDS = 1.0

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
T = TypeVar("T")


class Connection:
    """Connection options given before the command; turned into an agency per command."""

    def __init__(self, address: str | None, namespace: str | None, task_queue: str | None, profile: str | None):
        self.options = {"temporal_host": address, "namespace": namespace, "task_queue": task_queue, "profile": profile}

    def run(self, ctx_fn: Callable[[LiaraTemporalAgency], Awaitable[T]]) -> T:
        async def with_agency() -> T:
            async with LiaraTemporalAgency(**self.options) as agency:
                return await ctx_fn(agency)

        try:
            return asyncio.run(with_agency())
        except CrisisFailedError as err:
            err_console.print(f"Error: {err}", markup=False, highlight=False)
            raise typer.Exit(EXIT_CRISIS_UNSUCCESSFUL) from None
        except LiaraError as err:
            err_console.print(f"Error: {err}", markup=False, highlight=False)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            err_console.print("Interrupted; the crisis goes on in Temporal.")
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
    out.print_json(json.dumps(value)) if out.is_terminal else print(json.dumps(value, indent=2))


def _phase_table(phases: list[dict[str, Any]]) -> Table:
    table = Table("phase", "agent", "action", "status", "attempts", "error", box=None)
    for phase in phases:
        table.add_row(
            phase["phase_id"],
            phase["agent_id"],
            phase["action"],
            phase["status"],
            "" if phase.get("attempts") is None else str(phase["attempts"]),
            phase.get("error") or "",
        )
    return table


def _print_result(result: dict[str, Any]) -> None:
    summary = result["summary"]
    out.print(f"Crisis {result['crisis_id']} on {result['target']}: {result['status']}", highlight=False)
    out.print(_phase_table(result["phases"]))
    out.print(
        f"Success: {result['success']} ({summary['completed_phases']} of {summary['total_phases']} phases completed, "
        f"{summary['failed_phases']} failed)",
        highlight=False,
    )
    if result.get("record_path"):
        out.print(f"Record: {result['record_path']}", highlight=False, soft_wrap=True)


async def _wait_with_progress(agency: LiaraTemporalAgency, workflow_id: str, timeout: float | None) -> dict[str, Any]:
    """Wait for the result; on a terminal, show the phase the crisis is on while waiting."""
    waiting = asyncio.ensure_future(agency.wait_for_crisis_completion(workflow_id, timeout))
    if not err_console.is_terminal:
        return await waiting
    with err_console.status(f"Waiting for {workflow_id}") as spinner:
        while not waiting.done():
            status = await agency.get_crisis_status(workflow_id)
            if status["status"] == "running":
                summary = status.get("summary") or {}
                spinner.update(
                    f"{workflow_id}: phase {status.get('current_phase') or '-'} "
                    f"({summary.get('completed_phases', 0) + summary.get('failed_phases', 0)}"
                    f"/{summary.get('total_phases', '?')} done)"
                )
            await asyncio.wait([waiting], timeout=PROGRESS_POLL_SECONDS)
    return await waiting


def _finish(result: dict[str, Any], as_json: bool) -> None:
    _print_json(result) if as_json else _print_result(result)
    if not result["success"]:
        raise typer.Exit(EXIT_CRISIS_UNSUCCESSFUL)


@app.command()
def trigger(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The target member, e.g. target-alpha")],
    actions: Annotated[
        list[str],
        typer.Argument(help="One phase per action, run in this order, e.g. recon secure extract cleanup"),
    ],
    crisis_id: Annotated[
        str | None, typer.Option(help="Your own crisis id (letters, digits, . _ -); never reused. Default: generated")
    ] = None,
    initiated_by: Annotated[str | None, typer.Option(help="Who starts the crisis. Default: your user name")] = None,
    max_attempts: Annotated[int | None, typer.Option(min=1, help="Attempts per phase (default 3)")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the result and print it")] = False,
    timeout: Annotated[
        float | None, typer.Option(min=0, help="With --wait: give up waiting after this many seconds")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """Start a crisis with one phase per ACTION against TARGET and print its workflow id."""
    connection: Connection = ctx.obj

    async def start(agency: LiaraTemporalAgency) -> tuple[str, dict[str, Any] | None]:
        workflow_id = await agency.trigger_crisis_response(
            target_member=target,
            missions=missions_from_actions(target, actions),
            initiated_by=initiated_by or getpass.getuser(),
            crisis_id=crisis_id,
            retry=None if max_attempts is None else {"maximum_attempts": max_attempts},
        )
        if not as_json:
            print(workflow_id, flush=True)
            err_console.print(
                f"Started crisis on {target} with {len(actions)} phases. Follow it with: liara status {workflow_id}",
                highlight=False,
            )
        result = await _wait_with_progress(agency, workflow_id, timeout) if wait else None
        return workflow_id, result

    workflow_id, result = connection.run(start)
    if result is not None:
        if as_json:
            result = {"workflow_id": workflow_id, **result}
        _finish(result, as_json)
    elif as_json:
        _print_json({"workflow_id": workflow_id})


@app.command()
def status(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The id printed by `liara trigger`")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """Show where a crisis stands (never waits): its state, current phase and every phase so far."""
    connection: Connection = ctx.obj
    report = connection.run(lambda agency: agency.get_crisis_status(workflow_id))
    if as_json:
        _print_json(report)
        return
    out.print(f"Crisis workflow {workflow_id}: {report['status']}", highlight=False)
    if report["status"] == "running":
        if "note" in report:
            out.print(report["note"], highlight=False)
        else:
            out.print(f"Stage: {report['stage']}; current phase: {report['current_phase'] or '-'}", highlight=False)
            out.print(_phase_table(report["phases"]))
    elif "result" in report:
        _print_result(report["result"])
    else:
        out.print(report.get("error", ""), highlight=False)


@app.command()
def wait(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The id printed by `liara trigger`")],
    timeout: Annotated[float | None, typer.Option(min=0, help="Give up waiting after this many seconds")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts")] = False,
) -> None:
    """Wait until a crisis finishes and print its result (exit 3 if a phase failed)."""
    connection: Connection = ctx.obj
    result = connection.run(lambda agency: _wait_with_progress(agency, workflow_id, timeout))
    _finish(result, as_json)


def main() -> None:
    run_and_exit(app)


if __name__ == "__main__":
    main()

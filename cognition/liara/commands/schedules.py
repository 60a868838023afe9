"""``liara schedule``: crises on a timetable (Temporal Schedules)."""

from __future__ import annotations

import getpass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from app.temporal.validation import InvalidFieldsError, Location
from cognition.liara import schedules
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.commands.connection import Connection
from cognition.liara.commands.crises import MaxParallel, as_flags, missions_from_file, parse_inputs
from cognition.liara.commands.options import JsonFlag, Priority
from cognition.liara.commands.output import out, print_json, say, table_of
from cognition.liara.playbooks import SUFFIXES, find, load

schedule_app = typer.Typer(
    no_args_is_help=True,
    help="Crises on a timetable: create a schedule from actions, a missions file or a playbook, then list, "
    "describe, pause, unpause, trigger or delete it.",
)

ScheduleName = Annotated[str, typer.Argument(help="The schedule's name (letters, digits, . _ -)")]


@schedule_app.command()
def create(
    ctx: typer.Context,
    name: ScheduleName,
    target: Annotated[str | None, typer.Argument(help="The target member (with ACTIONS)")] = None,
    actions: Annotated[list[str] | None, typer.Argument(help="One phase per action, in this order")] = None,
    cron: Annotated[
        str | None,
        typer.Option(
            help='A cron expression of five fields (minute hour day-of-month month day-of-week), e.g. "0 3 * * *" '
            "(every day at 03:00 UTC), or @hourly, @daily, @weekly, @monthly, @yearly"
        ),
    ] = None,
    every: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Instead of --cron: every this many seconds")
    ] = None,
    missions_file: Annotated[Path | None, typer.Option(help="JSON list of phases instead of ACTIONS")] = None,
    playbook: Annotated[str | None, typer.Option(help="A playbook file or name instead of TARGET and ACTIONS")] = None,
    input_values: Annotated[
        list[str] | None, typer.Option("--input", metavar="NAME=VALUE", help="A playbook input (repeatable)")
    ] = None,
    overlap: Annotated[
        schedules.Overlap, typer.Option(help="When a run is due while the last one runs: skip it (the default), ...")
    ] = schedules.Overlap.SKIP,
    initiated_by: Annotated[
        str | None, typer.Option(help="Who the crises are started by. Default: your user name")
    ] = None,
    max_parallel: MaxParallel = None,
    priority: Priority = None,
    webhook: Annotated[
        list[str] | None,
        typer.Option(
            help="Tell this webhook (a webhooks.NAME table of liara.toml here and where notifications are delivered) "
            "of each crisis's approvals needed, failed phases and end (repeatable)"
        ),
    ] = None,
) -> None:
    """Create a schedule that starts a crisis on --cron or --every, each run a crisis of its own, and
    print its next runs.
    """
    connection: Connection = ctx.obj
    spec = connection.guard(lambda: schedules.spec_of(cron, every))
    if playbook is not None:
        if target or actions or missions_file:
            raise typer.BadParameter("a playbook names its own target and phases: leave them out", param_hint="TARGET")
        path = Path(playbook) if Path(playbook).suffix in SUFFIXES else connection.guard(lambda: find(playbook))
        fields: dict[str, Any] = connection.guard(lambda: load(path).render(parse_inputs(input_values or [])))
    elif target is None or bool(actions) == bool(missions_file):
        raise typer.BadParameter("give TARGET with ACTIONS or --missions-file, or --playbook", param_hint="TARGET")
    else:
        missions = missions_from_file(missions_file) if missions_file else missions_from_actions(target, actions or [])
        fields = {"target_member": target, "missions": missions}
    chosen = (("max_parallel", max_parallel), ("priority", priority), ("webhooks", webhook))
    fields.update({name: value for name, value in chosen if value is not None})

    # A field the request refuses is named by the option or argument that gave it, as trigger does.
    given: dict[Location, object] = {
        ("initiated_by",): initiated_by,
        ("max_parallel",): max_parallel,
        ("priority",): priority,
    }
    flags = as_flags(given, target=playbook is None and not missions_file, webhooks=len(webhook or []))

    async def create_it(agency: LiaraTemporalAgency) -> list[datetime]:
        client = await agency.connect()
        try:
            return await schedules.create(
                client,
                name,
                spec,
                task_queue=agency.settings.task_queue,
                initiated_by=initiated_by or getpass.getuser(),
                overlap=overlap,
                **fields,
            )
        except InvalidFieldsError as err:
            raise err.reworded(flags) from None

    upcoming = connection.run(create_it)
    say(f"Schedule {name} created; its crises: liara list --schedule {name}")
    if upcoming:
        say(f"Next runs: {', '.join(moment.isoformat() for moment in upcoming[:3])}")
    else:
        say(f"No run is due: the timetable matches no time to come (start one with `liara schedule trigger {name}`).")


@schedule_app.command("list")
def list_schedules(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The schedules that start crises, with their next and last runs."""
    connection: Connection = ctx.obj
    rows = connection.run(lambda agency: _with_client(agency, schedules.listed))
    if as_json:
        print_json(rows)
    elif rows:
        out.print(
            table_of(
                ("schedule", "paused", "next run", "last run"),
                [(r["name"], "yes" if r["paused"] else "no", r["next_run"], r["last_run"]) for r in rows],
            )
        )
    else:
        say("No schedules start crises.")


@schedule_app.command()
def describe(ctx: typer.Context, name: ScheduleName, as_json: JsonFlag = False) -> None:
    """A schedule's timetable, overlap policy, state and runs."""
    connection: Connection = ctx.obj
    about = connection.run(lambda agency: _with_client(agency, schedules.described, name))
    if as_json:
        print_json(about)
        return
    timetable = ", ".join([*(f"cron {c}" for c in about["cron"]), *(f"every {s:g} s" for s in about["every_seconds"])])
    say(f"Schedule {name}: {timetable}; overlap {about['overlap']}; {'paused' if about['paused'] else 'active'}")
    say(f"Runs so far: {about['runs']} ({about['skipped_overlapping']} skipped while one ran)")
    for run in about["recent"]:
        say(f"  {run['started_at']}  {run['workflow_id']}")
    if about["next_runs"]:
        say(f"Next: {', '.join(about['next_runs'][:3])}")


def _simple(verb: str, act: Any, done: str) -> Any:
    def command(ctx: typer.Context, name: ScheduleName) -> None:
        connection: Connection = ctx.obj
        connection.run(lambda agency: _with_client(agency, act, name))
        say(f"Schedule {name} {done}.")

    command.__doc__ = verb
    return command


schedule_app.command("pause")(
    _simple("Pause a schedule: no crisis starts until it is unpaused.", schedules.pause, "paused")
)
schedule_app.command("unpause")(_simple("Let a paused schedule start crises again.", schedules.unpause, "unpaused"))
schedule_app.command("trigger")(_simple("Start a crisis of the schedule now.", schedules.trigger, "triggered"))
schedule_app.command("delete")(_simple("Delete a schedule (its crises stay).", schedules.delete, "deleted"))


async def _with_client(agency: LiaraTemporalAgency, act: Any, *args: Any) -> Any:
    return await act(await agency.connect(), *args)

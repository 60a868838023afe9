"""``liara record show|list``: crisis records from the record store configured on this machine."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from app.temporal.identity import WORKFLOW_ID_PREFIX, scheduled_crisis_id, scheduled_workflow_id
from cognition.liara import crisis_records
from cognition.liara.commands.connection import Connection
from cognition.liara.commands.options import JsonFlag
from cognition.liara.commands.output import out, print_json, print_phases, say, table_of

#: A run of a schedule, as the help of ``record show`` shows one (the time is when it was due).
_SCHEDULED_RUN = f"{scheduled_workflow_id('nightly')}-2026-12-02T03:00:00Z"

record_app = typer.Typer(
    no_args_is_help=True,
    help="Read crisis records from the record store this machine's workers use (files or PostgreSQL).",
)


@record_app.command()
def show(
    crisis_id: Annotated[
        str,
        typer.Argument(
            help=f"The crisis id, as `liara record list` shows it: the workflow id without `{WORKFLOW_ID_PREFIX}`; "
            "for a crisis a schedule started, the time it was due is written with '-' for ':' "
            f"(workflow {_SCHEDULED_RUN}, crisis {scheduled_crisis_id(_SCHEDULED_RUN)})"
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Print a crisis record: its phases as written so far, or the final record."""
    record = Connection.guard(lambda: asyncio.run(crisis_records.read_record(crisis_id)))
    if as_json:
        print_json(record)
        return
    summary = record["summary"]
    say(f"Crisis {record['crisis_id']} on {record['target']}: {record['status']}")
    say(f"Started {record['started_at']}; completed {record['completed_at'] or '-'}; run {record.get('run_id')}")
    print_phases(record["phases"], record.get("compensations"), out)
    say(
        f"{summary['completed_phases']} of {summary['total_phases']} phases completed, "
        f"{summary['failed_phases']} failed"
    )
    for phase in record["phases"]:
        if phase.get("output") is not None:
            say(f"Output of {phase['phase_id']}: {json.dumps(phase['output'])}")


@record_app.command("list")
def list_records(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many records")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List crisis records, the most recently created or finalized first."""
    rows = Connection.guard(lambda: asyncio.run(crisis_records.list_records(limit)))
    if as_json:
        print_json(rows)
    elif rows:
        out.print(table_of(("crisis id", "target", "status", "phases", "started", "completed"), _rows(rows)))
    else:
        say("No crisis records.")


def _rows(rows: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    return [
        (
            row["crisis_id"],
            row["target"],
            row["status"],
            f"{row['summary']['completed_phases']}/{row['summary']['total_phases']}",
            row["started_at"],
            row["completed_at"] or "",
        )
        for row in rows
    ]

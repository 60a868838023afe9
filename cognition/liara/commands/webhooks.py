"""``liara webhook``: a crisis's pending webhook deliveries, and ending those that will never succeed."""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer

from cognition.liara import webhook_deliveries
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.commands.connection import Connection
from cognition.liara.commands.options import JsonFlag, WorkflowId
from cognition.liara.commands.output import out, print_json, say, table_of

webhook_app = typer.Typer(
    no_args_is_help=True,
    help="A crisis's webhook deliveries that are still retried: list them, or cancel those that will never succeed.",
)

Webhooks = Annotated[
    list[str] | None, typer.Option("--webhook", metavar="NAME", help="Only deliveries to this webhook (repeatable)")
]


@webhook_app.command("list")
def list_deliveries(
    ctx: typer.Context, workflow_id: WorkflowId, webhook: Webhooks = None, as_json: JsonFlag = False
) -> None:
    """The crisis's webhook deliveries still under way, with the attempt each is at and why the last failed."""
    connection: Connection = ctx.obj

    async def listed(agency: LiaraTemporalAgency) -> list[dict[str, Any]]:
        return await webhook_deliveries.pending(await agency.connect(), agency.settings, workflow_id, webhook)

    rows = connection.run(listed)
    if as_json:
        print_json(rows)
    elif rows:
        out.print(
            table_of(
                ("event", "webhook", "attempt", "last failure"),
                [(r["event_id"], r["webhook"], r["attempt"], r["last_failure"] or "") for r in rows],
            )
        )
    else:
        say(f"No webhook deliveries of {workflow_id}{_to(webhook)} are under way.")


@webhook_app.command()
def cancel(ctx: typer.Context, workflow_id: WorkflowId, webhook: Webhooks = None, as_json: JsonFlag = False) -> None:
    """Stop the crisis's webhook deliveries still retried (to --webhook only): each ends at once, undelivered."""
    connection: Connection = ctx.obj

    async def cancelled(agency: LiaraTemporalAgency) -> list[dict[str, Any]]:
        client = await agency.connect()
        return await webhook_deliveries.cancel(
            client, agency.settings, workflow_id, webhook, cancelled_by=getpass.getuser()
        )

    rows = connection.run(cancelled)
    if as_json:
        print_json(rows)
    elif rows:
        count = "1 webhook delivery" if len(rows) == 1 else f"{len(rows)} webhook deliveries"
        say(f"Cancelled {count} of {workflow_id}:")
        for row in rows:
            failed = f", last failure: {row['last_failure']}" if row["last_failure"] else ""
            say(f"  event {row['event_id']} to {row['webhook']} (attempt {row['attempt']}{failed})")
    else:
        say(f"No webhook deliveries of {workflow_id}{_to(webhook)} are under way: nothing to cancel.")


def _to(webhooks: list[str] | None) -> str:
    return f" to {', '.join(webhooks)}" if webhooks else ""

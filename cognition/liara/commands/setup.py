"""Commands that prepare and check a namespace and this machine: ``setup`` and ``doctor``."""

from __future__ import annotations

import asyncio

import typer

from app.temporal.records import configured_record_store
from cognition.liara.commands.connection import EXIT_ERROR, Connection
from cognition.liara.commands.options import JsonFlag
from cognition.liara.commands.output import print_checks, print_json, say
from cognition.liara.doctor import diagnose


def setup(ctx: typer.Context) -> None:
    """Register the crisis search attributes on the namespace and create the crisis record tables
    when records go to PostgreSQL (once per cluster or namespace, and per record database).
    """
    connection: Connection = ctx.obj
    added = connection.run(lambda agency: agency.register_search_attributes())
    say(f"Registered: {', '.join(added)}" if added else "The crisis search attributes are already registered.")
    prepared = Connection.guard(lambda: asyncio.run(_prepare_record_store()))
    if prepared:
        say(prepared)


async def _prepare_record_store() -> str | None:
    async with configured_record_store() as store:
        return await store.prepare()


def doctor(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check the server, namespace, search attributes, workers, backlog and local setup; say what to fix.

    Exit 0 when every check passes, 1 otherwise.
    """
    connection: Connection = ctx.obj
    checks = connection.run(diagnose)
    if as_json:
        print_json([check.as_dict() for check in checks])
    else:
        print_checks(checks)
    if not all(check.ok for check in checks):
        raise typer.Exit(EXIT_ERROR)

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
from cognition.liara.commands.output import out, print_json, print_phases, print_usage, say, table_of

#: The most of a tool's result, or of a tool call's arguments, a transcript shows (the record has it all).
SHOWN_TOOL_CHARS = 500
#: The most of any other message a transcript shows (a task carries the outputs it reads).
SHOWN_MESSAGE_CHARS = 2000
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
    print_usage(
        record["phases"], record.get("compensations"), record.get("usage"), out, running=record["status"] == "running"
    )
    for phase in record["phases"]:
        if phase.get("output") is not None:
            say(f"Output of {phase['phase_id']}: {json.dumps(phase['output'])}")
    for kind, entries in (("phase", record["phases"]), ("compensation", record.get("compensations") or [])):
        for entry in entries:
            if entry.get("transcript"):
                say("")
                for line in transcript_lines(f"{kind} {entry['phase_id']}", entry["transcript"]):
                    say(line)


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


def transcript_lines(named: str, transcript: list[Any]) -> list[str]:
    """A language-model agent's conversation, readable: each message as ``role: text``, each tool
    call the model made as ``assistant calls TOOL [CALL_ID]: ARGUMENTS`` and each result as
    ``tool TOOL [CALL_ID]: RESULT``; a message's further lines indented, and long texts cut
    (``liara record show --json`` has them whole).
    """
    lines = [f"Transcript of {named} ({len(transcript)} message{'' if len(transcript) == 1 else 's'}):"]
    tools: dict[str, str] = {}  # tool call id: tool name
    for message in transcript:
        if not isinstance(message, dict):
            lines += _indented("?", json.dumps(message), SHOWN_MESSAGE_CHARS)
            continue
        role = str(message.get("role") or "?")
        if role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            name = tools.get(call_id, "?")
            lines += _indented(f"tool {name} [{call_id}]", _text(message.get("content")), SHOWN_TOOL_CHARS)
            continue
        content = _text(message.get("content"))
        calls = message.get("tool_calls") or []
        if content or not calls:
            lines += _indented(role, content, SHOWN_MESSAGE_CHARS)
        for call in calls if isinstance(calls, list) else []:
            function = (call.get("function") if isinstance(call, dict) else None) or {}
            call_id, name = str(call.get("id") or ""), str(function.get("name") or "?")
            tools[call_id] = name
            lines += _indented(f"{role} calls {name} [{call_id}]", _text(function.get("arguments")), SHOWN_TOOL_CHARS)
    return lines


def _text(content: Any) -> str:
    """A message's content as text: a string as it is, text parts joined, anything else as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) and "text" in part for part in content):
        return "".join(str(part["text"]) for part in content)
    return json.dumps(content)


def _indented(label: str, text: str, most: int) -> list[str]:
    """``  LABEL: TEXT``, its text cut to ``most`` characters, its further lines indented under it."""
    if len(text) > most:
        text = f"{text[:most]}… (cut: {len(text) - most} more characters)"
    first, *rest = text.splitlines() or [""]
    return [f"  {label}: {first}".rstrip(), *(f"    {line}".rstrip() for line in rest)]

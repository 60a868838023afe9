"""``liara rerun`` and ``liara diff``: start a crisis again from one of its phases, and compare two crises."""

from __future__ import annotations

import asyncio
import getpass
import json
from typing import Annotated, Any

import typer
from pydantic import JsonValue

from cognition.liara import reruns
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.commands.connection import Connection
from cognition.liara.commands.crises import _finish, _follow
from cognition.liara.commands.options import JsonFlag, Timeout
from cognition.liara.commands.output import err_console, print_json, say, usage_text

#: The most of a value (an output, params, a tool call's arguments) a comparison shows; --json has it whole.
SHOWN_VALUE_CHARS = 300


def _overrides(given: list[str] | None) -> dict[str, JsonValue]:
    overrides: dict[str, JsonValue] = {}
    for text in given or []:
        try:
            path, value = reruns.parse_override(text)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="'--with'") from None
        overrides[path] = value
    return overrides


def rerun(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The crisis to rerun: the id printed by `liara trigger`")],
    from_phase: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="PHASE_ID",
            help="The phase to rerun from: the phases before it (in a graph, those that do not depend on it) "
            "keep their recorded outputs and do not run again",
        ),
    ],
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            metavar="PATH=VALUE",
            help="Change the request for the rerun (repeatable): PHASE_ID.params.KEY=VALUE, PHASE_ID.action=ACTION "
            "(another executor, such as another model), inputs.NAME=VALUE; VALUE is JSON, or text where it is not",
        ),
    ] = None,
    crisis_id: Annotated[
        str | None, typer.Option(help="The rerun's own crisis id (never reused); generated if not given")
    ] = None,
    initiated_by: Annotated[str | None, typer.Option(help="Who starts the rerun. Default: your user name")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the rerun's result, showing its progress")] = False,
    timeout: Timeout = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a crisis that has ended again from one of its phases, with the same request.

    The phases before PHASE_ID are taken as completed with the outputs they had (no agent runs
    again for them): in a crisis that runs its phases in order, those that completed before it;
    in a graph, every phase that completed and does not depend on it. The new crisis's record
    says what it reruns, each reused phase's entry says where its output came from, and the
    old record lists its reruns. A crisis still running is not rerun. Compare the two with
    `liara diff`.
    """
    connection: Connection = ctx.obj
    changes = _overrides(overrides)
    who = initiated_by or getpass.getuser()

    async def start(agency: LiaraTemporalAgency) -> tuple[dict[str, Any], dict[str, Any] | None]:
        started = await agency.rerun_crisis(
            workflow_id, from_phase, overrides=changes, initiated_by=who, crisis_id=crisis_id
        )
        new_id = started["workflow_id"]
        if not as_json:
            print(new_id, flush=True)
            reused = ", ".join(started["reused"]) or "none"
            say(f"Started a rerun of {workflow_id} from phase {from_phase}; reused phases: {reused}.", err_console)
            if not started["linked"]:
                say(f"The record of {workflow_id} could not list this rerun (this machine holds none).", err_console)
            say(f"Follow it with: liara watch {new_id}; compare: liara diff {workflow_id} {new_id}", err_console)
        result = await _follow(agency, new_id, timeout, err_console, connection.options) if wait else None
        return started, result

    started, result = connection.run(start)
    if result is not None:
        _finish({**started, **result} if as_json else result, as_json)
    elif as_json:
        print_json(started)


def diff(
    first: Annotated[str, typer.Argument(metavar="WORKFLOW_ID", help="A crisis (its workflow id, or its crisis id)")],
    second: Annotated[
        str, typer.Argument(metavar="OTHER_WORKFLOW_ID", help="The crisis to compare it with (such as its rerun)")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Compare two crises phase by phase, from their records: status, params, outputs, tool calls
    and model usage. A phase a rerun reused is compared by status and output only (its agent ran
    in the crisis it came from). Reads this machine's record store; needs no Temporal server.
    """
    compared = Connection.guard(lambda: asyncio.run(reruns.diff_crises(first, second)))
    if as_json:
        print_json(compared)
        return
    for line in diff_lines(compared):
        say(line)


def diff_lines(compared: dict[str, Any]) -> list[str]:
    """A comparison (``reruns.crisis_diff``) as text: the two crises, then each phase on a line,
    each difference under it as ``first → second``.
    """
    lines = [f"First:  {_crisis(compared['first'])}", f"Second: {_crisis(compared['second'])}"]
    differing = 0
    for phase in compared["phases"]:
        a, b = phase["first"], phase["second"]
        if phase["only_in"] is not None:
            differing += 1
            side = a if phase["only_in"] == "first" else b
            lines.append(f"Phase {phase['phase_id']}: only in the {phase['only_in']} ({side['status']})")
            continue
        reused = " ".join(
            f"(reused in the {name} from {side['reused_from']})"
            for name, side in (("first", a), ("second", b))
            if side["reused_from"]
        )
        if not phase["differs"]:
            lines.append(f"Phase {phase['phase_id']}: same" + (f" {reused}" if reused else ""))
            continue
        differing += 1
        aspects = ", ".join(aspect.replace("_", " ") for aspect in phase["differs"])
        lines.append(f"Phase {phase['phase_id']}: differs in {aspects}" + (f" {reused}" if reused else ""))
        for aspect in phase["differs"]:
            lines.append(f"  {aspect.replace('_', ' ')}: {_shown(aspect, a[aspect])} → {_shown(aspect, b[aspect])}")
    usages = (compared["first"].get("usage"), compared["second"].get("usage"))
    if any(usages):
        lines.append(f"Model usage in all: {_shown('usage', usages[0])} → {_shown('usage', usages[1])}")
    total = len(compared["phases"])
    lines.append(f"{differing} of {total} phase{'' if total == 1 else 's'} differ.")
    return lines


def _crisis(header: dict[str, Any]) -> str:
    said = f"{header['workflow_id']} ({header['status']})"
    rerun_of = header.get("rerun_of")
    if rerun_of:
        said += f", a rerun of {rerun_of['workflow_id']} from phase {rerun_of['from_phase']}"
        overrides = rerun_of.get("overrides") or {}
        if overrides:
            said += " with " + ", ".join(f"{path}={json.dumps(value)}" for path, value in overrides.items())
    return said


def _shown(aspect: str, value: Any) -> str:
    if value is None:
        return "none"
    if aspect == "usage":
        return usage_text(value)
    if aspect == "status":
        return str(value)
    if aspect == "tool_calls":
        text = "; ".join(f"{call['tool']} {json.dumps(call['arguments'])}" for call in value) or "none"
    else:
        text = json.dumps(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else f"{text[:SHOWN_VALUE_CHARS]}… ({len(text)} characters)"

"""What the command line prints: messages, tables of phases and crises, results, statuses and
checks. User data (ids, errors, names, reasons) is always printed literally, never as Rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from cognition.liara.doctor import Check

out = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
for _console in (out, err_console):
    if not _console.is_terminal:
        _console.width = 500  # piped output: never cut table cells to an 80-column guess


def print_json(value: Any) -> None:
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


def phase_table(phases: list[dict[str, Any]]) -> Table:
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


def crisis_table(rows: list[dict[str, Any]]) -> Table:
    return table_of(
        ("workflow id", "target", "crisis status", "initiated by", "started"),
        [
            (row["workflow_id"], row["target"], row["crisis_status"], row["initiated_by"], row["started_at"])
            for row in rows
        ],
    )


def phase_tree(phases: list[dict[str, Any]]) -> Tree:
    """The phases of a graph: each under the first phase it depends on (the others named after it)."""
    tree = Tree(Text("phases"), guide_style="dim")
    branches: dict[str, Tree] = {}
    for phase in _dependencies_first(phases):
        depends_on = phase.get("depends_on") or []
        parent = branches.get(depends_on[0], tree) if depends_on else tree
        others = f" (also after {', '.join(depends_on[1:])})" if len(depends_on) > 1 else ""
        attempts = f", {phase['attempts']} attempt(s)" if phase.get("attempts") is not None else ""
        error = f": {phase['error']}" if phase.get("error") else ""
        label = f"{phase['phase_id']} [{phase['action']} by {phase['agent_id']}] {phase['status']}{attempts}{error}"
        branches[phase["phase_id"]] = parent.add(Text(label + others))
    return tree


def _dependencies_first(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The phases in plan order, except that each comes after the phases it depends on."""
    ids = {phase["phase_id"] for phase in phases}
    placed: set[str] = set()
    ordered: list[dict[str, Any]] = []
    waiting = list(phases)
    while waiting:
        # The first phase whose dependencies are drawn; the first one left if none is (a circle).
        ready = next(
            (
                phase
                for phase in waiting
                if all(dependency in placed or dependency not in ids for dependency in phase.get("depends_on") or ())
            ),
            waiting[0],
        )
        waiting.remove(ready)
        ordered.append(ready)
        placed.add(ready["phase_id"])
    return ordered


def print_phases(phases: list[dict[str, Any]], compensations: list[dict[str, Any]] | None, console: Console) -> None:
    graph = any(phase.get("depends_on") is not None for phase in phases)
    console.print(phase_tree(phases) if graph else phase_table(phases))
    if compensations:
        say("Compensations:", console)
        console.print(phase_table(compensations))


_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens", "model_calls")


def usage_text(usage: Mapping[str, Any]) -> str:
    """``76 tokens (60 prompt, 16 completion) in 2 model calls``: what language-model calls spent."""
    calls = usage.get("model_calls") or 0
    return (
        f"{usage.get('total_tokens') or 0} tokens ({usage.get('prompt_tokens') or 0} prompt, "
        f"{usage.get('completion_tokens') or 0} completion) in {calls} model call{'' if calls == 1 else 's'}"
    )


def print_usage(
    phases: list[dict[str, Any]],
    compensations: list[dict[str, Any]] | None,
    total: Mapping[str, Any] | None,
    console: Console,
    *,
    running: bool = False,
) -> None:
    """What each language-model agent phase (and compensation) spent, one line each, and the
    crisis's ``total``: ``so far`` while it runs, ``in all`` once it ended. Nothing for a crisis
    that ran no agent.
    """
    spent = [(f"phase {phase['phase_id']}", phase["usage"]) for phase in phases if phase.get("usage")]
    spent += [
        (f"compensation {entry['phase_id']}", entry["usage"]) for entry in compensations or [] if entry.get("usage")
    ]
    if not spent and not total:
        return
    for named, usage in spent:
        say(f"Model usage of {named}: {usage_text(usage)}", console)
    if not total:  # told by a worker of an earlier release: its phases' sum
        total = {key: sum(usage.get(key) or 0 for _, usage in spent) for key in _USAGE_KEYS}
    say(f"Model usage {'so far' if running else 'in all'}: {usage_text(total)}", console)


def print_result(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or out
    summary = result["summary"]
    say(f"Crisis {result['crisis_id']} on {result['target']}: {result['status']}", console)
    print_phases(result["phases"], result.get("compensations"), console)
    print_usage(result["phases"], result.get("compensations"), result.get("usage"), console)
    say(
        f"Success: {result['success']} ({summary['completed_phases']} of {summary['total_phases']} phases completed, "
        f"{summary['failed_phases']} failed)",
        console,
    )
    if result.get("record_path"):
        say(f"Record: {result['record_path']}", console)


def print_status(
    workflow_id: str, report: dict[str, Any], console: Console | None = None, blocked: Sequence[str] = ()
) -> None:
    """Where a crisis stands; ``blocked``: what keeps a running one from going on, each with the
    command that lets it.
    """
    console = console or out
    say(f"Crisis workflow {workflow_id}: {report['status']}", console)
    if report["status"] == "running":
        for line in blocked:
            say(line, console)
        if "note" in report:
            if report["note"] not in blocked:
                say(report["note"], console)
        else:
            say(f"Stage: {report['stage']}; current phase: {report['current_phase'] or '-'}", console)
            print_phases(report["phases"], report.get("compensations"), console)
            print_usage(report["phases"], report.get("compensations"), report.get("usage"), console, running=True)
        if "problem" in report:
            say(f"Problem: {report['problem']}", console)
    elif "result" in report:
        print_result(report["result"], console)
    else:
        say(report.get("error", ""), console)
        _print_recorded(report, console)


def _print_recorded(report: dict[str, Any], console: Console) -> None:
    """What the record of a crisis that ended without a result tells: its phases, who cancelled
    it and where the record is (or why it could not be read).
    """
    if "phases" in report:
        print_phases(report["phases"], report.get("compensations"), console)
        print_usage(report["phases"], report.get("compensations"), report.get("usage"), console)
    for request in report.get("cancel_requests", []):
        when = f"Cancel requested at {request['requested_at']} while {request['stage']}"
        if not request["obeyed"]:
            when += " (not obeyed: the crisis was winding down)"
        say(f"{when}: {request['reason']}" if request.get("reason") else when, console)
    if report.get("record_path"):
        say(f"Record: {report['record_path']}", console)
    if report.get("record_error"):
        say(f"Record not read: {report['record_error']}", console)


def print_checks(checks: list[Check], console: Console | None = None) -> None:
    console = console or out
    for check in checks:
        mark = Text("ok  ", style="green") if check.ok else Text("FAIL", style="red")
        console.print(Text.assemble(mark, f" {check.name}: {check.detail}"))
        if check.fix:
            say(f"      fix: {check.fix}", console)

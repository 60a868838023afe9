"""How the ``liara`` command line prints: user data (ids, names, errors, notes) is shown as it is,
never parsed as Rich markup or emoji codes. Rendered into a string, no server needed.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cognition.liara.commands.output import (
    crisis_table,
    phase_table,
    print_checks,
    print_phases,
    print_result,
    print_status,
    say,
)
from cognition.liara.doctor import Check

#: Text that Rich would take for markup (an unmatched closing tag raises MarkupError), styles, emoji.
TRICKY = ("see [/docs]", "[bold]x[/]", "[red]ops[/red]", "[/]", "a [link=file:///etc]b[/link]", ":thumbs_up:")


def console() -> Console:
    return Console(file=io.StringIO(), width=500)


def printed(target: Console) -> str:
    assert isinstance(target.file, io.StringIO)
    return target.file.getvalue()


def phase(phase_id: str, status: str = "failed", error: str | None = None, attempts: int | None = 1) -> dict:
    return {
        "phase_id": phase_id,
        "agent_id": f"{phase_id}-agent",
        "action": "reconnaissance",
        "status": status,
        "attempts": attempts,
        "error": error,
    }


def result(error: str) -> dict:
    return {
        "crisis_id": "crisis-1",
        "target": "target-alpha",
        "status": "completed",
        "success": False,
        "phases": [phase("recon-phase-1", error=error), phase("secure-phase-2", "completed", attempts=None)],
        "compensations": [phase("undo-recon-phase-1", error=f"compensation: {error}")],
        "summary": {"completed_phases": 1, "failed_phases": 1, "total_phases": 2},
        "record_path": "/data/[crises]/crisis-1.json",
    }


@pytest.mark.parametrize("text", TRICKY)
def test_say_prints_a_message_as_it_is(text):
    out = console()
    say(f"Phase p-1 of crisis-workflow-x rejected by {text}", out)
    assert printed(out) == f"Phase p-1 of crisis-workflow-x rejected by {text}\n"


@pytest.mark.parametrize("text", TRICKY)
def test_phase_table_cells_are_literal(text):
    out = console()
    out.print(phase_table([phase("recon-phase-1", error=f"rejected by ops: {text}"), phase("p-2", attempts=None)]))
    lines = printed(out).splitlines()
    assert lines[0].split() == ["phase", "agent", "action", "status", "attempts", "error"]
    assert lines[1].split()[:5] == ["recon-phase-1", "recon-phase-1-agent", "reconnaissance", "failed", "1"]
    assert lines[1].rstrip().endswith(f"rejected by ops: {text}")
    assert lines[2].split() == ["p-2", "p-2-agent", "reconnaissance", "failed"]


@pytest.mark.parametrize("text", TRICKY)
def test_crisis_list_cells_are_literal(text):
    rows = [
        {
            "workflow_id": "crisis-workflow-1",
            "target": "target-alpha",
            "crisis_status": "completed",
            "initiated_by": f"ops{text}",
            "started_at": "2025-01-01T00:00:00+00:00",
        },
        {
            "workflow_id": "crisis-workflow-2",
            "target": None,
            "crisis_status": None,
            "initiated_by": None,
            "started_at": "2025-01-01T00:00:01+00:00",
        },
    ]
    out = console()
    out.print(crisis_table(rows))
    lines = printed(out).splitlines()
    assert f"ops{text}" in lines[1]
    assert lines[2].split() == ["crisis-workflow-2", "2025-01-01T00:00:01+00:00"]


@pytest.mark.parametrize("text", TRICKY)
def test_a_result_prints_its_errors_and_record_path_literally(text):
    out = console()
    print_result(result(text), out)
    shown = printed(out)
    assert shown.startswith("Crisis crisis-1 on target-alpha: completed\n")
    assert shown.count(text) == 2  # the phase's error and its compensation's
    assert "Compensations:" in shown
    assert "Success: False (1 of 2 phases completed, 1 failed)" in shown
    assert shown.endswith("Record: /data/[crises]/crisis-1.json\n")


@pytest.mark.parametrize("text", TRICKY)
def test_a_status_prints_notes_problems_and_errors_literally(text):
    queued = {"status": "running", "stage": "unknown", "note": f"queued: no worker polls task queue 'q{text}'"}
    running = {
        "status": "running",
        "stage": "executing",
        "current_phase": "recon-phase-1",
        "phases": [phase("recon-phase-1", "running", attempts=None)],
        "compensations": [],
        "problem": f"log_mission_phase has failed 3 times so far: record /x/{text}.json is not valid JSON.",
    }
    ended = {"status": "cancelled", "error": f"Crisis workflow w ended as cancelled: {text}"}
    finished = {"status": "completed", "result": result(text)}
    for report, expected in (
        (queued, queued["note"]),
        (running, f"Problem: {running['problem']}"),
        (ended, ended["error"]),
        (finished, text),
    ):
        out = console()
        print_status("crisis-workflow-w", report, out)
        shown = printed(out)
        assert shown.startswith(f"Crisis workflow crisis-workflow-w: {report['status']}\n")
        assert expected in shown, shown
    out = console()
    print_status("crisis-workflow-w", running, out)
    assert "Stage: executing; current phase: recon-phase-1" in printed(out)


@pytest.mark.parametrize("text", TRICKY)
def test_a_crisis_that_ended_without_a_result_prints_its_recorded_phases_and_who_cancelled(text):
    cancelled = {
        "status": "cancelled",
        "error": "Crisis workflow crisis-workflow-w ended as cancelled: Workflow cancelled",
        "phases": [phase("recon-phase-1", "completed"), phase("secure-phase-2", "cancelled", error=text)],
        "compensations": [phase("recon-phase-1", "completed")],
        "cancel_requests": [
            {"requested_at": "2026-01-02T03:04:05Z", "stage": "executing", "obeyed": True, "reason": f"by {text}"},
            {"requested_at": "2026-01-02T03:04:06Z", "stage": "compensating", "obeyed": False, "reason": None},
        ],
        "record_path": f"/data/{text}/w.json",
    }
    out = console()
    print_status("crisis-workflow-w", cancelled, out)
    lines = printed(out).splitlines()
    assert lines[:2] == ["Crisis workflow crisis-workflow-w: cancelled", cancelled["error"]]
    assert lines[2].split() == ["phase", "agent", "action", "status", "attempts", "error"]
    assert lines[4].split()[:4] == ["secure-phase-2", "secure-phase-2-agent", "reconnaissance", "cancelled"]
    assert lines[4].rstrip().endswith(text)
    assert lines[5] == "Compensations:"
    assert lines[-3:] == [
        f"Cancel requested at 2026-01-02T03:04:05Z while executing: by {text}",
        "Cancel requested at 2026-01-02T03:04:06Z while compensating (not obeyed: the crisis was winding down)",
        f"Record: /data/{text}/w.json",
    ]

    unreadable = {"status": "terminated", "error": "ended as terminated", "record_error": f"crisis record {text}"}
    out = console()
    print_status("crisis-workflow-w", unreadable, out)
    assert printed(out).splitlines()[1:] == ["ended as terminated", f"Record not read: crisis record {text}"]


@pytest.mark.parametrize("text", TRICKY)
def test_doctor_checks_print_details_and_fixes_literally(text):
    checks = [
        Check("connection", True, f"Temporal server at host{text}:7233 answers; namespace 'default'"),
        Check("workflow workers", False, f"no worker polls 'q{text}' for workflow tasks", f"start one {text}"),
    ]
    out = console()
    print_checks(checks, out)
    assert printed(out).splitlines() == [
        f"ok   connection: Temporal server at host{text}:7233 answers; namespace 'default'",
        f"FAIL workflow workers: no worker polls 'q{text}' for workflow tasks",
        f"      fix: start one {text}",
    ]


def test_a_graph_prints_as_a_tree_of_what_runs_after_what() -> None:
    target = console()
    phases = [
        {
            "phase_id": "scan-1",
            "agent_id": "a",
            "action": "scan",
            "status": "completed",
            "attempts": 1,
            "depends_on": [],
        },
        {"phase_id": "probe-2", "agent_id": "a", "action": "probe", "status": "running", "depends_on": ["scan-1"]},
        {"phase_id": "trace-3", "agent_id": "a", "action": "trace", "status": "pending", "depends_on": ["scan-1"]},
        {
            "phase_id": "fix-4",
            "agent_id": "[b]",
            "action": "fix",
            "status": "pending",
            "depends_on": ["probe-2", "trace-3"],
        },
    ]
    print_phases(phases, None, target)
    assert printed(target).splitlines() == [
        "phases",
        "└── scan-1 [scan by a] completed, 1 attempt(s)",
        "    ├── probe-2 [probe by a] running",
        "    │   └── fix-4 [fix by [b]] pending (also after trace-3)",
        "    └── trace-3 [trace by a] pending",
    ]


def test_a_phase_listed_before_what_it_depends_on_is_still_drawn_under_it() -> None:
    target = console()
    phases = [
        {"phase_id": "b", "agent_id": "a", "action": "probe", "status": "pending", "depends_on": ["a"]},
        {"phase_id": "c", "agent_id": "a", "action": "fix", "status": "pending", "depends_on": ["b", "a"]},
        {"phase_id": "a", "agent_id": "a", "action": "scan", "status": "running", "depends_on": []},
        {"phase_id": "d", "agent_id": "a", "action": "note", "status": "pending", "depends_on": []},
    ]
    print_phases(phases, None, target)
    assert printed(target).splitlines() == [
        "phases",
        "├── a [scan by a] running",
        "│   └── b [probe by a] pending",
        "│       └── c [fix by a] pending (also after a)",
        "└── d [note by a] pending",
    ]

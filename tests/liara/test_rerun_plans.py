"""What a rerun reuses and changes, and how a comparison reads two records: plain functions, no
server (``test_reruns`` runs them end to end).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from app.temporal.models import CrisisRequest, CrisisSnapshot, MissionPhase, PhaseOutcome, PhaseStatus, RerunOf
from app.temporal.records.document import add_rerun, new_record, phase_entry
from cognition.liara.commands.reruns import diff_lines
from cognition.liara.reruns import RerunRefusedError, apply_overrides, crisis_diff, parse_override, reusable
from tests.helpers.records import STARTED


def phase(phase_id: str, *depends_on: str, priority: int = 1, graph: bool = False) -> MissionPhase:
    return MissionPhase(
        phase_id=phase_id,
        agent_id="agent",
        action="scan",
        target="web-1",
        priority=priority,
        depends_on=list(depends_on) if graph or depends_on else None,
    )


SEQUENCE = [phase("a"), phase("b"), phase("c"), phase("d")]
#: a, then b and c beside each other (d after c), then e after b and d.
GRAPH = [
    phase("a", graph=True),
    phase("b", "a"),
    phase("c", "a"),
    phase("d", "c"),
    phase("e", "b", "d"),
]


@pytest.mark.parametrize(
    ("phases", "from_phase", "completed", "reused"),
    [
        (SEQUENCE, "c", "abcd", ["a", "b"]),
        (SEQUENCE, "a", "abcd", []),
        # A phase before it that failed has no output: it runs again.
        (SEQUENCE, "c", "acd", ["a"]),
        # In a graph: every completed phase that neither is it nor depends on it, another branch too.
        (GRAPH, "b", "abcde", ["a", "c", "d"]),
        (GRAPH, "c", "abcde", ["a", "b"]),
        (GRAPH, "e", "abcde", ["a", "b", "c", "d"]),
        (GRAPH, "a", "abcde", []),
        (GRAPH, "e", "abc", ["a", "b", "c"]),
    ],
)
def test_what_a_rerun_reuses(phases, from_phase, completed, reused) -> None:
    assert reusable(phases, from_phase, completed) == reused


def test_a_sequence_is_reused_in_the_order_it_runs() -> None:
    later_first = [phase("late", priority=2), phase("early", priority=1)]
    ordered = CrisisRequest(crisis_id="c", target_member="t", missions=later_first).ordered_missions()
    assert reusable(ordered, "late", ["early", "late"]) == ["early"]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("scan.params.depth=3", ("scan.params.depth", 3)),
        ("scan.params.host=web-1", ("scan.params.host", "web-1")),
        ('scan.params.hosts=["a", "b"]', ("scan.params.hosts", ["a", "b"])),
        ("scan.params.flag=true", ("scan.params.flag", True)),
        ("scan.params.note=a=b", ("scan.params.note", "a=b")),
        ("scan.params.empty=", ("scan.params.empty", "")),
    ],
)
def test_an_override_is_a_path_and_a_json_value_or_text(text, parsed) -> None:
    assert parse_override(text) == parsed


@pytest.mark.parametrize("text", ["scan.params.depth", "=3", " =3"])
def test_an_override_without_a_path_and_value_is_refused(text) -> None:
    with pytest.raises(ValueError, match="is not PATH=VALUE"):
        parse_override(text)


def missions() -> list[dict[str, Any]]:
    return [
        {"phase_id": "recon", "action": "scan", "params": {}},
        {"phase_id": "scan.v2", "action": "scan", "params": {"depth": 1, "opts": {"fast": True}}},
    ]


def test_overrides_change_params_fields_and_inputs() -> None:
    phases, inputs = missions(), {"owner": "ops"}
    overrides = {
        "scan.v2.params.depth": 3,
        "scan.v2.params.opts.fast": False,
        "scan.v2.params.new.deep": "x",
        "scan.v2.action": "scan-mini",
        "inputs.owner": "sec",
    }
    apply_overrides(phases, inputs, overrides, {"recon": "scan.v2"}, "crisis-workflow-w")
    assert phases[1]["params"] == {"depth": 3, "opts": {"fast": False}, "new": {"deep": "x"}}
    assert phases[1]["action"] == "scan-mini" and inputs == {"owner": "sec"}
    assert phases[0] == missions()[0]


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("recon.params.x", "Override 'recon.params.x' changes phase 'recon', which the rerun reuses (it comes "),
        ("ghost.params.x", "Override 'ghost.params.x' names no phase of crisis workflow crisis-workflow-w: "),
        ("scan.v2.depends_on", "not 'depends_on'"),
        ("scan.v2.phase_id", "not 'phase_id'"),
        ("scan.v2.colour", "not 'colour'"),
        ("scan.v2.action.x", "not 'action'"),
        ("scan.v2.params.depth.x", "params.depth is not an object, so it has no 'x'"),
        ("scan.v2.params.", "ends with a dot"),
    ],
)
def test_an_override_that_cannot_apply_is_one_sentence(path, said) -> None:
    with pytest.raises(RerunRefusedError) as refused:
        apply_overrides(missions(), {}, {path: 1}, {"recon": "scan.v2"}, "crisis-workflow-w")
    assert said in str(refused.value) and str(refused.value).endswith(".")


def test_a_request_reuses_only_phases_it_has() -> None:
    fields: dict[str, Any] = {"crisis_id": "c", "target_member": "t", "missions": [phase("a").model_dump()]}
    assert CrisisRequest.model_validate(fields).reused == {}
    reused = {"a": {"workflow_id": "crisis-workflow-w", "output": {"n": 1}}}
    assert CrisisRequest.model_validate({**fields, "reused": reused}).reused["a"].output == {"n": 1}
    with pytest.raises(ValidationError, match="reused names 'ghost', which is not a phase of the crisis"):
        CrisisRequest.model_validate({**fields, "reused": {"ghost": reused["a"]}})


def test_the_records_of_a_rerun_name_the_crisis_it_reruns_and_each_reused_phase_where_it_came_from() -> None:
    rerun_of = RerunOf(workflow_id="crisis-workflow-w", crisis_id="w", from_phase="b", overrides={"b.params.x": 1})
    snapshot = CrisisSnapshot(
        crisis_id="r", workflow_id="crisis-workflow-r", run_id="run", target="t", initiated_by="me", started_at=STARTED
    )
    assert "rerun_of" not in new_record(snapshot, None)
    rerun = snapshot.model_copy(update={"rerun_of": rerun_of})
    assert new_record(rerun, None)["rerun_of"] == rerun_of.model_dump()
    outcome = PhaseOutcome(phase_id="a", agent_id="x", action="scan", status=PhaseStatus.COMPLETED)
    assert "reused_from" not in phase_entry(outcome)
    assert phase_entry(outcome.model_copy(update={"reused_from": "crisis-workflow-w"}))["reused_from"] == (
        "crisis-workflow-w"
    )

    record: dict[str, Any] = {"phases": []}
    add_rerun(record, {"workflow_id": "crisis-workflow-r1", "from_phase": "b"})
    add_rerun(record, {"workflow_id": "crisis-workflow-r2", "from_phase": "a"})
    add_rerun(record, {"workflow_id": "crisis-workflow-r1", "from_phase": "c"})  # said again: once, as last said
    assert [(r["workflow_id"], r["from_phase"]) for r in record["reruns"]] == [
        ("crisis-workflow-r2", "a"),
        ("crisis-workflow-r1", "c"),
    ]


def entry(phase_id: str, **fields: Any) -> dict[str, Any]:
    return {"phase_id": phase_id, "status": "completed", "output": {"ok": True}, **fields}


def transcript(*hosts: str) -> list[dict[str, Any]]:
    calls = [
        {"id": f"call_{n}", "type": "function", "function": {"name": "lookup", "arguments": f'{{"host": "{host}"}}'}}
        for n, host in enumerate(hosts)
    ]
    return [{"role": "user", "content": "go"}, {"role": "assistant", "content": None, "tool_calls": calls}]


USAGE = {"prompt_tokens": 60, "completion_tokens": 16, "total_tokens": 76, "model_calls": 2}
MORE = {"prompt_tokens": 90, "completion_tokens": 30, "total_tokens": 120, "model_calls": 3}


def test_a_comparison_tells_what_differs_phase_by_phase() -> None:
    first = {
        "workflow_id": "crisis-workflow-w",
        "crisis_id": "w",
        "status": "completed",
        "usage": USAGE,
        "phases": [
            entry("recon"),
            entry("triage", params={"depth": 1}, transcript=transcript("web-1"), usage=USAGE),
            entry("report", usage=USAGE, transcript=transcript("web-1")),
            entry("gone", status="failed", output=None),
        ],
    }
    second = {
        "workflow_id": "crisis-workflow-r",
        "crisis_id": "r",
        "status": "failed",
        "usage": MORE,
        "rerun_of": {"workflow_id": "crisis-workflow-w", "crisis_id": "w", "from_phase": "triage", "overrides": {}},
        "phases": [
            # Reused: its usage and tool calls are the first crisis's agent's, not compared.
            entry("recon", reused_from="crisis-workflow-w", attempts=0),
            entry(
                "triage",
                params={"depth": 3},
                output={"ok": False},
                transcript=transcript("web-1", "web-2"),
                usage=MORE,
            ),
            entry("report", usage=USAGE, transcript=transcript("web-1")),
            entry("added"),
        ],
    }
    compared = crisis_diff(first, second)
    by_phase = {phase["phase_id"]: phase for phase in compared["phases"]}
    assert [phase["phase_id"] for phase in compared["phases"]] == ["recon", "triage", "report", "gone", "added"]
    assert by_phase["recon"]["differs"] == [] and by_phase["recon"]["second"]["reused_from"] == "crisis-workflow-w"
    assert by_phase["triage"]["differs"] == ["params", "output", "tool_calls", "usage"]
    assert by_phase["triage"]["second"]["tool_calls"] == [
        {"tool": "lookup", "arguments": {"host": "web-1"}},
        {"tool": "lookup", "arguments": {"host": "web-2"}},
    ]
    assert by_phase["report"]["differs"] == []
    assert (by_phase["gone"]["only_in"], by_phase["gone"]["second"]) == ("first", None)
    assert (by_phase["added"]["only_in"], by_phase["added"]["first"]) == ("second", None)
    assert compared["same"] is False and compared["second"]["rerun_of"]["from_phase"] == "triage"
    assert crisis_diff(first, first)["same"] is True

    assert diff_lines(compared) == [
        "First:  crisis-workflow-w (completed)",
        "Second: crisis-workflow-r (failed), a rerun of crisis-workflow-w from phase triage",
        "Phase recon: same (reused in the second from crisis-workflow-w)",
        "Phase triage: differs in params, output, tool calls, usage",
        '  params: {"depth": 1} → {"depth": 3}',
        '  output: {"ok": true} → {"ok": false}',
        '  tool calls: lookup {"host": "web-1"} → lookup {"host": "web-1"}; lookup {"host": "web-2"}',
        "  usage: 76 tokens (60 prompt, 16 completion) in 2 model calls → "
        "120 tokens (90 prompt, 30 completion) in 3 model calls",
        "Phase report: same",
        "Phase gone: only in the first (failed)",
        "Phase added: only in the second (completed)",
        "Model usage in all: 76 tokens (60 prompt, 16 completion) in 2 model calls → "
        "120 tokens (90 prompt, 30 completion) in 3 model calls",
        "3 of 5 phases differ.",
    ]


def test_a_long_value_is_cut_in_the_text_and_whole_in_the_comparison() -> None:
    long = {"text": "x" * 1000}
    compared = crisis_diff(
        {"workflow_id": "w1", "status": "completed", "phases": [entry("a")]},
        {"workflow_id": "w2", "status": "completed", "phases": [entry("a", output=long)]},
    )
    assert compared["phases"][0]["second"]["output"] == long
    (shown,) = [line for line in diff_lines(compared) if line.startswith("  output:")]
    size = len(json.dumps(long))
    assert shown.endswith(f"… ({size} characters)")

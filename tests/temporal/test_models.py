"""Validation of the crisis models and of the agency's request builder (no Temporal server)."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from app.temporal import identity
from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.identity import new_crisis_id
from app.temporal.models import (
    INVALID_REQUEST_ERROR,
    AgentReport,
    CrisisRequest,
    MissionPhase,
    RetrySettings,
    strict_input,
)
from app.temporal.validation import describe_validation_error
from cognition.liara.actions import missions_from_actions
from cognition.liara.crisis_requests import build_request
from tests.helpers.service import phase

UNSAFE_IDS = [
    pytest.param("", id="empty"),
    pytest.param("   ", id="whitespace"),
    pytest.param("a/b", id="slash"),
    pytest.param("..", id="dotdot"),
    pytest.param(".", id="dot"),
    pytest.param("../etc", id="parent"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a b", id="space"),
    pytest.param("tärget", id="non-ascii"),
    pytest.param("x" * 129, id="129-chars"),
]


def request_fields(**extra: Any) -> dict[str, Any]:
    return {"crisis_id": "crisis-1", "target_member": "target-alpha", "missions": [phase()], **extra}


def problems(err: ValidationError) -> dict[str, str]:
    """``{"field.path": message}`` of a validation error."""
    return {".".join(str(part) for part in p["loc"]): p["msg"] for p in err.errors()}


# CrisisRequest and MissionPhase


def test_a_valid_request_keeps_its_values_and_gets_the_spec_defaults() -> None:
    request = CrisisRequest.model_validate(request_fields())
    assert (request.crisis_id, request.target_member, request.initiated_by) == ("crisis-1", "target-alpha", "unknown")
    assert request.missions[0].priority == 1
    assert request.retry == RetrySettings()
    assert request.phase_timeout_seconds == 300.0


@pytest.mark.parametrize("value", UNSAFE_IDS)
@pytest.mark.parametrize("field", ["crisis_id", "target_member"])
def test_unsafe_request_ids_are_rejected_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CrisisRequest.model_validate(request_fields(**{field: value}))
    assert list(problems(caught.value)) == [field]


@pytest.mark.parametrize("value", UNSAFE_IDS)
@pytest.mark.parametrize("field", ["phase_id", "agent_id", "target"])
def test_unsafe_phase_ids_are_rejected_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CrisisRequest.model_validate(request_fields(missions=[phase(**{field: value})]))
    assert list(problems(caught.value)) == [f"missions.0.{field}"]


def test_ids_of_exactly_128_safe_characters_are_accepted() -> None:
    longest = "a" + "b._-9" * 25 + "zz"
    assert len(longest) == 128
    request = CrisisRequest.model_validate(request_fields(crisis_id=longest, target_member=longest))
    assert request.crisis_id == longest


def test_surrounding_whitespace_is_stripped_from_ids() -> None:
    request = CrisisRequest.model_validate(request_fields(target_member="  target-alpha\n"))
    assert request.target_member == "target-alpha"


def test_a_duplicate_phase_id_is_rejected_naming_the_id() -> None:
    missions = [phase("recon-phase-1"), phase("secure-phase-2"), phase("recon-phase-1")]
    with pytest.raises(ValidationError) as caught:
        CrisisRequest.model_validate(request_fields(missions=missions))
    found = problems(caught.value)
    assert list(found) == ["missions"]
    assert "'recon-phase-1' appears more than once" in found["missions"]


def test_a_request_without_phases_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        CrisisRequest.model_validate(request_fields(missions=[]))
    assert list(problems(caught.value)) == ["missions"]


def test_a_negative_priority_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        MissionPhase.model_validate(phase(priority=-1))
    assert problems(caught.value) == {"priority": "Input should be greater than or equal to 0"}


@pytest.mark.parametrize("priority", [1.5, "1", True])
def test_a_priority_that_is_not_an_integer_is_rejected(priority: object) -> None:
    with pytest.raises(ValidationError) as caught:
        MissionPhase.model_validate(phase(priority=priority))
    assert problems(caught.value) == {"priority": "Input should be a valid integer"}


def test_a_whole_number_written_as_json_writes_it_is_an_integer() -> None:
    """``1.0`` is the integer 1 wherever a request comes from, as JSON Schema (and the HTTP API) has it."""
    assert strict_input(MissionPhase, phase(priority=1.0, approvals_required=2.0)).priority == 1
    assert strict_input(CrisisRequest, request_fields(max_parallel=3.0)).max_parallel == 3


def test_priority_zero_is_accepted() -> None:
    assert MissionPhase.model_validate(phase(priority=0)).priority == 0


@pytest.mark.parametrize(
    ("model", "fields", "location"),
    [
        (CrisisRequest, request_fields(urgency="high"), "urgency"),
        (MissionPhase, phase(urgency="high"), "urgency"),
        (RetrySettings, {"max_attempts": 5}, "max_attempts"),
    ],
)
def test_unknown_fields_are_rejected_in_what_people_type(
    model: type[Any], fields: dict[str, Any], location: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        strict_input(model, fields)
    assert problems(caught.value) == {location: "Extra inputs are not permitted"}


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (CrisisRequest, request_fields(urgency="high")),
        (MissionPhase, phase(urgency="high")),
        (RetrySettings, {"max_attempts": 5}),
        (AgentReport, {"phase_id": "p", "agent_id": "a", "attempt": 1, "confidence": 0.9}),
    ],
)
def test_unknown_fields_are_ignored_on_the_wire(model: type[Any], fields: dict[str, Any]) -> None:
    """What a worker or agency of another release sends: the fields this one knows still count."""
    decoded = model.model_validate(fields)
    assert not hasattr(decoded, "urgency") and not hasattr(decoded, "max_attempts")
    assert decoded.model_dump().keys() == model.model_fields.keys()


def test_a_nested_unknown_field_is_an_error_in_what_people_type() -> None:
    with pytest.raises(ValidationError) as caught:
        strict_input(CrisisRequest, request_fields(missions=[phase(urgency="high")]))
    assert problems(caught.value) == {"missions.0.urgency": "Extra inputs are not permitted"}


# RetrySettings


def test_retry_settings_reject_a_maximum_interval_below_the_initial_one() -> None:
    with pytest.raises(ValidationError) as caught:
        RetrySettings(initial_interval_seconds=10, maximum_interval_seconds=5)
    assert "maximum_interval_seconds (5) must not be less than initial_interval_seconds (10)" in str(caught.value)


def test_retry_settings_accept_equal_intervals() -> None:
    assert RetrySettings(initial_interval_seconds=5, maximum_interval_seconds=5).to_policy().maximum_interval == (
        timedelta(seconds=5)
    )


def test_default_retry_policy_is_the_spec_one() -> None:
    policy = RetrySettings().to_policy()
    assert policy.maximum_attempts == 3
    assert policy.initial_interval == timedelta(seconds=2)
    assert policy.maximum_interval == timedelta(seconds=30)
    assert policy.backoff_coefficient == 2.0
    assert policy.non_retryable_error_types == [INVALID_REQUEST_ERROR]


def test_retry_overrides_reach_the_policy() -> None:
    policy = RetrySettings(maximum_attempts=5, initial_interval_seconds=1, backoff_coefficient=3).to_policy()
    assert (policy.maximum_attempts, policy.initial_interval, policy.backoff_coefficient) == (
        5,
        timedelta(seconds=1),
        3.0,
    )
    assert policy.maximum_interval == timedelta(seconds=30)


# ordered_missions


def test_ordered_missions_sorts_by_priority_and_keeps_the_given_order_for_ties() -> None:
    missions = [
        phase("a", priority=2),
        phase("b", priority=1),
        phase("c", priority=2),
        phase("d", priority=0),
        phase("e", priority=1),
        phase("f", priority=2),
    ]
    request = CrisisRequest.model_validate(request_fields(missions=missions))
    assert [p.phase_id for p in request.ordered_missions()] == ["d", "b", "e", "a", "c", "f"]
    assert [p.phase_id for p in request.missions] == ["a", "b", "c", "d", "e", "f"], "the request itself is unchanged"


# build_request, new_crisis_id and missions_from_actions


def test_build_request_names_the_offending_phase_field() -> None:
    with pytest.raises(InvalidCrisisRequestError) as caught:
        build_request(target_member="target-alpha", missions=[phase("bad/id")])
    message = str(caught.value)
    assert message.startswith("Invalid crisis request: missions.0.phase_id: ")
    assert "crisis_id" not in message


def test_build_request_names_every_bad_field() -> None:
    missions = [phase(), phase("p2", priority=-1), phase("p3", action="")]
    with pytest.raises(InvalidCrisisRequestError) as caught:
        build_request(target_member="target-alpha", missions=missions)
    message = str(caught.value)
    assert "missions.1.priority: " in message
    assert "missions.2.action: " in message


@pytest.mark.parametrize("target", ["", "a/b", "../x", "a b"])
def test_build_request_rejects_a_bad_target_naming_it(target: str) -> None:
    with pytest.raises(InvalidCrisisRequestError, match=r"^Invalid crisis request: target_member: "):
        build_request(target_member=target, missions=[phase()])


def test_build_request_rejects_a_bad_caller_crisis_id_naming_it() -> None:
    with pytest.raises(InvalidCrisisRequestError, match=r"^Invalid crisis request: crisis_id: "):
        build_request(target_member="target-alpha", missions=[phase()], crisis_id="../escape")


def test_build_request_rejects_an_unknown_option_naming_it() -> None:
    with pytest.raises(InvalidCrisisRequestError, match=r"urgency: Extra inputs are not permitted"):
        build_request(target_member="target-alpha", missions=[phase()], urgency="high")


def test_invalid_crisis_request_error_is_a_value_error() -> None:
    assert issubclass(InvalidCrisisRequestError, ValueError)


def test_build_request_generates_a_crisis_id_from_the_target() -> None:
    request = build_request(target_member=" target-alpha ", missions=[phase()], initiated_by="user-123")
    assert re.fullmatch(r"crisis-target-alpha-\d+-[0-9a-f]{12}", request.crisis_id), request.crisis_id
    assert request.target_member == "target-alpha"
    assert request.initiated_by == "user-123"


def test_build_request_uses_a_caller_supplied_crisis_id_as_is() -> None:
    request = build_request(target_member="target-alpha", missions=[phase()], crisis_id="my-crisis.7")
    assert request.crisis_id == "my-crisis.7"


def test_build_request_passes_options_through() -> None:
    request = build_request(
        target_member="target-alpha",
        missions=[MissionPhase.model_validate(phase())],
        retry={"maximum_attempts": 5},
        failure_policy="abort",
        phase_timeout_seconds=None,
    )
    assert request.retry.maximum_attempts == 5
    assert request.failure_policy == "abort"
    assert request.phase_timeout_seconds == 300.0, "an option given as None keeps its default"


def test_generated_crisis_ids_are_unique_within_one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "time", SimpleNamespace(time=lambda: 1768559400.25))
    ids = [build_request(target_member="target-alpha", missions=[phase()]).crisis_id for _ in range(1000)]
    assert all(i.startswith("crisis-target-alpha-1768559400-") for i in ids)
    assert len(set(ids)) == 1000


def test_a_crisis_id_generated_for_the_longest_target_is_still_valid() -> None:
    target = "t" * 128
    crisis_id = new_crisis_id(target)
    assert len(crisis_id) <= 128
    assert crisis_id.startswith("crisis-ttt")
    assert build_request(target_member=target, missions=[phase()]).crisis_id.startswith("crisis-ttt")


def test_missions_from_actions_builds_the_spec_phases() -> None:
    missions = missions_from_actions("target-alpha", ["recon", "secure", "extract", "cleanup"])
    assert missions == [
        {
            "phase_id": "recon-phase-1",
            "agent_id": "recon-agent-001",
            "action": "reconnaissance",
            "target": "target-alpha",
            "priority": 1,
        },
        {
            "phase_id": "secure-phase-2",
            "agent_id": "secure-agent-001",
            "action": "secure",
            "target": "target-alpha",
            "priority": 2,
        },
        {
            "phase_id": "extract-phase-3",
            "agent_id": "extract-agent-001",
            "action": "extract",
            "target": "target-alpha",
            "priority": 3,
        },
        {
            "phase_id": "cleanup-phase-4",
            "agent_id": "cleanup-agent-001",
            "action": "cleanup",
            "target": "target-alpha",
            "priority": 4,
        },
    ]
    request = build_request(target_member="target-alpha", missions=missions)
    assert [p.phase_id for p in request.ordered_missions()] == [m["phase_id"] for m in missions]


def test_a_repeated_action_word_gets_the_next_agent() -> None:
    missions = missions_from_actions("target-alpha", ["recon", "secure", "recon"])
    assert [(m["phase_id"], m["agent_id"]) for m in missions] == [
        ("recon-phase-1", "recon-agent-001"),
        ("secure-phase-2", "secure-agent-001"),
        ("recon-phase-3", "recon-agent-002"),
    ]


def test_describe_validation_error_is_one_line_per_field() -> None:
    with pytest.raises(ValidationError) as caught:
        CrisisRequest.model_validate(request_fields(crisis_id="", missions=[phase(priority=-1)]))
    described = describe_validation_error(caught.value)
    assert "\n" not in described
    assert described.startswith("crisis_id: ")
    assert "; missions.0.priority: " in described


@pytest.mark.parametrize("seconds", [0, 5e-324, 0.0009, -1, 86401])
def test_a_duration_is_a_millisecond_to_a_day(seconds: float) -> None:
    """A smaller timeout would round to none at all, and the crisis's workflow task would fail forever."""
    with pytest.raises(ValidationError):
        CrisisRequest.model_validate(request_fields(phase_timeout_seconds=seconds))

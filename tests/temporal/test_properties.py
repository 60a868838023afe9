"""Properties of the request rules that no list of examples can cover, checked with hypothesis.

Anything accepted as an id is a safe single path component; anything rejected is rejected as an
``InvalidCrisisRequestError``; generated crisis ids are valid and unique; phases run in a stable
priority order; summaries add up. Example counts are kept small so the file takes seconds.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.temporal.errors import CrisisRecordError, InvalidCrisisRequestError
from app.temporal.identity import new_crisis_id
from app.temporal.models import (
    MAX_ID_LENGTH,
    SAFE_ID_PATTERN,
    CrisisRequest,
    CrisisSummary,
    MissionPhase,
    PhaseStatus,
)
from app.temporal.records import FileRecordStore
from cognition.liara.crisis_requests import build_request

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SAFE_CHARS = string.ascii_letters + string.digits + "._-"

#: Strings shaped like ids, and strings made to break them: separators, dots, NUL, whitespace,
#: non-ASCII look-alikes, and lengths around the limit.
valid_ids = st.from_regex(re.compile(SAFE_ID_PATTERN.replace("*$", f"{{0,{MAX_ID_LENGTH - 1}}}\\Z")), fullmatch=True)
tricky_chars = st.sampled_from(["/", "\\", ".", "..", "\x00", " ", "\t", "\n", "\u00e4", "\u0430", "\u200b", "\uff0f"])
tricky_ids = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=SAFE_CHARS + "/\\\x00 \n\u00e4", max_size=12),
    st.lists(st.one_of(tricky_chars, st.sampled_from(["a", "b", "1", "-", "_"])), max_size=8).map("".join),
    st.builds(lambda body, pad: body + pad, valid_ids, st.sampled_from(["", "\n", " ", "\x00", "/x", ".."])),
    st.integers(min_value=MAX_ID_LENGTH - 2, max_value=MAX_ID_LENGTH + 2).map(lambda n: "a" * n),
)
any_ids = st.one_of(valid_ids, tricky_ids)


def phase(phase_id: str = "p-1", **extra: Any) -> dict[str, Any]:
    return {"phase_id": phase_id, "agent_id": "agent-1", "action": "reconnaissance", "target": "t", **extra}


def accepted_id(field: str, value: str) -> str | None:
    """``value`` as the model stores it in ``field`` (stripped), or None if the model rejects it."""
    try:
        if field in ("crisis_id", "target_member"):
            request = CrisisRequest.model_validate(
                {"crisis_id": "c", "target_member": "t", "missions": [phase()]} | {field: value}
            )
            return getattr(request, field)
        return getattr(MissionPhase.model_validate(phase() | {field: value}), field)
    except ValidationError:
        return None


def assert_safe_path_component(value: str) -> None:
    assert 1 <= len(value) <= MAX_ID_LENGTH, value
    assert value.isascii(), value
    assert "/" not in value and "\\" not in value and "\x00" not in value, value
    assert value not in (".", ".."), value
    assert value == value.strip() and not any(c.isspace() for c in value), value
    assert Path(value).name == value and len(Path(value).parts) == 1, value


@pytest.mark.parametrize("field", ["crisis_id", "target_member", "phase_id", "agent_id", "target"])
@FAST
@given(value=any_ids)
def test_any_accepted_id_is_a_safe_single_path_component(field: str, value: str) -> None:
    stored = accepted_id(field, value)
    if stored is not None:
        assert_safe_path_component(stored)


@FAST
@given(value=valid_ids)
def test_the_valid_id_strategy_really_produces_accepted_ids(value: str) -> None:
    # Guards the test above against a strategy that only ever yields rejected values.
    assert accepted_id("crisis_id", value) == value


@FAST
@given(crisis_id=any_ids)
def test_a_record_path_stays_inside_the_store_directory(tmp_path: Path, crisis_id: str) -> None:
    store = FileRecordStore(tmp_path / "crises")
    try:
        path = store.path_for(crisis_id)
    except CrisisRecordError:
        assert accepted_id("crisis_id", crisis_id) != crisis_id, "the store refused an id the request accepts"
        return
    assert path.parent == store.directory
    assert path.resolve().parent == store.directory.resolve()
    assert path.name == f"{crisis_id}.json"
    assert_safe_path_component(crisis_id)


mission_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.floats(allow_nan=True, allow_infinity=True),
    any_ids,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
phase_fields = st.fixed_dictionaries(
    {"phase_id": any_ids, "agent_id": any_ids, "action": any_ids, "target": any_ids},
    optional={
        "priority": mission_values,
        "params": mission_values,
        "timeout": mission_values,
        "requires_approval": mission_values,
        "compensate_action": mission_values,
        "retry": st.one_of(mission_values, st.fixed_dictionaries({"maximum_attempts": mission_values})),
    },
)
unknown_fields = st.dictionaries(st.text(max_size=6), mission_values, max_size=1)
missions_strategy = st.one_of(
    st.lists(st.builds(lambda extra, known: {**extra, **known}, unknown_fields, phase_fields), max_size=3),
    st.lists(mission_values, max_size=2),
    mission_values,
)


@FAST
@given(
    target=st.one_of(any_ids, mission_values),
    missions=missions_strategy,
    initiated_by=st.one_of(st.text(max_size=10), mission_values),
    crisis_id=st.one_of(st.none(), any_ids, mission_values),
    options=st.dictionaries(
        st.sampled_from(["retry", "failure_policy", "phase_timeout_seconds", "heartbeat_timeout_seconds", "urgency"]),
        mission_values,
        max_size=2,
    ),
)
def test_build_request_either_validates_or_raises_invalid_crisis_request(
    target: Any, missions: Any, initiated_by: Any, crisis_id: Any, options: dict[str, Any]
) -> None:
    try:
        request = build_request(
            target_member=target, missions=missions, initiated_by=initiated_by, crisis_id=crisis_id, **options
        )
    except InvalidCrisisRequestError as err:
        message = str(err)
        assert message.startswith("Invalid crisis request: ") and message.endswith("."), message
        assert "\n" not in message
        return
    # Whatever was accepted obeys every rule again, and its ids are safe file names.
    assert CrisisRequest.model_validate(request.model_dump()) == request
    for value in (request.crisis_id, request.target_member, *(p.phase_id for p in request.missions)):
        assert_safe_path_component(value)


@FAST
@given(target=valid_ids)
def test_generated_crisis_ids_are_valid_and_unique(target: str) -> None:
    generated = [build_request(target_member=target, missions=[phase()]).crisis_id for _ in range(20)]
    assert len(set(generated)) == len(generated)
    for crisis_id in generated:
        assert accepted_id("crisis_id", crisis_id) == crisis_id
        assert crisis_id.startswith("crisis-")
        assert_safe_path_component(crisis_id)
    assert new_crisis_id(target) != new_crisis_id(target)


@FAST
@given(priorities=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=40))
def test_ordered_missions_is_a_stable_sort_by_priority(priorities: list[int]) -> None:
    missions = [phase(f"p-{index}", priority=priority) for index, priority in enumerate(priorities)]
    request = CrisisRequest.model_validate({"crisis_id": "c", "target_member": "t", "missions": missions})

    ordered = request.ordered_missions()

    assert sorted(p.phase_id for p in ordered) == sorted(m["phase_id"] for m in missions), "a permutation"
    assert [p.priority for p in ordered] == sorted(priorities), "non-decreasing priorities"
    for priority in set(priorities):
        tied = [p.phase_id for p in ordered if p.priority == priority]
        given_order = [m["phase_id"] for m in missions if m["priority"] == priority]
        assert tied == given_order, "ties keep the order given"
    assert [p.phase_id for p in request.missions] == [m["phase_id"] for m in missions], "the request is unchanged"


@FAST
@given(statuses=st.lists(st.sampled_from(list(PhaseStatus)), max_size=60))
def test_summary_counts_add_up(statuses: list[PhaseStatus]) -> None:
    summary = CrisisSummary.of(status.value for status in statuses)

    assert summary.total_phases == len(statuses)
    assert summary.completed_phases == statuses.count(PhaseStatus.COMPLETED)
    assert summary.failed_phases == statuses.count(PhaseStatus.FAILED)
    others = [s for s in statuses if s not in (PhaseStatus.COMPLETED, PhaseStatus.FAILED)]
    assert summary.completed_phases + summary.failed_phases + len(others) == summary.total_phases


@FAST
@given(status=st.text(max_size=12))
def test_summary_refuses_an_unknown_status(status: str) -> None:
    assume(status not in {s.value for s in PhaseStatus})
    with pytest.raises(ValueError):
        CrisisSummary.of([status])

"""Reruns and comparisons of crises: ``liara rerun`` and ``liara diff`` (and their API).

A rerun starts a new crisis with the request of one that has ended (its phases added while it ran
included), from one of its phases: the phases before that one are taken as completed with the
outputs their agents reported, and no agent runs again for them (``CrisisRequest.reused``).
"Before" is:

- in a crisis that runs as a graph, every phase that completed and neither is the phase rerun
  from nor depends on it, directly or not (a phase of another branch is reused too);
- in a crisis that runs its phases in order, the phases that completed before it in that order
  (one that failed or was skipped runs again: it has no output to reuse).

The outputs come from the crisis's record (every output whole, those kept in the record only
too), else from its result. A reused phase's entry in the new record says ``reused_from``: the
crisis workflow whose agent reported its output (for a phase that was itself reused, the crisis
it came from). The new record's ``rerun_of`` names the crisis it reruns, the phase it reruns
from and the overrides it was given; the old record lists it in its ``reruns``.

Overrides change the request for the rerun, each a path and a JSON value:
``PHASE_ID.params.KEY`` (deeper keys with more dots), ``PHASE_ID.FIELD`` for another field of the
phase (``action`` picks another executor: the way to another model or system prompt is an action
mapped to another ``llm`` executor), ``inputs.NAME`` for an input of the crisis. A phase that is
reused takes no override (nothing of it runs again); its phase id and dependencies stay.

A crisis still running is not rerun: its phases may still change, and its record is not final.

A comparison reads the records of two crises (no Temporal needed) and tells, phase by phase,
how their statuses, params (where resolved), outputs, tool calls (from the agents' transcripts)
and model usage differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue, ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from app.temporal import plan
from app.temporal.client import ConnectionSettings
from app.temporal.crisis.state import CrisisState
from app.temporal.errors import InvalidCrisisRequestError, LiaraError
from app.temporal.identity import WORKFLOW_ID_PREFIX, scheduled_crisis_id
from app.temporal.models import CrisisRequest, MissionPhase, PhaseStatus
from app.temporal.records import configured_record_store
from app.temporal.records.document import add_rerun, format_timestamp
from cognition.liara.crisis_records import CrisisRecordNotFoundError, read_record
from cognition.liara.crisis_requests import build_request
from cognition.liara.crisis_workflow import crisis_result, described_crisis
from cognition.liara.diagnostics import status_name
from cognition.liara.rpc_errors import translate_rpc_error

#: The workflow's update that appends phases (its method's name).
_ADD_PHASES_UPDATE = "add_phases"
#: Fields of a phase an override may not change: what makes the plan the reuse was decided on.
_FIXED_FIELDS = frozenset({"phase_id", "depends_on", "approvers"})
#: Fields of the request a rerun does not take from the crisis it reruns.
_NOT_CARRIED = frozenset(
    {
        "crisis_id",
        "target_member",
        "missions",
        "initiated_by",
        "schedule",  # a schedule's run is rerun as a crisis of its own
        "self_approval",  # set by this machine's approval policy
        "notifications",
        "rerun_of",
        "reused",
    }
)
#: What a comparison compares of a phase both crises ran, and of one reused by either.
ASPECTS = ("status", "params", "output", "tool_calls", "usage")
REUSED_ASPECTS = ("status", "output")


class CrisisStillRunningError(LiaraError):
    """A crisis that is still running cannot be rerun (its phases may still change)."""


class RerunRefusedError(InvalidCrisisRequestError):
    """A rerun names a phase the crisis does not have, or an override that cannot apply."""


@dataclass(frozen=True)
class CrisisPlan:
    """What a crisis was started with, and the phases added while it ran (in the order it ran them)."""

    request: CrisisRequest
    added: list[MissionPhase]

    @property
    def phases(self) -> list[MissionPhase]:
        """Every phase in plan order: the request's in execution order, then those added."""
        return [*self.request.ordered_missions(), *self.added]


async def crisis_plan(client: Client, settings: ConnectionSettings, workflow_id: str) -> CrisisPlan:
    """The crisis's plan, from its current run's history: the request that run started with (and
    the phases added in the runs before it), then the phases added since.
    """
    decode = client.data_converter.decode
    request: CrisisRequest | None = None
    added: list[MissionPhase] = []
    try:
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events(page_size=100):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
                (raw,) = await decode(payloads[:1], [dict])
                try:
                    request = CrisisRequest.model_validate(raw)
                except ValidationError:
                    raise RerunRefusedError(
                        f"Crisis workflow {workflow_id} was started with an invalid request and ran no phase: "
                        "start a new crisis instead."
                    ) from None
                if len(payloads) > 1:  # a run it continued as: the state it carries holds the phases added before
                    (state,) = await decode(payloads[1:2], [CrisisState])
                    added.extend(state.added)
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
                if accepted.name == _ADD_PHASES_UPDATE:
                    (phases,) = await decode(list(accepted.args.payloads), [list[MissionPhase]])
                    added.extend(plan.execution_order(phases))  # as the crisis appended them
    except RPCError as err:
        raise translate_rpc_error(err, settings, workflow_id) from None
    if request is None:
        raise LiaraError(f"The history of crisis workflow {workflow_id} has no start: it cannot be rerun.")
    return CrisisPlan(request, added)


def reusable(phases: Sequence[MissionPhase], from_phase: str, completed: Iterable[str]) -> list[str]:
    """The phases a rerun from ``from_phase`` takes as completed, in plan order (``phases``, of
    which ``completed`` completed): see the module's docstring.
    """
    done = set(completed)
    if plan.is_graph(phases):
        dependencies = {phase.phase_id: list(phase.depends_on or ()) for phase in phases}
        return [
            phase.phase_id
            for phase in phases
            if phase.phase_id in done
            and phase.phase_id != from_phase
            and from_phase not in plan.ancestors(phase.phase_id, dependencies)
        ]
    ids = [phase.phase_id for phase in phases]
    return [phase_id for phase_id in ids[: ids.index(from_phase)] if phase_id in done]


def parse_override(text: str) -> tuple[str, JsonValue]:
    """``PATH=VALUE`` as an override: the value as JSON if it reads as JSON, else as the text it is."""
    path, equals, value = text.partition("=")
    if not equals or not path.strip():
        raise ValueError(f"{text!r} is not PATH=VALUE (such as scan.params.depth=3)")
    try:
        parsed: JsonValue = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return path.strip(), parsed


def apply_overrides(
    missions: list[dict[str, Any]],
    inputs: dict[str, Any],
    overrides: Mapping[str, JsonValue],
    reused: Mapping[str, str],
    workflow_id: str,
) -> None:
    """Change ``missions`` (phases as dicts) and ``inputs`` in place as ``overrides`` say (see the
    module's docstring); ``reused`` maps each reused phase to the phase rerun from. Raises
    ``RerunRefusedError`` for an override that cannot apply.
    """
    by_id = {phase["phase_id"]: phase for phase in missions}
    for path, value in overrides.items():
        # The longest phase id the path begins with (phase ids may hold dots themselves).
        phase_id = max((known for known in by_id if path.startswith(f"{known}.")), key=len, default=None)
        if phase_id is None:
            if path.startswith("inputs.") and len(path) > len("inputs."):
                inputs[path.removeprefix("inputs.")] = value
                continue
            raise RerunRefusedError(
                f"Override {path!r} names no phase of crisis workflow {workflow_id}: "
                "write PHASE_ID.params.KEY, PHASE_ID.FIELD or inputs.NAME."
            )
        if phase_id in reused:
            raise RerunRefusedError(
                f"Override {path!r} changes phase {phase_id!r}, which the rerun reuses (it comes before "
                f"{reused[phase_id]!r}) and does not run again: rerun from {phase_id!r} to change it."
            )
        field, *keys = path.removeprefix(f"{phase_id}.").split(".")
        if field in _FIXED_FIELDS or (field != "params" and keys) or field not in MissionPhase.model_fields:
            raise RerunRefusedError(
                f"Override {path!r}: a rerun may change a phase's params (params.KEY) or another field of it "
                f"but {', '.join(sorted(_FIXED_FIELDS))}, not {field!r}."
            )
        _put(by_id[phase_id], [field, *keys], value, path)


def _put(target: dict[str, Any], keys: list[str], value: JsonValue, path: str) -> None:
    for depth, key in enumerate(keys[:-1]):
        inner = target.setdefault(key, {})
        if not isinstance(inner, dict):
            raise RerunRefusedError(
                f"Override {path!r}: {'.'.join(keys[: depth + 1])} is not an object, so it has no {keys[depth + 1]!r}."
            )
        target = inner
    if not keys[-1]:
        raise RerunRefusedError(f"Override {path!r} ends with a dot: name the key it sets.")
    target[keys[-1]] = value


@dataclass(frozen=True)
class RerunPlan:
    """A rerun's request, and what links it to the crisis it reruns."""

    request: CrisisRequest
    rerun_of: dict[str, JsonValue]
    reused: list[str]
    overrides: dict[str, JsonValue]


async def plan_rerun(
    client: Client,
    settings: ConnectionSettings,
    workflow_id: str,
    from_phase: str,
    *,
    overrides: Mapping[str, JsonValue] | None = None,
    initiated_by: str = "unknown",
    crisis_id: str | None = None,
) -> RerunPlan:
    """The request of crisis ``workflow_id`` started again from ``from_phase`` (see the module's
    docstring): the phases before it reused (in plan order), the rest as the crisis had them,
    changed by ``overrides``.
    """
    handle, description = await described_crisis(client, settings, workflow_id)
    if description.status == WorkflowExecutionStatus.RUNNING:
        raise CrisisStillRunningError(
            f"Crisis workflow {workflow_id} is still running: wait for it to end (or cancel it), then rerun it."
        )
    planned = await crisis_plan(client, settings, workflow_id)
    phases = planned.phases
    if from_phase not in {phase.phase_id for phase in phases}:
        listed = ", ".join(phase.phase_id for phase in phases[:10]) + (", …" if len(phases) > 10 else "")
        raise RerunRefusedError(f"Crisis workflow {workflow_id} has no phase {from_phase!r} (its phases: {listed}).")
    old_crisis_id = scheduled_crisis_id(workflow_id)
    outputs = await _completed_outputs(handle, settings, workflow_id, old_crisis_id, status_name(description.status))
    reused = reusable(phases, from_phase, outputs)

    original = planned.request
    graph = plan.is_graph(phases)
    last_priority = max(phase.priority for phase in original.missions)
    missions = [phase.model_dump(mode="json", exclude={"approvers"}) for phase in original.missions]
    for added in planned.added:  # in a sequence, added phases keep running after the request's
        update = {} if graph else {"priority": last_priority + 1}
        missions.append(added.model_copy(update=update).model_dump(mode="json", exclude={"approvers"}))
    options = original.model_dump(mode="json", exclude=set(_NOT_CARRIED), exclude_none=True)
    given = dict(overrides or {})
    apply_overrides(missions, options.setdefault("inputs", {}), given, dict.fromkeys(reused, from_phase), workflow_id)
    rerun_of: dict[str, JsonValue] = {
        "workflow_id": workflow_id,
        "crisis_id": old_crisis_id,
        "from_phase": from_phase,
        "overrides": given,
    }
    request = build_request(
        target_member=original.target_member,
        missions=missions,
        initiated_by=initiated_by,
        crisis_id=crisis_id,
        **options,
        rerun_of=rerun_of,
        reused={phase_id: outputs[phase_id] for phase_id in reused},
    )
    if original.notifications is not None:  # told as the crisis it reruns was
        request = request.model_copy(update={"notifications": original.notifications})
    return RerunPlan(request, rerun_of, reused, given)


async def link_rerun(rerun: RerunPlan, started: Mapping[str, Any]) -> bool:
    """List the started rerun in the record of the crisis it reruns; whether it could."""
    link = {
        "workflow_id": started["workflow_id"],
        "crisis_id": started["crisis_id"],
        "from_phase": rerun.rerun_of["from_phase"],
        "started_at": format_timestamp(datetime.now(UTC)),
        "initiated_by": rerun.request.initiated_by,
        **({"overrides": rerun.overrides} if rerun.overrides else {}),
    }
    return await _link(str(rerun.rerun_of["crisis_id"]), str(rerun.rerun_of["workflow_id"]), link)


async def _completed_outputs(
    handle: WorkflowHandle[Any, Any], settings: ConnectionSettings, workflow_id: str, crisis_id: str, status: str
) -> dict[str, dict[str, JsonValue]]:
    """Each completed phase's output and the crisis whose agent reported it (``ReusedPhase``), by
    phase id: from the crisis's record, else from its result.
    """
    record = await _record_of(crisis_id, workflow_id)
    if record is not None:
        entries = record.get("phases") or []
        return {
            entry["phase_id"]: {"workflow_id": entry.get("reused_from") or workflow_id, "output": entry.get("output")}
            for entry in entries
            if entry.get("status") == PhaseStatus.COMPLETED
        }
    if status != "completed":
        raise LiaraError(
            f"Crisis workflow {workflow_id} ended {status} without a result, and this machine's record store holds no "
            "record of it to take its outputs from: rerun it where its workers' record store is configured."
        )
    result = await crisis_result(handle, settings)
    completed = [phase for phase in result["phases"] if phase["status"] == PhaseStatus.COMPLETED]
    kept = next((phase["phase_id"] for phase in completed if phase.get("output_ref")), None)
    if kept is not None:
        raise LiaraError(
            f"The output of phase {kept!r} of crisis workflow {workflow_id} is kept in its record only, which this "
            "machine's record store does not hold: rerun it where its workers' record store is configured."
        )
    return {
        phase["phase_id"]: {"workflow_id": phase.get("reused_from") or workflow_id, "output": phase.get("output")}
        for phase in completed
    }


async def _record_of(crisis_id: str, workflow_id: str) -> dict[str, Any] | None:
    """The crisis's record in this machine's record store; None if it holds none of this crisis."""
    async with configured_record_store() as store:
        record = await store.read(crisis_id)
    if record is None or record.get("workflow_id") not in (None, workflow_id):
        return None  # another crisis's record under the same id
    return record


async def _link(crisis_id: str, workflow_id: str, rerun: dict[str, Any]) -> bool:
    """List ``rerun`` in the record of the crisis it reruns; False if there is none to list it in."""
    try:
        async with configured_record_store() as store, store.transaction(crisis_id) as held:
            record = await held.record()
            if record is None or record.get("workflow_id") not in (None, workflow_id):
                return False
            add_rerun(record, rerun)
            await held.write(record)
    except LiaraError:
        return False  # the rerun has started; only the old record does not say so
    return True


# Comparisons


async def diff_crises(first: str, second: str) -> dict[str, Any]:
    """How crises ``first`` and ``second`` (workflow ids, or crisis ids) differ, from their records
    (``crisis_diff``); ``CrisisRecordNotFoundError`` for one this machine's record store lacks.
    """
    return crisis_diff(await _diffed_record(first), await _diffed_record(second))


async def _diffed_record(given: str) -> dict[str, Any]:
    record = await read_record(scheduled_crisis_id(given))
    if given.startswith(WORKFLOW_ID_PREFIX) and record.get("workflow_id") not in (None, given):
        raise CrisisRecordNotFoundError(
            f"The crisis record {record.get('crisis_id')!r} is that of crisis workflow {record.get('workflow_id')}, "
            f"not of {given}: this machine's record store holds none of it."
        )
    return record


def crisis_diff(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Two crisis records compared: each crisis's header (``first``, ``second``), and each phase
    (in the first's order, then the second's others) with what ``differs`` of it (of ``ASPECTS``;
    only ``REUSED_ASPECTS`` for a phase either reused, whose agent did not run there) and what each
    crisis says of it, or ``only_in`` for a phase of one of them. ``same``: no phase differs.
    """
    ours = {entry["phase_id"]: entry for entry in first.get("phases") or []}
    theirs = {entry["phase_id"]: entry for entry in second.get("phases") or []}
    phases = []
    for phase_id in [*ours, *(phase_id for phase_id in theirs if phase_id not in ours)]:
        a, b = ours.get(phase_id), theirs.get(phase_id)
        if a is None or b is None:
            sides = {"first": _side(a) if a else None, "second": _side(b) if b else None}
            phases.append({"phase_id": phase_id, "differs": [], "only_in": "first" if b is None else "second", **sides})
            continue
        mine, other = _side(a), _side(b)
        reused = mine["reused_from"] is not None or other["reused_from"] is not None
        differs = [aspect for aspect in (REUSED_ASPECTS if reused else ASPECTS) if mine[aspect] != other[aspect]]
        phases.append({"phase_id": phase_id, "differs": differs, "only_in": None, "first": mine, "second": other})
    return {
        "first": _header(first),
        "second": _header(second),
        "phases": phases,
        "same": all(not phase["differs"] and phase["only_in"] is None for phase in phases),
    }


def _header(record: Mapping[str, Any]) -> dict[str, Any]:
    fields = ("workflow_id", "crisis_id", "target", "status", "usage", "rerun_of")
    return {**{field: record.get(field) for field in fields}, "reruns": record.get("reruns") or []}


def _side(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": entry.get("status"),
        "params": entry.get("params"),
        "output": entry.get("output"),
        "tool_calls": tool_calls(entry.get("transcript")),
        "usage": entry.get("usage"),
        "reused_from": entry.get("reused_from"),
    }


def tool_calls(transcript: Any) -> list[dict[str, Any]]:
    """The tool calls a language-model agent made, in order, from its transcript: each ``tool``
    and its ``arguments`` (as JSON, or the text the model wrote where it is not JSON).
    """
    calls: list[dict[str, Any]] = []
    for message in transcript if isinstance(transcript, list) else []:
        for call in (message.get("tool_calls") if isinstance(message, dict) else None) or []:
            function = (call.get("function") if isinstance(call, dict) else None) or {}
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except json.JSONDecodeError:
                    pass
            calls.append({"tool": function.get("name"), "arguments": arguments})
    return calls

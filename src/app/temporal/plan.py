"""The order a crisis's phases run in: one after another, or as the graph their ``depends_on`` make.

A crisis where no phase declares ``depends_on`` runs sequentially: one phase at a time, by
priority, ties in the order given; a failed phase does not stop the next (unless the failure
policy aborts). A crisis where any phase declares it runs as a graph: a phase is ready once
every phase it depends on has completed, independent phases run side by side, and a phase whose
dependency failed, was skipped or cancelled is skipped. References between phases must follow
the order: a phase reads only outputs of phases that surely ran before it (in a graph, those it
depends on, directly or not). Everything here is deterministic: the workflow uses it as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

from pydantic import JsonValue

from app.temporal.references import MAX_PARAMS_BYTES, inputs_resolved_size, references_in

#: Statuses after which a phase no longer changes (a dependent may start, or must be skipped).
FINISHED = frozenset({"completed", "failed", "skipped", "cancelled"})


class PlannedPhase(Protocol):
    phase_id: str
    priority: int
    depends_on: list[str] | None
    params: dict


#: A kind of planned phase: what the plan functions take, they return (the workflow's MissionPhase).
P = TypeVar("P", bound=PlannedPhase)


def is_graph(phases: Iterable[PlannedPhase]) -> bool:
    return any(phase.depends_on is not None for phase in phases)


def execution_order(phases: Sequence[P]) -> list[P]:
    """By priority, ties in the order given (stable)."""
    return sorted(phases, key=lambda phase: phase.priority)


def ancestors(phase_id: str, dependencies: Mapping[str, Sequence[str]]) -> set[str]:
    """Every phase ``phase_id`` depends on, directly or not."""
    seen: set[str] = set()
    stack = list(dependencies.get(phase_id, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(dependencies.get(current, ()))
    return seen


def problems(
    phases: Sequence[PlannedPhase], inputs: Mapping[str, JsonValue], known: Sequence[PlannedPhase] = ()
) -> list[str]:
    """What is wrong with the plan of ``phases`` (added to the ``known`` ones, if any: the crisis's
    plan, in the order it runs), one sentence each: unknown or circular dependencies, references
    to unknown phases, to phases that do not run before, or to inputs not given, and params that
    ``inputs`` would take past what a phase's agent may get.
    """
    everything = [*known, *phases]
    ids = {phase.phase_id for phase in everything}
    graph = is_graph(everything)
    found: list[str] = []
    dependencies = {phase.phase_id: list(phase.depends_on or ()) for phase in everything}
    for phase in phases:
        for dependency in phase.depends_on or ():
            if dependency == phase.phase_id:
                found.append(f"phase {phase.phase_id!r} depends on itself")
            elif dependency not in ids:
                found.append(f"phase {phase.phase_id!r} depends on {dependency!r}, which is not a phase of the crisis")
    if not found and (cycle := _cycle(dependencies)):
        found.append("phases depend on each other in a circle: " + " -> ".join(cycle))
    before = _runs_before(known, phases, dependencies, graph)
    declared = set(inputs)
    for phase in phases:
        try:
            references = list(references_in(phase.params))
        except ValueError as err:
            found.append(f"phase {phase.phase_id!r} has a malformed reference: {err}")
            continue
        for reference in references:
            if reference.input_name is not None and reference.input_name not in declared:
                found.append(
                    f"phase {phase.phase_id!r} refers to {reference.text}, but the crisis has no input "
                    f"{reference.input_name!r}"
                )
            elif reference.phase_id is not None and reference.phase_id not in ids:
                found.append(
                    f"phase {phase.phase_id!r} refers to {reference.text}, but {reference.phase_id!r} is not a phase "
                    "of the crisis"
                )
            elif reference.phase_id is not None and reference.phase_id not in before[phase.phase_id]:
                why = "it does not depend on it" if graph else "it does not run before it"
                found.append(f"phase {phase.phase_id!r} refers to {reference.text}, but {why}")
        if any(reference.input_name in declared for reference in references):
            size = inputs_resolved_size(phase.params, inputs)  # counted, not built
            if size > MAX_PARAMS_BYTES:
                found.append(
                    f"phase {phase.phase_id!r} has params of {size} bytes once its inputs are filled in, more than "
                    f"the {MAX_PARAMS_BYTES} a phase's agent may get: refer to large inputs fewer times"
                )
    return found


def _runs_before(
    known: Sequence[PlannedPhase],
    phases: Sequence[PlannedPhase],
    dependencies: Mapping[str, Sequence[str]],
    graph: bool,
) -> dict[str, set[str]]:
    """For each of ``phases``, the phases that surely ran before it. Sequentially, phases added to
    a crisis run after its ``known`` ones, whatever their priority.
    """
    if graph:
        # In a circle a phase is its own ancestor, which does not make it run before itself.
        return {phase.phase_id: ancestors(phase.phase_id, dependencies) - {phase.phase_id} for phase in phases}
    order = [phase.phase_id for phase in [*known, *execution_order(phases)]]
    return {phase_id: set(order[:position]) for position, phase_id in enumerate(order)}


def _cycle(dependencies: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle of the graph, as the phase ids around it, or None. A depth-first walk with a
    stack of its own, so a chain of any length is checked (a thousand phases each depending on
    the one before would overflow Python's call stack).
    """
    state: dict[str, str] = {}  # "visiting" or "done"
    for start in dependencies:
        if start in state:
            continue
        path = [start]
        pending = [iter(dependencies.get(start, ()))]
        state[start] = "visiting"
        while pending:
            dependency = next(pending[-1], None)
            if dependency is None:
                state[path.pop()] = "done"
                pending.pop()
            elif state.get(dependency) == "visiting":
                return [*path[path.index(dependency) :], dependency]
            elif dependency not in state:
                state[dependency] = "visiting"
                path.append(dependency)
                pending.append(iter(dependencies.get(dependency, ())))
    return None


def ready(phases: Sequence[P], statuses: Mapping[str, str], graph: bool) -> list[P]:
    """The pending phases that may start now, in plan order.

    Sequentially, the first pending phase once nothing runs; in a graph, every pending phase
    whose dependencies all completed.
    """
    pending = [phase for phase in phases if statuses[phase.phase_id] == "pending"]
    if not graph:
        busy = any(status not in FINISHED and status != "pending" for status in statuses.values())
        return [] if busy or not pending else [pending[0]]
    return [
        phase for phase in pending if all(statuses[dependency] == "completed" for dependency in phase.depends_on or ())
    ]


def blocked(phases: Sequence[PlannedPhase], statuses: Mapping[str, str]) -> list[str]:
    """Pending phases of a graph that can never run: something they depend on did not complete."""
    return [
        phase.phase_id
        for phase in phases
        if statuses[phase.phase_id] == "pending"
        and any(statuses[dependency] in FINISHED - {"completed"} for dependency in phase.depends_on or ())
    ]

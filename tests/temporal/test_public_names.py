"""The public names of the spec's modules stay what users and running crises rely on.

``app.temporal.workflows`` is read as the stage machine and hands its jobs to the parts in
``app.temporal.crisis``; whatever moves between them, these names (and the workflow's query,
updates and activities, which recorded histories name) must not change by accident.
"""

from __future__ import annotations

import inspect

from temporalio import activity, workflow

import app.temporal.activities as activities
import app.temporal.workflows as workflows
import cognition.liara.agency as agency


def test_workflows_module_exports_the_specs_names() -> None:
    assert set(workflows.__all__) == {"CrisisResponseWorkflow", "CrisisRequest", "CrisisResult", "MissionPhase"}
    for name in workflows.__all__:
        assert getattr(workflows, name).__name__ == name


def test_the_crisis_workflow_keeps_its_name_query_and_updates() -> None:
    definition = workflow._Definition.must_from_class(workflows.CrisisResponseWorkflow)
    assert definition.name == "CrisisResponseWorkflow"
    assert set(definition.queries) == {"progress"}
    assert set(definition.updates) == {"decide_approval", "add_phases"}
    assert not definition.signals
    assert list(inspect.signature(workflows.CrisisResponseWorkflow.run).parameters) == ["self", "request", "continued"]


def test_activities_module_exports_the_spec_activities_and_the_final_write_hold() -> None:
    assert activities.__all__ == ["CrisisActivities"]
    names = {
        activity._Definition.must_from_callable(method).name
        for _, method in inspect.getmembers(activities.CrisisActivities, inspect.isfunction)
        if activity._Definition.from_callable(method) is not None
    }
    assert names == {
        "validate_crisis_request",
        "initialize_crisis_response",
        "perform_agent_mission",
        "log_mission_phase",
        "finalize_crisis_response",
        "hold_final_write",
    }


def test_agency_module_exports_the_python_api() -> None:
    assert agency.__all__ == ["LiaraTemporalAgency"]
    api = agency.LiaraTemporalAgency
    public = {name for name, _ in inspect.getmembers(api) if not name.startswith("_")}
    assert public == {
        # the spec's three
        "trigger_crisis_response",
        "get_crisis_status",
        "wait_for_crisis_completion",
        # starting, steering and reading crises
        "start_crisis",
        "start_playbook",
        "trigger_playbook",
        "cancel_crisis",
        "approve_phase",
        "reject_phase",
        "add_phases",
        "list_crises",
        "list_crises_page",
        "crisis_events",
        "read_record",
        "list_records",
        # reruns and comparisons
        "rerun_crisis",
        "diff_crises",
        # the connection and the namespace
        "connect",
        "close",
        "decide",
        "client",
        "check_ready",
        "register_search_attributes",
        "pollers",
    }
    trigger = inspect.signature(api.trigger_crisis_response).parameters
    assert {"target_member", "missions", "initiated_by"} <= set(trigger)
    constructor = inspect.signature(api).parameters
    assert {"temporal_host", "namespace", "task_queue"} <= set(constructor)

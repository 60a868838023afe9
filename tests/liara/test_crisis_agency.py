"""The command line drives one ``CrisisAgency``, on Temporal (``LiaraTemporalAgency``) or through
the service (``RemoteAgency``): each is one, method for method and parameter for parameter.

The annotated assignments fail a type check when an agency lacks a method of the protocol or types
one otherwise; the rest fails here when a method is added to one agency and not the other, or a
parameter is renamed, reordered, retyped or given another default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.crisis_agency import CrisisAgency
from cognition.liara.remote import RemoteAgency

#: The Python API's methods the service offers no way to do (or, for ``trigger_*``, the spec's
#: shorthands of ``start_*``, which the command line does not use), and its connection.
TEMPORAL_ONLY = {
    "trigger_crisis_response",
    "trigger_playbook",
    "read_record",
    "list_records",
    # A rerun runs on Temporal (the service has its own route for it); a comparison reads records.
    "rerun_crisis",
    "diff_crises",
    "check_ready",
    "register_search_attributes",
    "pollers",
    "connect",
    "close",
    "decide",
    "client",
}


#: The protocol's one method that is no coroutine function: it returns a crisis's events, an async generator.
STREAMS = {"crisis_events"}


def crisis_methods() -> set[str]:
    return {name for name, member in vars(CrisisAgency).items() if inspect.isfunction(member) and name[0] != "_"}


def public_names(agency: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(agency) if not name.startswith("_")}


def shape(method: Callable[..., Any]) -> tuple[list[tuple[str, Any, Any, Any]], Any]:
    """A method's parameters (name, kind, default, annotation) and return annotation."""
    signature = inspect.signature(method)
    parameters = [(p.name, p.kind, p.default, p.annotation) for p in signature.parameters.values()]
    return parameters, signature.return_annotation


async def test_both_agencies_are_crisis_agencies() -> None:
    local: CrisisAgency = LiaraTemporalAgency(temporal_host="localhost:7233")
    async with RemoteAgency("http://127.0.0.1:1") as remote_agency:
        remote: CrisisAgency = remote_agency
        for agency in (local, remote):
            assert all(inspect.iscoroutinefunction(getattr(agency, name)) for name in crisis_methods() - STREAMS)


@pytest.mark.parametrize("agency", [LiaraTemporalAgency, RemoteAgency], ids=lambda agency: agency.__name__)
def test_each_crisis_method_takes_the_protocols_parameters(agency: type) -> None:
    for name in crisis_methods():
        assert shape(getattr(agency, name)) == shape(getattr(CrisisAgency, name)), name


def test_neither_agency_has_a_crisis_method_the_other_lacks() -> None:
    assert public_names(RemoteAgency) == crisis_methods()
    assert public_names(LiaraTemporalAgency) == crisis_methods() | TEMPORAL_ONLY

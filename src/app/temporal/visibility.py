"""Custom search attributes that make crises findable (``liara list``, Web UI filters), and the
``CrisisFilter`` a listing is asked for with.

The agency sets all three when it starts a crisis; the workflow keeps ``CrisisStatus`` current.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import MAX_ID_LENGTH, PERSON_PATTERN, SAFE_ID_PATTERN, CrisisStatus

CRISIS_TARGET = SearchAttributeKey.for_keyword("CrisisTarget")
CRISIS_STATUS = SearchAttributeKey.for_keyword("CrisisStatus")
CRISIS_INITIATED_BY = SearchAttributeKey.for_keyword("CrisisInitiatedBy")
CRISIS_SEARCH_ATTRIBUTES = (CRISIS_TARGET, CRISIS_STATUS, CRISIS_INITIATED_BY)

#: Values of ``CrisisStatus``.
CRISIS_STATUSES = tuple(status.value for status in CrisisStatus)
#: The workflow type of a crisis (``CrisisResponseWorkflow.__name__``; not imported, to keep the
#: workflow module out of this one).
CRISIS_WORKFLOW_TYPE = "CrisisResponseWorkflow"


def start_attributes(target: str, initiated_by: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(CRISIS_TARGET, target),
            SearchAttributePair(CRISIS_STATUS, "running"),
            SearchAttributePair(CRISIS_INITIATED_BY, initiated_by),
        ]
    )


def server_arguments() -> list[str]:
    """``temporal server start-dev`` flags registering the crisis search attributes."""
    args: list[str] = []
    for key in CRISIS_SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


async def missing_search_attributes(client: Client, namespace: str) -> list[str]:
    response = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    return [key.name for key in CRISIS_SEARCH_ATTRIBUTES if key.name not in response.custom_attributes]


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register whichever crisis search attributes the namespace lacks; return their names."""
    missing = await missing_search_attributes(client, namespace)
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing},
            )
        )
    return missing


def quote_literal(value: str) -> str:
    """``value`` as a string literal of Temporal's visibility query language: in single quotes,
    each ``'`` doubled (``O'Brien`` is ``'O''Brien'``).
    """
    return "'" + value.replace("'", "''") + "'"


#: Temporal's own search attribute naming the schedule that started a workflow.
SCHEDULED_BY = "TemporalScheduledById"
#: Crises a listing shows when it is not told how many.
DEFAULT_LIST_LIMIT = 20


class CrisisFilter(BaseModel):
    """Which crises a listing shows, newest first, and which page of them: the one set of filters
    the Python API, ``liara list``, the remote agency and ``GET /v1/crises`` pass along.

    Fields left None do not filter. The values are checked where they become a query
    (``crisis_list_query``), so each agency refuses a bad one with the same sentence; the service
    declares stricter types for its query parameters on a subclass.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str | None = None
    status: str | None = None
    initiated_by: str | None = None
    schedule: str | None = None
    limit: int = DEFAULT_LIST_LIMIT
    cursor: str | None = None

    @classmethod
    def of(cls, crisis_filter: CrisisFilter | None, **fields: str | int | None) -> CrisisFilter:
        """``crisis_filter`` (every crisis if None) with ``fields`` in place of its own: how the
        keyword arguments of ``list_crises(target="target-alpha", limit=5)`` become a filter.
        """
        if not fields:
            return crisis_filter or cls()
        given = crisis_filter.model_dump(include=set(cls.model_fields)) if crisis_filter else {}
        return cls.model_validate({**given, **fields})


def crisis_list_query(crisis_filter: CrisisFilter) -> str:
    """The visibility query of a crisis listing: crises, filtered by target, crisis status, who
    started them and the schedule that did; raise ``InvalidCrisisRequestError`` (one sentence)
    for a filter no crisis can have or no query can express. (Its limit and cursor choose the page.)

    ``initiated_by`` may be anything a crisis can be started with (1 to 128 characters, surrounding
    whitespace dropped as when it is stored), except what Temporal's visibility cannot match: a
    ``"``, a ``\\`` or a control character anywhere, or a ``'`` at either end (the server strips
    those off the literal before it compares).
    """
    clauses = [f"WorkflowType = {quote_literal(CRISIS_WORKFLOW_TYPE)}"]
    if (target := crisis_filter.target) is not None:
        if not re.fullmatch(SAFE_ID_PATTERN, target):
            raise InvalidCrisisRequestError(
                f"Invalid {CRISIS_TARGET.name} filter {target!r}: use letters, digits, '.', '_' and '-'."
            )
        clauses.append(f"{CRISIS_TARGET.name} = {quote_literal(target)}")
    if (initiated_by := crisis_filter.initiated_by) is not None:
        clauses.append(f"{CRISIS_INITIATED_BY.name} = {quote_literal(_initiated_by_filter(initiated_by))}")
    if (status := crisis_filter.status) is not None:
        if status not in CRISIS_STATUSES:
            raise InvalidCrisisRequestError(f"Unknown status {status!r}: use one of {', '.join(CRISIS_STATUSES)}.")
        clauses.append(f"{CRISIS_STATUS.name} = {quote_literal(status)}")
    if (schedule := crisis_filter.schedule) is not None:
        if not re.fullmatch(SAFE_ID_PATTERN, schedule):
            raise InvalidCrisisRequestError(
                f"Invalid schedule filter {schedule!r}: use letters, digits, '.', '_' and '-'."
            )
        clauses.append(f"{SCHEDULED_BY} = {quote_literal(schedule)}")
    return " AND ".join(clauses)


def _initiated_by_filter(value: str) -> str:
    """The ``initiated_by`` filter as it is stored (stripped), or why no crisis can carry it."""
    stripped = value.strip()
    if len(stripped) > MAX_ID_LENGTH or not re.fullmatch(PERSON_PATTERN, stripped):
        raise InvalidCrisisRequestError(
            f"Invalid {CRISIS_INITIATED_BY.name} filter {value!r}: no crisis can be started by it; give 1 to "
            f"{MAX_ID_LENGTH} characters with no '\"', backslash or control character, and no quote (') at either end."
        )
    return stripped

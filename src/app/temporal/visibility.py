"""Custom search attributes that make crises findable (``liara list``, Web UI filters).

The agency sets all three when it starts a crisis; the workflow keeps ``CrisisStatus`` current.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

CRISIS_TARGET = SearchAttributeKey.for_keyword("CrisisTarget")
CRISIS_STATUS = SearchAttributeKey.for_keyword("CrisisStatus")
CRISIS_INITIATED_BY = SearchAttributeKey.for_keyword("CrisisInitiatedBy")
CRISIS_SEARCH_ATTRIBUTES = (CRISIS_TARGET, CRISIS_STATUS, CRISIS_INITIATED_BY)

#: Values of ``CrisisStatus``.
CRISIS_STATUSES = ("running", "awaiting_approval", "compensating", "completed", "failed", "cancelled")


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

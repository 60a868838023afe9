"""The payload converter of every Liara client and worker: the SDK's pydantic converter, with the
type adapters it decodes with built once per process, and models encoded without their defaults.

The SDK gives each workflow run a payload converter of its own, and the pydantic converter keeps
its type adapters per converter: every crisis built them again (for its request, each activity's
result and each local activity's), which took a tenth of the workflow's own CPU time in a worker.

A pydantic model's payload leaves out every field whose value is its default (``null``s, empty
lists, ``false``): the model that decodes it puts them back, so a reader that decodes a payload
untyped (as a plain dict) must validate it into its model to see them. A 4-phase crisis's history
shrank from about 14 KB to 7.7 KB; the bytes a crisis carries through the server cost its CPU
(BENCHMARKS.md). A model's defaults are thereby part of its payload format: change one only with
the histories recorded before in mind.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel, TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import CompositePayloadConverter, DefaultPayloadConverter, JSONPlainPayloadConverter

#: Type adapters by type hint, for every converter of this process (pydantic's are thread-safe).
_type_adapter = functools.lru_cache(maxsize=1024)(TypeAdapter)


class _JSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    def to_payload(self, value: Any) -> Payload | None:
        if not isinstance(value, BaseModel):
            return super().to_payload(value)
        # by_alias as the SDK's encoding of any value; a field at its default is left out.
        data = value.__pydantic_serializer__.to_json(value, by_alias=True, exclude_defaults=True)
        return Payload(metadata={"encoding": self.encoding.encode()}, data=data)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            adapter = _type_adapter(Any if type_hint is None else type_hint)
        except TypeError:  # a hint that cannot be a cache key (or no adapter): the SDK's way
            return super().from_payload(payload, type_hint)
        return adapter.validate_json(payload.data)


#: The encoding converters, the JSON one pydantic's: stateless, so every converter shares them (the
#: SDK makes a converter for each workflow run, and more as it encodes and decodes its activations).
_CONVERTERS = tuple(
    _JSONPayloadConverter() if isinstance(converter, JSONPlainPayloadConverter) else converter
    for converter in DefaultPayloadConverter.default_encoding_payload_converters
)


class PayloadConverter(CompositePayloadConverter):
    """``temporalio.contrib.pydantic.PydanticPayloadConverter`` with the process's type adapters."""

    def __init__(self) -> None:
        super().__init__(*_CONVERTERS)

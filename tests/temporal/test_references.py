"""Resolving references counts what it would produce before it builds anything: a request whose
inputs would take a phase past the params cap is refused at start, and a phase whose references
to other phases' outputs would is failed without the copies ever being made.
"""

from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import JsonValue, ValidationError

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import CrisisRequest, json_size
from app.temporal.references import (
    MAX_PARAMS_BYTES,
    ParamsTooLarge,
    UnresolvedReference,
    inputs_resolved_size,
    resolve,
    resolve_inputs,
    rewritten_size,
)
from cognition.liara.crisis_requests import build_request

#: The shape a security review used against a worker: an input of 100 KB and one phase whose
#: params refer to it a thousand times (100 MB once resolved).
BIG_INPUT = "x" * 100_000
THOUSAND_REFERENCES = {"copies": ["${inputs.blob}"] * 1000}


def test_a_request_whose_inputs_would_take_a_phase_past_the_cap_is_refused_at_start() -> None:
    size = json_size(resolve_inputs(THOUSAND_REFERENCES, {"blob": BIG_INPUT}))
    with pytest.raises(InvalidCrisisRequestError) as refused:
        build_request(
            target_member="target-alpha",
            missions=[
                {"phase_id": "p", "agent_id": "a", "action": "scan", "target": "t", "params": THOUSAND_REFERENCES}
            ],
            inputs={"blob": BIG_INPUT},
        )
    assert (
        f"phase 'p' has params of {size} bytes once its inputs are filled in, more than the {MAX_PARAMS_BYTES} "
        "a phase's agent may get: refer to large inputs fewer times"
    ) in str(refused.value)


def test_the_check_at_start_counts_without_building() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError):
            CrisisRequest.model_validate(
                {
                    "crisis_id": "c",
                    "target_member": "t",
                    "inputs": {"blob": BIG_INPUT},
                    "missions": [
                        {"phase_id": "p", "agent_id": "a", "action": "s", "target": "t", "params": THOUSAND_REFERENCES}
                    ],
                }
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024, f"{peak} bytes at most were held, for a 100 MB expansion"


def test_resolving_past_the_limit_raises_before_building_the_copies() -> None:
    outputs = {"scan": {"blob": BIG_INPUT}}
    params: JsonValue = {"copies": ["${phases.scan.output.blob}"] * 1000, "inline": "a ${phases.scan.output} b"}
    tracemalloc.start()
    try:
        with pytest.raises(ParamsTooLarge) as refused:
            resolve(params, outputs, {}, limit=MAX_PARAMS_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.size == json_size(resolve(params, outputs, {}))
    assert peak < 10 * 1024 * 1024, f"{peak} bytes at most were held, for a 100 MB expansion"


def test_params_without_references_are_not_held_to_the_cap() -> None:
    literal: JsonValue = {"blob": "y" * (MAX_PARAMS_BYTES + 10)}
    assert resolve(literal, {}, {}, limit=MAX_PARAMS_BYTES) == literal


texts = st.text(alphabet=st.sampled_from(list('ab "\\\n\u00e9\u2713\U0001f600${}.')), max_size=12)
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), texts)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4))
tokens = st.sampled_from(
    [
        "${inputs.name}",
        "${inputs.obj}",
        "${inputs.missing}",
        "${phases.a.output}",
        "${phases.a.output.x.1}",
        "$${",
        "${HOME}",
    ]
)
strings = st.lists(st.one_of(texts, tokens), max_size=5).map("".join)
params = st.recursive(
    st.one_of(leaves, strings, tokens),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@given(value=params, name=values, obj=values)
def test_the_size_counted_is_the_size_of_what_resolving_the_inputs_builds(value, name, obj) -> None:
    inputs = {"name": name, "obj": obj}
    assert inputs_resolved_size(value, inputs) == len(json.dumps(resolve_inputs(value, inputs), separators=(",", ":")))


@given(value=params, name=values, obj=values, output=values)
def test_the_size_counted_is_the_size_of_what_resolving_builds(value, name, obj, output) -> None:
    inputs, outputs = {"name": name, "obj": obj, "gone": None}, {"a": {"x": [0, output]}}
    try:
        built = resolve(value, outputs, inputs)
    except (UnresolvedReference, ValueError):  # text that happens to spell a bad reference
        assume(False)
    # A whole-string reference resolves to the value it names.
    size = rewritten_size(value, lambda expression: resolve(f"${{{expression}}}", outputs, inputs), escape="${")
    assert size == json_size(built)

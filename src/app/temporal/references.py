"""References between phases: ``${phases.<phase_id>.output.<key>...}`` and ``${inputs.<name>}``
in a phase's params.

A string that is only a reference becomes the value it names (any JSON); a reference inside a
longer string is replaced by the value's text (a string as it is, anything else as JSON). Keys
and list indexes follow ``output``: ``${phases.recon-1.output.hosts.0.address}``. Only
``${phases.`` and ``${inputs.`` start a reference: any other ``${...}`` (``echo ${HOME}``) is
text, and ``$${`` writes a literal ``${`` (``$${inputs.x}`` is the text ``${inputs.x}``).
Resolution is deterministic, so the workflow does it itself, just before the phase runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

#: Largest params one phase's agent may get once its references are resolved (JSON bytes): a
#: request whose inputs already take a phase past it is refused, and a phase that the outputs it
#: reads take past it fails at once instead of running (counted, never built).
MAX_PARAMS_BYTES = 256 * 1024

#: A reference (its expression in group 1), or the escape ``$${`` (no group).
_TOKEN = re.compile(r"\$\$\{|\$\{((?:phases|inputs)\.[^{}]*)\}")
_ESCAPE = "$${"
_PHASE = re.compile(r"^phases\.(?P<phase>[A-Za-z0-9][A-Za-z0-9._-]*?)\.output(?P<path>(?:\.[^.]+)*)$")
_INPUT = re.compile(r"^inputs\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)$")


class UnresolvedReference(Exception):
    """A reference names something its phase cannot have: the message says what and why."""


@dataclass(frozen=True)
class Reference:
    text: str  # as written, ``${...}``
    phase_id: str | None = None
    path: tuple[str, ...] = ()
    input_name: str | None = None


def parse(expression: str) -> Reference:
    """The reference ``${expression}``; ``ValueError`` naming it if it is neither form."""
    text = f"${{{expression}}}"
    if found := _PHASE.fullmatch(expression):
        path = tuple(part for part in found["path"].split(".") if part)
        return Reference(text, phase_id=found["phase"], path=path)
    if found := _INPUT.fullmatch(expression):
        return Reference(text, input_name=found["name"])
    raise ValueError(f"{text} is not ${{phases.<phase_id>.output...}} or ${{inputs.<name>}}")


def references_in(value: JsonValue) -> Iterator[Reference]:
    """Every reference in a params tree, in order (``ValueError`` for a malformed one)."""
    if isinstance(value, str):
        for found in _TOKEN.finditer(value):
            if found[0] != _ESCAPE:
                yield parse(found[1])
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from references_in(item)


class ParamsTooLarge(Exception):
    """What a value's references would expand to is past the limit; nothing was built."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


def resolve(
    value: JsonValue,
    outputs: Mapping[str, JsonValue],
    inputs: Mapping[str, JsonValue],
    *,
    limit: int | None = None,
) -> JsonValue:
    """``value`` with every reference replaced; ``UnresolvedReference`` when one cannot be.

    With ``limit``, a value whose references would make it larger than ``limit`` bytes of JSON
    raises ``ParamsTooLarge`` instead, counted before anything is built: a thousand references to
    one large input cost their count, not a thousand copies.
    """

    def value_of(expression: str) -> JsonValue:
        return _value_of(parse(expression), outputs, inputs)

    if limit is not None and _has_tokens(value):
        size = rewritten_size(value, value_of, escape="${")
        if size > limit:
            raise ParamsTooLarge(size)
    return _rewrite(value, value_of, escape="${")


def inputs_resolved_size(value: JsonValue, inputs: Mapping[str, JsonValue]) -> int:
    """The JSON size of ``value`` once its ``${inputs...}`` are filled in (phase references kept
    as written, since their outputs are not known yet), counted without building it.
    """
    return rewritten_size(value, _given(inputs), escape=_ESCAPE)


def resolve_inputs(value: Any, inputs: Mapping[str, JsonValue]) -> Any:
    """``value`` with each ``${inputs.<name>}`` that ``inputs`` has replaced, and everything else
    (phase references, other or malformed references, ``$${``) left as written, for the workflow.
    """

    return _rewrite(value, _given(inputs), escape=_ESCAPE)


def _given(inputs: Mapping[str, JsonValue]) -> Callable[[str], JsonValue]:
    """The value of an ``${inputs.<name>}`` that ``inputs`` has; ``_Kept`` for any other reference."""

    def given(expression: str) -> JsonValue:
        found = _INPUT.fullmatch(expression)
        if found is None or found["name"] not in inputs:
            raise _Kept
        return inputs[found["name"]]

    return given


class _Kept(Exception):
    """The reference stays as written."""


def _rewrite(value: Any, value_of: Callable[[str], JsonValue], escape: str) -> Any:
    """``value`` with each reference replaced by ``value_of(expression)`` (kept where it raises
    ``_Kept``) and each ``$${`` by ``escape``.
    """
    if isinstance(value, str):
        whole = _TOKEN.fullmatch(value)
        if whole and whole[0] != _ESCAPE:
            try:
                return value_of(whole[1])
            except _Kept:
                return value

        def replaced(found: re.Match[str]) -> str:
            if found[0] == _ESCAPE:
                return escape
            try:
                return _text(value_of(found[1]))
            except _Kept:
                return found[0]

        return _TOKEN.sub(replaced, value)
    if isinstance(value, list):
        return [_rewrite(item, value_of, escape) for item in value]
    if isinstance(value, dict):
        return {key: _rewrite(item, value_of, escape) for key, item in value.items()}
    return value


def rewritten_size(value: Any, value_of: Callable[[str], JsonValue], escape: str) -> int:
    """The size of ``_rewrite(value, value_of, escape)`` as compact JSON (non-ASCII escaped, as
    ``json_size`` counts), without building it: each referenced value is measured once.
    """
    sizes: dict[str, tuple[int, int]] = {}  # expression -> (JSON size, length of its text in a string)

    def measured(expression: str) -> tuple[int, int]:
        if expression not in sizes:
            referenced = value_of(expression)
            sizes[expression] = (_json_length(referenced), _escaped_length(_text(referenced)))
        return sizes[expression]

    def size(node: Any) -> int:
        if isinstance(node, str):
            whole = _TOKEN.fullmatch(node)
            if whole and whole[0] != _ESCAPE:
                try:
                    return measured(whole[1])[0]
                except _Kept:
                    return _json_length(node)
            total, position = 2, 0  # the quotes
            for found in _TOKEN.finditer(node):
                total += _escaped_length(node[position : found.start()])
                if found[0] == _ESCAPE:
                    total += _escaped_length(escape)
                else:
                    try:
                        total += measured(found[1])[1]
                    except _Kept:
                        total += _escaped_length(found[0])
                position = found.end()
            return total + _escaped_length(node[position:])
        if isinstance(node, list):
            return 2 + sum(size(item) for item in node) + max(len(node) - 1, 0)
        if isinstance(node, dict):
            entries = sum(_json_length(key) + 1 + size(item) for key, item in node.items())
            return 2 + entries + max(len(node) - 1, 0)
        return _json_length(node)

    return size(value)


def _has_tokens(value: Any) -> bool:
    """Whether ``value`` holds a reference or an escape (resolving it changes it)."""
    if isinstance(value, str):
        return _TOKEN.search(value) is not None
    if isinstance(value, list):
        return any(_has_tokens(item) for item in value)
    if isinstance(value, dict):
        return any(_has_tokens(item) for item in value.values())
    return False


def _json_length(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _escaped_length(text: str) -> int:
    """Characters ``text`` takes inside a JSON string."""
    return _json_length(text) - 2


def _text(value: JsonValue) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _value_of(reference: Reference, outputs: Mapping[str, JsonValue], inputs: Mapping[str, JsonValue]) -> JsonValue:
    if reference.input_name is not None:
        if reference.input_name not in inputs:
            raise UnresolvedReference(f"{reference.text} names input {reference.input_name!r}, which has no value")
        return inputs[reference.input_name]
    assert reference.phase_id is not None
    if reference.phase_id not in outputs:
        raise UnresolvedReference(f"{reference.text}: phase {reference.phase_id!r} has no output this phase can read")
    value = outputs[reference.phase_id]
    walked = "output"
    for part in reference.path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise UnresolvedReference(f"{reference.text}: the {walked} of phase {reference.phase_id!r} has no {part!r}")
        walked += f".{part}"
    return value

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


def resolve(value: JsonValue, outputs: Mapping[str, JsonValue], inputs: Mapping[str, JsonValue]) -> JsonValue:
    """``value`` with every reference replaced; ``UnresolvedReference`` when one cannot be."""
    return _rewrite(value, lambda expression: _value_of(parse(expression), outputs, inputs), escape="${")


def resolve_inputs(value: Any, inputs: Mapping[str, JsonValue]) -> Any:
    """``value`` with each ``${inputs.<name>}`` that ``inputs`` has replaced, and everything else
    (phase references, other or malformed references, ``$${``) left as written, for the workflow.
    """

    def given(expression: str) -> JsonValue:
        found = _INPUT.fullmatch(expression)
        if found is None or found["name"] not in inputs:
            raise _Kept
        return inputs[found["name"]]

    return _rewrite(value, given, escape=_ESCAPE)


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

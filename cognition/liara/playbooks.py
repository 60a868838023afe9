"""Playbooks: reusable missions in a file (YAML, JSON or TOML), started with inputs.

    name: incident-response
    description: Contain a compromised host.
    inputs:
      host: {type: string, required: true, description: The host to contain}
      severity: {type: string, default: high}
    target_member: ${inputs.host}
    options: {failure_policy: abort, max_parallel: 2}
    phases:
      - {phase_id: triage, agent_id: triage-agent, action: triage, target: "${inputs.host}"}
      - {phase_id: contain, ..., depends_on: [triage], params: {host: "${phases.triage.output.host}"}}

Starting one renders it: every ``${inputs.<name>}`` in it takes the input's value (a whole value
where the string is only the reference), the inputs are kept in the request, and the result is
checked as any crisis request is; ``${phases...}`` references are left to the workflow. An input
given a value that does not fit where the playbook puts it is named, once, as the input (not as
each field it went into). A playbooks directory (``LIARA_PLAYBOOKS``, default ``playbooks/``) lets
a playbook be named instead of given by path (``locate``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from app.temporal import plan
from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import INPUT_NAME_PATTERN, CrisisRequest, MissionPhase, SafeId, strict_input
from app.temporal.references import references_in, resolve_inputs
from app.temporal.validation import FieldProblem, InvalidFieldsError, Location, describe_validation_error, meaning
from cognition.liara.errors import PlaybookNotFoundError

PLAYBOOKS_ENV = "LIARA_PLAYBOOKS"
DEFAULT_PLAYBOOKS_DIR = Path("playbooks")
SUFFIXES = (".yaml", ".yml", ".json", ".toml")
#: Crisis request fields that a playbook's ``options`` cannot set.
NOT_OPTIONS = frozenset(
    {"crisis_id", "target_member", "missions", "initiated_by", "inputs", "playbook", "schedule", "reused", "rerun_of"}
)
#: What ``validate`` and ``show`` put in for a required input that has no value.
_PLACEHOLDERS: dict[str, JsonValue] = {
    "string": "example",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
    "object": {},
    "array": [],
}


class InputType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    OBJECT = "object"
    ARRAY = "array"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaybookInput(_Strict):
    type: InputType = InputType.STRING
    required: bool = False
    default: JsonValue = None
    description: str = ""

    @field_validator("default")
    @classmethod
    def _default_of_its_type(cls, default: JsonValue, info: ValidationInfo) -> JsonValue:
        kind = info.data.get("type")  # absent when the type itself is wrong (told on its own)
        if default is not None and kind is not None and not _is_of(kind, default):
            raise ValueError(f"the input is {kind.value}, not {default!r}")
        return default


def _crisis_option(name: str) -> str:
    if name in NOT_OPTIONS:
        raise ValueError("not an option: the playbook or whoever starts it gives it")
    return name


class Playbook(_Strict):
    """A playbook file as written (its phases are checked once rendered)."""

    name: SafeId
    description: str = ""
    inputs: dict[Annotated[str, Field(pattern=INPUT_NAME_PATTERN, max_length=64)], PlaybookInput] = Field(
        default_factory=dict
    )
    target_member: str
    options: dict[Annotated[str, AfterValidator(_crisis_option)], JsonValue] = Field(default_factory=dict)
    phases: list[dict[str, JsonValue]] = Field(min_length=1)

    def values(self, given: Mapping[str, JsonValue], *, placeholders: bool = False) -> dict[str, JsonValue]:
        """Every input's value: given, else its default; ``InvalidCrisisRequestError`` for an
        unknown one, a missing required one (unless ``placeholders``) or one of the wrong type.
        """
        unknown = sorted(set(given) - set(self.inputs))
        if unknown:
            known = ", ".join(self.inputs) or "none"
            raise InvalidCrisisRequestError(f"Playbook {self.name} has no input {unknown[0]!r} (its inputs: {known}).")
        values: dict[str, JsonValue] = {}
        for name, declared in self.inputs.items():
            if name in given:
                values[name] = _typed(self.name, name, declared.type, given[name])
            elif declared.default is not None:
                values[name] = declared.default
            elif declared.required and placeholders:
                values[name] = _PLACEHOLDERS[declared.type]
            elif declared.required:
                raise InvalidCrisisRequestError(
                    f"Playbook {self.name} needs input {name!r}"
                    + (f" ({declared.description})" if declared.description else "")
                    + f": give it with --input {name}=VALUE."
                )
        return values

    def render(self, given: Mapping[str, JsonValue], *, placeholders: bool = False) -> dict[str, Any]:
        """The crisis request's fields (``target_member``, ``missions``, ``inputs``, ``playbook``,
        options). A given input whose value does not fit where the playbook puts it (a target, a
        phase id, a priority) raises ``InvalidFieldsError`` naming the input, once.
        """
        values = self.values(given, placeholders=placeholders)
        fields = {"target_member": self.target_member, "missions": self.phases, **self.options}
        rendered = {**resolve_inputs(fields, values), "inputs": values, "playbook": self.name}
        self._check_given(fields, rendered, {name: values[name] for name in given if name in values})
        return rendered

    def in_its_words(self, problem: FieldProblem) -> str:
        """A problem of the crisis request this playbook renders, where it is in the playbook
        (``phases[2].priority``, ``options.max_parallel``).
        """
        location = _in_playbook(problem.location, self.options)
        return f"{_located(location)}: {problem.message}" if location else problem.message

    def _check_given(self, fields: dict[str, Any], rendered: dict[str, Any], given: Mapping[str, JsonValue]) -> None:
        """Refuse given inputs whose values break a rule of the fields they went into."""
        if not given:
            return
        try:
            strict_input(CrisisRequest, {**rendered, "crisis_id": "check", "initiated_by": "check"})
        except ValidationError as err:
            details = err.errors()
        else:
            return
        problems: dict[tuple[str, str], FieldProblem] = {}
        for detail in details:
            location = tuple(part for part in detail["loc"] if part != "[key]")
            for name in _inputs_at(fields, location):
                if name in given:
                    noun = _noun(location)
                    place = _located(_in_playbook(location, self.options))
                    what = f"is not a valid {noun}" if noun else f"does not fit {place}"
                    said = f"{what} ({given[name]!r}): {meaning(detail)}"
                    problems.setdefault((name, said), FieldProblem(("inputs", name), said))
        if problems:
            chosen = list(problems.values())
            raise InvalidFieldsError(
                "Invalid crisis request",
                chosen,
                [f"input {problem.location[1]!r} of playbook {self.name} {problem.message}" for problem in chosen],
            )


#: What the fields an input may go into hold, as a user names them.
_NOUNS = {
    "target_member": "target",
    "target": "target",
    "phase_id": "phase id",
    "agent_id": "agent id",
    "action": "action",
    "compensate_action": "action",
    "depends_on": "phase id",
    "webhooks": "webhook name",
}


def _noun(location: Location) -> str | None:
    """What the field at ``location`` holds, as a user names it (``target``), if it is a name."""
    names = [part for part in location if isinstance(part, str)]
    return _NOUNS.get(names[-1]) if names else None


def _inputs_at(fields: Any, location: Location) -> list[str]:
    """The inputs that the playbook's text puts at ``location`` (or around it: a whole value
    that an input replaced).
    """
    node = fields
    for part in location:
        if isinstance(node, str):
            break
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return []
    if not isinstance(node, str):
        return []
    try:
        return [reference.input_name for reference in references_in(node) if reference.input_name]
    except ValueError:
        return []


def _typed(playbook: str, name: str, kind: InputType, value: JsonValue) -> JsonValue:
    """An input's value as its declared type; a string from the command line is converted."""
    if isinstance(value, str) and kind != InputType.STRING:
        try:
            value = _from_text(kind, value)
        except ValueError:
            raise InvalidCrisisRequestError(
                f"Input {name!r} of playbook {playbook} is {kind.value}, not {value!r}."
            ) from None
    if not _is_of(kind, value):
        raise InvalidCrisisRequestError(f"Input {name!r} of playbook {playbook} is {kind.value}, not {value!r}.")
    return value


def _is_of(kind: InputType, value: JsonValue) -> bool:
    return {
        InputType.STRING: isinstance(value, str),
        InputType.INTEGER: isinstance(value, int) and not isinstance(value, bool),
        InputType.NUMBER: isinstance(value, int | float) and not isinstance(value, bool),
        InputType.BOOLEAN: isinstance(value, bool),
        InputType.OBJECT: isinstance(value, dict),
        InputType.ARRAY: isinstance(value, list),
    }[kind]


def _from_text(kind: InputType, text: str) -> JsonValue:
    if kind == InputType.INTEGER:
        return int(text)
    if kind == InputType.NUMBER:
        return float(text)
    if kind == InputType.BOOLEAN:
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError(text)
    return json.loads(text)


# --- files ----------------------------------------------------------------------------------------


def load(path: Path) -> Playbook:
    """Read a playbook file; ``InvalidCrisisRequestError`` saying what is wrong and where."""
    try:
        return Playbook.model_validate(_document(path))
    except ValidationError as err:
        raise InvalidCrisisRequestError(f"Playbook {path}: {describe_validation_error(err)}.") from None


def _document(path: Path) -> dict[str, Any]:
    """A playbook file's mapping, parsed by its suffix."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidCrisisRequestError(f"Cannot read playbook {path}: {err.strerror or err}.") from None
    except UnicodeDecodeError:
        raise InvalidCrisisRequestError(f"Playbook {path} is not UTF-8 text.") from None
    try:
        if path.suffix == ".json":
            document = json.loads(text)
        elif path.suffix == ".toml":
            document = tomllib.loads(text)
        else:
            document = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        reason = " ".join(str(err).split())
        raise InvalidCrisisRequestError(f"Playbook {path} is not valid {_format(path)} ({reason}).") from None
    if not isinstance(document, dict):
        raise InvalidCrisisRequestError(f"Playbook {path} must hold a mapping with name, inputs and phases.")
    return document


def _format(path: Path) -> str:
    return {".json": "JSON", ".toml": "TOML"}.get(path.suffix, "YAML")


def problems(path: Path) -> list[str]:
    """Every problem of a playbook, each with its location; empty when it is sound.

    A part with a problem gets a stand-in, so the rest is still checked: required inputs take
    placeholders, a phase with bad fields still counts without them, and the plan (phases,
    dependencies, references) is checked even when the playbook's other fields are wrong.
    """
    try:
        document = _document(path)
    except InvalidCrisisRequestError as err:
        return [str(err)]
    found: list[str] = []
    told: list[tuple[Any, ...]] = []
    try:
        playbook = Playbook.model_validate(document)
    except ValidationError as err:
        told = [problem["loc"] for problem in err.errors()]
        found = [f"{_located(problem['loc'])}: {_message(problem)}" for problem in err.errors()]
        try:
            playbook = Playbook.model_validate(_mended(document, err.errors()))
        except ValidationError:
            return found  # no phases to check
    rendered = playbook.render({}, placeholders=True)
    checked = {**rendered, "initiated_by": "playbook-check", "crisis_id": "playbook-check", "playbook": "check"}
    try:
        strict_input(CrisisRequest, checked)
    except ValidationError as err:
        for problem in err.errors():
            location = _in_playbook(problem["loc"], playbook.options)
            # A problem of the plan as a whole (no location) is told below, phase by phase; one
            # where the playbook itself had a problem is told already.
            if location and not any(location[: len(place)] == place for place in told):
                found.append(f"{_located(location)}: {_message(problem)}")
    phases = [phase for phase in map(_planned, rendered["missions"]) if phase is not None]
    found += [f"phases: {problem}" for problem in plan.problems(phases, rendered["inputs"])]
    return found


#: What stands in for a field of the playbook that has a problem, while the rest is checked.
_STAND_INS: dict[str, JsonValue] = {
    "name": "playbook",
    "description": "",
    "target_member": "example",
    "inputs": {},
    "options": {},
}
#: What stands in for a phase's required fields that have problems.
_PHASE_STAND_INS = {"agent_id": "example", "action": "example", "target": "example"}


def _mended(document: dict[str, Any], errors: list[Any]) -> dict[str, Any]:
    """The playbook with stand-ins for the parts pydantic found wrong (a bad input stays declared,
    a bad option or phase field is left out, an unknown field is dropped).
    """
    mended = dict(document)
    for error in errors:
        field, *inner = error["loc"]
        if inner and field == "inputs":
            inputs = dict(mended["inputs"])
            if inner[-1] == "[key]":  # the name itself is wrong: it cannot be referred to
                inputs.pop(inner[0], None)
            else:
                inputs[inner[0]] = _declared(document["inputs"][inner[0]])
            mended["inputs"] = inputs
        elif inner and field == "options":
            mended["options"] = {key: value for key, value in mended["options"].items() if key != inner[0]}
        elif inner and field == "phases":
            phases = list(mended["phases"])
            position, *in_phase = inner
            phase = phases[position]  # not a mapping when the problem is the phase itself
            phases[position] = {key: value for key, value in phase.items() if key != in_phase[0]} if in_phase else {}
            mended["phases"] = phases
        elif field in _STAND_INS:
            mended[field] = _STAND_INS[field]
        elif field not in Playbook.model_fields:
            mended.pop(field, None)
    return mended


def _declared(spec: Any) -> dict[str, Any]:
    """A stand-in for an input with a problem: still declared, so references to it stay sound."""
    kind = spec.get("type") if isinstance(spec, dict) else None
    return {"type": kind if kind in {known.value for known in InputType} else "string", "required": True}


def _planned(phase: Any) -> MissionPhase | None:
    """A phase as the plan sees it; one with bad fields counts without them, so the phases that
    depend on it or refer to it are checked against it. None without a sound ``phase_id``.
    """
    if not isinstance(phase, dict):
        return None
    try:
        return MissionPhase.model_validate(phase)
    except ValidationError as err:
        locations = [problem["loc"] for problem in err.errors() if problem["loc"]]
    bad = {location[0] for location in locations}
    if "phase_id" in bad:
        return None
    sound = {key: value for key, value in phase.items() if key not in bad}
    if "depends_on" in bad:  # still a phase of the graph, after its sound dependencies
        wrong = {location[1] for location in locations if location[0] == "depends_on" and len(location) > 1}
        listed = phase["depends_on"] if isinstance(phase["depends_on"], list) else []
        sound["depends_on"] = [dependency for position, dependency in enumerate(listed) if position not in wrong]
    try:
        return MissionPhase.model_validate({**_PHASE_STAND_INS, **sound})
    except ValidationError:
        return None


def _in_playbook(location: tuple[Any, ...], options: Mapping[str, Any]) -> tuple[Any, ...]:
    """A request field's location in the playbook's own terms: ``missions`` are its ``phases``,
    a field set by its options is under ``options``.
    """
    if location[:1] == ("missions",):
        return ("phases", *location[1:])
    if location[:1] and location[0] in options:
        return ("options", *location)
    return location


def _located(location: tuple[Any, ...]) -> str:
    """A location as text (``phases[2].depends_on``; a problem of a key is told at its key)."""
    text = ""
    for part in location:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "playbook"


def _message(problem: Mapping[str, Any]) -> str:
    return meaning(problem)


def playbooks_directory(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get(PLAYBOOKS_ENV) or DEFAULT_PLAYBOOKS_DIR)


def locate(playbook: str | Path, directory: Path | None = None) -> Path:
    """A playbook's file: ``playbook`` itself if it is a path or has a playbook's suffix, else the
    file of the playbook of that name in the playbooks directory (``find``). Every command that
    takes a playbook finds it so.
    """
    if isinstance(playbook, Path) or Path(playbook).suffix in SUFFIXES:
        return Path(playbook)
    return find(playbook, directory)


def find(name: str, directory: Path | None = None) -> Path:
    """The file of the playbook named ``name`` in the playbooks directory."""
    directory = directory or playbooks_directory()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise InvalidCrisisRequestError(f"{name!r} is not a playbook name: use letters, digits, '.', '_' and '-'.")
    for suffix in SUFFIXES:
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    raise PlaybookNotFoundError(
        f"No playbook {name!r} in {directory} (looked for {name}.yaml, .yml, .json, .toml): "
        f"check the name or set {PLAYBOOKS_ENV}."
    )


def listed(directory: Path | None = None) -> list[Path]:
    """The playbook files of the playbooks directory, by name."""
    directory = directory or playbooks_directory()
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if path.suffix in SUFFIXES and path.is_file())

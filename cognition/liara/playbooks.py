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
checked as any crisis request is; ``${phases...}`` references are left to the workflow. A
playbooks directory (``LIARA_PLAYBOOKS``, default ``playbooks/``) lets a playbook be named instead
of given by path.
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
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from app.temporal import plan
from app.temporal.errors import InvalidCrisisRequestError, PlaybookNotFoundError
from app.temporal.models import INPUT_NAME_PATTERN, CrisisRequest, MissionPhase, SafeId, strict_input
from app.temporal.validation import describe_validation_error

PLAYBOOKS_ENV = "LIARA_PLAYBOOKS"
DEFAULT_PLAYBOOKS_DIR = Path("playbooks")
SUFFIXES = (".yaml", ".yml", ".json", ".toml")
_INPUT_REFERENCE = re.compile(r"\$\{inputs\.([A-Za-z_][A-Za-z0-9_-]*)\}")
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


class Playbook(_Strict):
    """A playbook file as written (its phases are checked once rendered)."""

    name: SafeId
    description: str = ""
    inputs: dict[Annotated[str, Field(pattern=INPUT_NAME_PATTERN, max_length=64)], PlaybookInput] = Field(
        default_factory=dict
    )
    target_member: str
    options: dict[str, JsonValue] = Field(default_factory=dict)
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
        options).
        """
        values = self.values(given, placeholders=placeholders)
        fields = {"target_member": self.target_member, "missions": self.phases, **self.options}
        return {**_substitute(fields, values), "inputs": values, "playbook": self.name}


def _typed(playbook: str, name: str, kind: InputType, value: JsonValue) -> JsonValue:
    """An input's value as its declared type; a string from the command line is converted."""
    if isinstance(value, str) and kind != InputType.STRING:
        try:
            value = _from_text(kind, value)
        except ValueError:
            raise InvalidCrisisRequestError(
                f"Input {name!r} of playbook {playbook} is {kind.value}, not {value!r}."
            ) from None
    matches = {
        InputType.STRING: isinstance(value, str),
        InputType.INTEGER: isinstance(value, int) and not isinstance(value, bool),
        InputType.NUMBER: isinstance(value, int | float) and not isinstance(value, bool),
        InputType.BOOLEAN: isinstance(value, bool),
        InputType.OBJECT: isinstance(value, dict),
        InputType.ARRAY: isinstance(value, list),
    }[kind]
    if not matches:
        raise InvalidCrisisRequestError(f"Input {name!r} of playbook {playbook} is {kind.value}, not {value!r}.")
    return value


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


def _substitute(value: Any, inputs: Mapping[str, JsonValue]) -> Any:
    """``value`` with every ``${inputs.<name>}`` replaced (other references are left as they are)."""
    if isinstance(value, str):
        whole = _INPUT_REFERENCE.fullmatch(value)
        if whole and whole[1] in inputs:
            return inputs[whole[1]]

        def text(found: re.Match[str]) -> str:
            if found[1] not in inputs:
                return found[0]
            named = inputs[found[1]]
            return named if isinstance(named, str) else json.dumps(named)

        return _INPUT_REFERENCE.sub(text, value)
    if isinstance(value, list):
        return [_substitute(item, inputs) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, inputs) for key, item in value.items()}
    return value


# --- files ----------------------------------------------------------------------------------------


def load(path: Path) -> Playbook:
    """Read a playbook file; ``InvalidCrisisRequestError`` saying what is wrong and where."""
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
    try:
        return Playbook.model_validate(document)
    except ValidationError as err:
        raise InvalidCrisisRequestError(f"Playbook {path}: {describe_validation_error(err)}.") from None


def _format(path: Path) -> str:
    return {".json": "JSON", ".toml": "TOML"}.get(path.suffix, "YAML")


def problems(path: Path) -> list[str]:
    """Every problem of a playbook, each with its location; empty when it is sound.

    Required inputs take placeholders, so the plan (phases, dependencies, references) is checked
    without real values; the plan is checked even when some phases have bad fields.
    """
    try:
        playbook = load(path)
        rendered = playbook.render({}, placeholders=True)
    except InvalidCrisisRequestError as err:
        return [str(err)]
    found: list[str] = []
    try:
        strict_input(CrisisRequest, {**rendered, "initiated_by": "playbook-check", "crisis_id": "playbook-check"})
    except ValidationError as err:
        # A problem of the plan as a whole (no location) is told below, phase by phase.
        found += [f"{_located(problem['loc'])}: {_message(problem)}" for problem in err.errors() if problem["loc"]]
    phases = []
    for phase in rendered["missions"]:
        try:
            phases.append(MissionPhase.model_validate(phase))
        except ValidationError:
            continue  # its fields are told above
    found += [f"phases: {problem}" for problem in plan.problems(phases, rendered["inputs"])]
    return found


def _located(location: tuple[Any, ...]) -> str:
    """A request field's location in the playbook's own terms (``phases[2].depends_on``)."""
    parts = list(location)
    if parts[:1] == ["missions"]:
        parts[0] = "phases"
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "playbook"


def _message(problem: Mapping[str, Any]) -> str:
    return str(problem["msg"]).removeprefix("Value error, ")


def playbooks_directory(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get(PLAYBOOKS_ENV) or DEFAULT_PLAYBOOKS_DIR)


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

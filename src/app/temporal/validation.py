"""Checking a crisis request: what is wrong with it, in one line, and the check the workflow runs.

What pydantic says is put in words a user can act on (``meaning``): what a pattern means, not the
pattern; "give at least one phase", not a list's length; no "Value error," prefix. Each problem
keeps where it is (``FieldProblem``), so that every interface names it in its own words: the
Python API by its field (``missions.0.target``), the command line by its flag
(``--retry-maximum-interval``), the HTTP API by a JSON pointer (``/missions/0/target``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue, ValidationError
from pydantic_core import ErrorDetails
from temporalio.exceptions import ApplicationError

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.models import (
    ACTION_PATTERN,
    INPUT_NAME_PATTERN,
    INVALID_REQUEST_ERROR,
    MAX_PHASES,
    PERSON_PATTERN,
    SAFE_ID_PATTERN,
    CrisisRequest,
)

#: Problems named in one message; a request with thousands of bad phases still gets one line.
MAX_DESCRIBED_PROBLEMS = 5
#: What the patterns of the models mean, instead of pydantic's "String should match pattern '^...$'".
_PATTERN_MEANINGS = {
    SAFE_ID_PATTERN: "use only letters, digits, '.', '_' and '-', starting with a letter or digit",
    ACTION_PATTERN: "use a word of letters, digits, '_' and '-', starting with a letter",
    PERSON_PATTERN: "use no '\"', backslash or control character, and no quote (') at either end",
    INPUT_NAME_PATTERN: "use only letters, digits, '_' and '-', starting with a letter or '_'",
    r"^[!-~]+$": "use only printable ASCII characters, without spaces",
    r"^[0-9a-f]{64}$": "use 64 lowercase hexadecimal digits",
}
#: Patterns known by how they begin (a URL's, wherever it is declared).
_PATTERN_PREFIXES = {r"^https?://": "give an http:// or https:// URL"}
#: Type errors whose message names a class of the code ("a valid dictionary or instance of
#: MissionPhase"), in the words of JSON, which is what people write.
_OBJECT_TYPES = frozenset({"model_type", "model_attributes_type", "dataclass_type"})

#: Where a problem is in what was given: field names and list positions (``("missions", 0, "target")``).
Location = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with what was given: where, and what it means (never a pattern or a class)."""

    location: Location
    message: str


def meaning(problem: ErrorDetails | Mapping[str, Any]) -> str:
    """What one of pydantic's problems means, in words a user can act on."""
    kind, message = problem["type"], str(problem["msg"])
    context = problem.get("ctx") or {}
    location = tuple(problem.get("loc") or ())
    if kind == "string_pattern_mismatch":
        pattern = str(context.get("pattern"))
        known = _PATTERN_MEANINGS.get(pattern) or next(
            (meant for prefix, meant in _PATTERN_PREFIXES.items() if pattern.startswith(prefix)), None
        )
        return known or "is not in the form it should have"
    if kind in ("value_error", "assertion_error"):
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("too_short", "too_long") and isinstance(problem.get("input"), list | tuple):
        return _count_meaning(kind, location, context)
    if kind in _OBJECT_TYPES:
        return "Input should be an object"
    return message


def _count_meaning(kind: str, location: Location, context: Mapping[str, Any]) -> str:
    """A list that is too short or too long, in words: phases where the list holds phases."""
    phases = bool(location) and location[-1] in ("missions", "phases")
    noun, nouns = ("phase", "phases") if phases else ("item", "items")
    actual = context.get("actual_length", 0)
    if kind == "too_short":
        least = context.get("min_length", 1)
        return f"give at least one {noun}" if least == 1 else f"give at least {least} {nouns}, not {actual}"
    most = context.get("max_length", MAX_PHASES if phases else 0)
    return f"give at most {most} {nouns}, not {actual}"


def problems_of(err: ValidationError | Iterable[ErrorDetails], within: Location = ()) -> list[FieldProblem]:
    """Each of pydantic's problems, where it is (under ``within``) and what it means."""
    details = err.errors() if isinstance(err, ValidationError) else err
    return [
        FieldProblem((*within, *(part for part in problem["loc"] if part != "[key]")), meaning(problem))
        for problem in details
    ]


def dotted(location: Location) -> str:
    """A location as the Python API names it: ``missions.0.target``."""
    return ".".join(str(part) for part in location)


def pointer(location: Location) -> str:
    """A location as a JSON pointer (RFC 6901), as the HTTP API names it: ``/missions/0/target``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


def phrase(problem: FieldProblem, name: Callable[[Location], str] = dotted) -> str:
    """``where: what`` (``what`` alone for a problem of the whole request)."""
    where = name(problem.location) if problem.location else ""
    return f"{where}: {problem.message}" if where else problem.message


def describe_problems(phrases: Sequence[str]) -> str:
    """Problems as one line: at most ``MAX_DESCRIBED_PROBLEMS`` of them, and how many more there are."""
    described = "; ".join(phrases[:MAX_DESCRIBED_PROBLEMS])
    if len(phrases) > MAX_DESCRIBED_PROBLEMS:
        described += f" (and {len(phrases) - MAX_DESCRIBED_PROBLEMS} more problems)"
    return described


def describe_validation_error(err: ValidationError) -> str:
    """Pydantic's errors as ``field.path: meaning; ...`` (one line, field-level, at most
    ``MAX_DESCRIBED_PROBLEMS`` of them and how many more there are).
    """
    return describe_problems([phrase(problem) for problem in problems_of(err)])


class InvalidFieldsError(InvalidCrisisRequestError):
    """A request refused for its fields: ``subject: where: what; ...``. Its ``problems`` let
    each interface name the fields in its own words (``reworded``); ``phrases`` are how this
    message says each (``where: what`` by default).
    """

    def __init__(self, subject: str, problems: Sequence[FieldProblem], phrases: Sequence[str] | None = None) -> None:
        said = list(phrases) if phrases is not None else [phrase(problem) for problem in problems]
        # One phrase once: a target given once and copied into every phase is one problem to the user.
        said = list(dict.fromkeys(said))
        super().__init__(f"{subject}: {describe_problems(said)}.")
        self.subject = subject
        self.problems = tuple(problems)
        self.phrases = tuple(phrases) if phrases is not None else tuple(phrase(problem) for problem in problems)

    @classmethod
    def of(cls, subject: str, err: ValidationError, within: Location = ()) -> InvalidFieldsError:
        return cls(subject, problems_of(err, within))

    def reworded(self, word: Callable[[FieldProblem], str | None], subject: str | None = None) -> InvalidFieldsError:
        """This error with each problem that ``word`` phrases its own way (``None``: as it was),
        and another ``subject`` if given.
        """
        return InvalidFieldsError(
            subject or self.subject,
            self.problems,
            [word(problem) or said for problem, said in zip(self.problems, self.phrases, strict=True)],
        )


#: The workflow's input as the converter decodes it: a ``CrisisRequest``, or any other JSON
#: (a request that breaks a rule), which the workflow refuses with the reasons in one line
#: instead of failing its task over and over on a raw pydantic message.
CrisisInput = CrisisRequest | JsonValue


def check_crisis_request(request: CrisisInput) -> CrisisRequest:
    """The workflow's input as a valid ``CrisisRequest``.

    A request that breaks a rule (one built by hand, bypassing the agency) fails its crisis at
    once with a non-retryable ``InvalidCrisisRequest``: retrying cannot fix it. Fields this
    release does not know (sent by a newer agency) are ignored. Deterministic, so the workflow
    runs it itself.
    """
    # Checked again even when decoded as one: an in-process caller may hand over an unchecked model.
    fields = request.model_dump() if isinstance(request, CrisisRequest) else request
    try:
        return CrisisRequest.model_validate(fields)
    except ValidationError as err:
        raise ApplicationError(
            f"invalid crisis request: {describe_validation_error(err)}",
            type=INVALID_REQUEST_ERROR,
            non_retryable=True,
        ) from None

"""Checking a crisis request: what is wrong with it, in one line, and the check the workflow runs."""

from __future__ import annotations

from pydantic import JsonValue, ValidationError
from temporalio.exceptions import ApplicationError

from app.temporal.models import (
    ACTION_PATTERN,
    INVALID_REQUEST_ERROR,
    MAX_PHASES,
    PERSON_PATTERN,
    SAFE_ID_PATTERN,
    CrisisRequest,
)

#: Problems named in one message; a request with thousands of bad phases still gets one line.
MAX_DESCRIBED_PROBLEMS = 5
#: What the id and action patterns mean, instead of pydantic's "String should match pattern '^...$'".
_PATTERN_MEANINGS = {
    SAFE_ID_PATTERN: "use only letters, digits, '.', '_' and '-', starting with a letter or digit",
    ACTION_PATTERN: "use a word of letters, digits, '_' and '-', starting with a letter",
    PERSON_PATTERN: "use no '\"', backslash or control character, and no quote (') at either end",
}


def describe_validation_error(err: ValidationError) -> str:
    """Pydantic's errors as ``field.path: message; ...`` (one line, field-level, at most
    ``MAX_DESCRIBED_PROBLEMS`` of them and how many more there are).
    """
    problems = err.errors()
    parts = []
    for problem in problems[:MAX_DESCRIBED_PROBLEMS]:
        location = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"]
        context = problem.get("ctx") or {}
        if problem["type"] == "string_pattern_mismatch":
            message = _PATTERN_MEANINGS.get(str(context.get("pattern")), message)
        elif problem["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        elif problem["loc"] == ("missions",) and problem["type"] in ("too_short", "too_long"):
            message = f"a crisis has 1 to {MAX_PHASES} phases, not {context.get('actual_length', 0)}"
        parts.append(f"{location}: {message}" if location else message)
    described = "; ".join(parts)
    if len(problems) > MAX_DESCRIBED_PROBLEMS:
        described += f" (and {len(problems) - MAX_DESCRIBED_PROBLEMS} more problems)"
    return described


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

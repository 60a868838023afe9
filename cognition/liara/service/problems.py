"""Every error the service answers, as an RFC 9457 problem (``application/problem+json``).

``type`` names the problem (``/problems/<slug>``, listed in docs/guides/http-service.md), ``title`` is its short
summary, ``detail`` one sentence about this occurrence and, for a request that breaks the
contract (422), ``errors`` lists each bad field. The agency's ``LiaraError``s get their status
here, in ``LIARA_PROBLEMS``, and nowhere else; anything unexpected is a 500 whose detail says
only that, and the traceback goes to the service's log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from app.temporal.errors import LiaraError
from app.temporal.validation import FieldProblem as RequestProblem
from app.temporal.validation import InvalidFieldsError, describe_problems, dotted, phrase, pointer, problems_of
from cognition.liara.service.problem_types import (
    BODY_TOO_LARGE,
    INTERNAL,
    INVALID_REQUEST,
    LIARA_PROBLEMS,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    RETRY_AFTER_SECONDS,
    TEMPORAL_BUSY,
    ProblemType,
)

MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger("liara.service")


class FieldProblem(BaseModel):
    """One bad part of a request: where (``body.missions.0.priority``, ``query.limit``) and why."""

    field: str
    pointer: str | None = Field(
        default=None,
        description="Where in the body, as a JSON pointer (`/missions/0/priority`; empty for the whole body).",
    )
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(description="The problem's type, a URI reference: /problems/<slug>.")
    title: str
    status: int
    detail: str = Field(description="What went wrong this time, in one sentence.")
    errors: list[FieldProblem] | None = Field(default=None, description="Each bad field (422 only).")


#: What the framework itself refuses (no route, wrong method, body past the limit).
_HTTP_PROBLEMS = {kind.status: kind for kind in (NOT_FOUND, METHOD_NOT_ALLOWED, BODY_TOO_LARGE)}


class ProblemError(Exception):
    """Raised by the service itself (auth, limits) to answer with a problem."""

    def __init__(self, kind: ProblemType, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})


def problem_type_of(err: LiaraError) -> ProblemType:
    return next(LIARA_PROBLEMS[cls] for cls in type(err).__mro__ if cls in LIARA_PROBLEMS)


def problem_body(kind: ProblemType, detail: str, errors: Sequence[FieldProblem] | None = None) -> dict[str, Any]:
    problem = Problem(
        type=f"/problems/{kind.slug}",
        title=kind.title,
        status=kind.status,
        detail=detail,
        errors=list(errors) if errors is not None else None,
    )
    return problem.model_dump(mode="json", exclude_none=True)


def problem_response(
    kind: ProblemType,
    detail: str,
    *,
    errors: Sequence[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(kind, detail, errors), status_code=kind.status, headers=headers, media_type=MEDIA_TYPE
    )


#: How the parts of a request other than its body are named.
_PARTS = {"query": "query parameter", "header": "header", "path": "path parameter", "cookie": "cookie"}


def _named(problem: RequestProblem) -> str:
    """Where a problem of a request is, in the words of HTTP: a JSON pointer into the body
    (``/missions/0/target``), ``query parameter limit``, ``header Idempotency-Key``...
    """
    part, *rest = problem.location or ("body",)
    if part == "body":
        return pointer(tuple(rest)) or "the body"
    return f"{_PARTS.get(str(part), part)} {dotted(tuple(rest))}".strip()


def _field_problem(problem: RequestProblem) -> FieldProblem:
    part, *rest = problem.location or ("body",)
    return FieldProblem(
        field=dotted(problem.location) or "body",
        pointer=pointer(tuple(rest)) if part == "body" else None,
        message=problem.message,
    )


def _json_error(err: RequestValidationError) -> str | None:
    """What is wrong with a body that is not JSON, with where (line and column), if that is the problem."""
    problem = next((problem for problem in err.errors() if problem.get("type") == "json_invalid"), None)
    if problem is None:
        return None
    text = err.body if isinstance(err.body, str) else ""
    position = problem["loc"][-1] if isinstance(problem["loc"][-1], int) else 0
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    reason = str((problem.get("ctx") or {}).get("error") or "it does not parse").rstrip(".")
    return f"The request body is not valid JSON: {reason} at line {line}, column {column}."


async def _on_validation_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    not_json = _json_error(err)
    if not_json:
        return problem_response(
            INVALID_REQUEST, not_json, errors=[FieldProblem(field="body", pointer="", message=not_json)]
        )
    # Its errors() have pydantic's shape, so the agency's own description reads them too.
    problems = problems_of(err.errors())
    detail = f"Invalid request: {describe_problems([f'{_named(problem)}: {problem.message}' for problem in problems])}."
    return problem_response(INVALID_REQUEST, detail, errors=[_field_problem(problem) for problem in problems])


def _body_fields(request: Request) -> frozenset[str]:
    """The fields of the body the route takes, if it takes one."""
    body = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(body, "field_info", None), "annotation", None)
    fields = getattr(model, "model_fields", None)
    return frozenset(fields) if isinstance(fields, dict) else frozenset()


async def _on_invalid_fields(request: Request, err: Exception) -> JSONResponse:
    """A request the agency refuses for its fields: those the body has named by JSON pointer."""
    assert isinstance(err, InvalidFieldsError)
    in_body = _body_fields(request)

    def in_the_body(problem: RequestProblem) -> bool:
        return bool(problem.location) and problem.location[0] in in_body

    # A field of the body is named by its JSON pointer (a problem said in words of its own, as a
    # playbook's input is, stays so).
    phrases = [
        f"{pointer(problem.location)}: {problem.message}" if in_the_body(problem) and said == phrase(problem) else said
        for problem, said in zip(err.problems, err.phrases, strict=True)
    ]
    reworded = str(InvalidFieldsError(err.subject, err.problems, phrases))
    errors = [
        _field_problem(RequestProblem(("body", *problem.location), problem.message))
        for problem in err.problems
        if in_the_body(problem)
    ]
    if len(errors) < len(err.problems):  # the rest are not the body's (a playbook's own phases, the plan)
        errors.append(FieldProblem(field="request", message=reworded))
    return problem_response(INVALID_REQUEST, reworded, errors=errors)


async def _on_liara_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, LiaraError)
    kind = problem_type_of(err)
    errors = [FieldProblem(field="request", message=str(err))] if kind is INVALID_REQUEST else None
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if kind is TEMPORAL_BUSY else None
    return problem_response(kind, str(err), errors=errors, headers=headers)


async def _on_problem(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, ProblemError)
    return problem_response(err.kind, err.detail, headers=err.headers)


async def _on_http_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, HTTPException)
    if err.status_code == 400:  # the framework's only 400: a body it cannot decode (not UTF-8 JSON)
        detail = "The request body is not valid JSON in UTF-8."
        return problem_response(INVALID_REQUEST, detail, errors=[FieldProblem(field="body", message=detail)])
    kind = _HTTP_PROBLEMS.get(err.status_code, ProblemType("http-error", err.status_code, "HTTP error"))
    detail = {
        404: f"No endpoint at {request.url.path}: see /docs for the API.",
        405: f"{request.url.path} does not answer {request.method}: see /docs for the API.",
    }.get(err.status_code, str(err.detail).rstrip(".") + ".")
    return problem_response(kind, detail, headers=err.headers)


async def _on_unexpected(request: Request, err: Exception) -> JSONResponse:
    logger.error("Unexpected error answering %s %s", request.method, request.url.path, exc_info=err)
    return problem_response(INTERNAL, "The service failed unexpectedly: its log has the details.")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(InvalidFieldsError, _on_invalid_fields)
    app.add_exception_handler(LiaraError, _on_liara_error)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of these problem statuses (``add_problem_schema`` adds Problem)."""
    return {
        status: {
            "description": "A problem (RFC 9457)",
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def add_problem_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the Problem schema (and what it refers to) to an OpenAPI document's components."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(schema.pop("$defs", {}))
    schemas["Problem"] = schema
    return openapi

"""Every error the service answers, as an RFC 9457 problem (``application/problem+json``).

``type`` names the problem (``/problems/<slug>``, listed in the README), ``title`` is its short
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
from app.temporal.validation import describe_validation_error
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


class _OneProblem:
    """One of a validation error's problems, without its place, as ``describe_validation_error``
    reads a whole error: its message then says what a pattern means, not the pattern.
    """

    def __init__(self, problem: Any) -> None:
        self.problem = {**problem, "loc": ()}

    def errors(self) -> list[Any]:
        return [self.problem]


def _field_problems(err: RequestValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(
            field=".".join(str(part) for part in problem["loc"]),
            message=describe_validation_error(_OneProblem(problem)),  # type: ignore[arg-type]
        )
        for problem in err.errors()
    ]


async def _on_validation_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    # Its errors() have pydantic's shape, so the agency's one-line description reads them too.
    detail = f"Invalid request: {describe_validation_error(err)}."  # type: ignore[arg-type]
    return problem_response(INVALID_REQUEST, detail, errors=_field_problems(err))


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

"""The operator console: its page at ``/``, its files under ``/console/``, and ``/v1/console``,
what it needs to know besides the API.

The page and its files carry a strict policy: only this origin's own scripts, styles and
connections, no inline code, never framed, no content-type guessing. They need no token: the
page asks for one and sends it with each call of the API.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.temporal.models import MAX_PARALLEL
from app.temporal.visibility import CRISIS_STATUSES
from cognition.liara.console import ASSETS
from cognition.liara.service.deps import Agency, Viewer
from cognition.liara.service.problems import problem_responses
from cognition.liara.service.schemas import ConsoleSettings

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load, so a new release's files are never mixed with an old one's.
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["console"])


class ConsoleFiles(StaticFiles):
    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(ASSETS / "index.html", headers=SECURITY_HEADERS)


@router.get("/v1/console", response_model=ConsoleSettings, responses=problem_responses(401, 403, 503))
async def console_settings(_viewer: Viewer, agency: Agency, request: Request) -> ConsoleSettings:
    """The namespace and Temporal Web UI to link crises to, the statuses to filter by, and the
    most a start's ``max_parallel`` may be.
    """
    return ConsoleSettings(
        namespace=agency.settings.namespace,
        web_ui_url=request.app.state.settings.web_ui_url,
        statuses=list(CRISIS_STATUSES),
        max_parallel=MAX_PARALLEL,
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console", ConsoleFiles(directory=ASSETS), name="console")

"""The dependencies routes declare: the one agency, its bounded lookups, and who calls with
which right.

``Caller`` is whoever the token file knows; ``Viewer``, ``Operator`` and ``Approver`` are the
caller's identity, once its token allows the route: viewers read and stream, operators also
start, cancel and extend crises, approvers also decide on phases, admins do everything. A
service started without a token file (on loopback only) treats every caller as ``local``, an
admin.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.service.lookups import CrisisLookups
from cognition.liara.service.problem_types import FORBIDDEN, UNAUTHORIZED
from cognition.liara.service.problems import ProblemError
from cognition.liara.service.quotas import Quota
from cognition.liara.service.start_quotas import StartQuotas
from cognition.liara.service.tokens import Identity, Role, TokenVerifier

LOCAL_IDENTITY = Identity("local", Role.ADMIN)


class Permission(StrEnum):
    READ = "read crises"
    OPERATE = "start, cancel or extend crises"
    DECIDE = "approve or reject phases"


PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.OPERATE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.DECIDE}),
    Role.ADMIN: frozenset(Permission),
}

#: A permission as clients see it: ``read``, ``operate`` or ``decide``.
if TYPE_CHECKING:
    PermissionName = str
else:  # one of the permissions' names, which the API document lists
    PermissionName = Literal[tuple(permission.name.lower() for permission in Permission)]


def permission_names(role: Role) -> list[str]:
    """What ``role`` allows, by name (``GET /v1/me``: clients offer only that)."""
    return [permission.name.lower() for permission in Permission if permission in PERMISSIONS[role]]


_bearer = HTTPBearer(auto_error=False, description="A token of `liara token create`")


def get_agency(request: Request) -> LiaraTemporalAgency:
    return request.app.state.agency


Agency = Annotated[LiaraTemporalAgency, Depends(get_agency)]


def get_lookups(request: Request) -> CrisisLookups:
    return request.app.state.lookups


Lookups = Annotated[CrisisLookups, Depends(get_lookups)]


def get_long_polls(request: Request) -> Quota:
    return request.app.state.long_polls


LongPolls = Annotated[Quota, Depends(get_long_polls)]


def get_start_quotas(request: Request) -> StartQuotas:
    return request.app.state.start_quotas


StartLimits = Annotated[StartQuotas, Depends(get_start_quotas)]


def current_identity(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Identity:
    """Who the bearer token stands for; 401 without one the token file knows."""
    verifier: TokenVerifier | None = request.app.state.tokens
    if verifier is None:
        return LOCAL_IDENTITY
    if credentials is None:
        raise ProblemError(
            UNAUTHORIZED,
            "This service needs an `Authorization: Bearer <token>` header with a token of `liara token create`.",
            {"WWW-Authenticate": 'Bearer realm="liara"'},
        )
    identity = verifier.identify(credentials.credentials)
    if identity is None:
        raise ProblemError(
            UNAUTHORIZED,
            "The bearer token is not one of this service's tokens (or it was revoked).",
            {"WWW-Authenticate": 'Bearer realm="liara", error="invalid_token"'},
        )
    return identity


def _allowed(permission: Permission) -> Callable[[Identity], Identity]:
    def check(identity: Annotated[Identity, Depends(current_identity)]) -> Identity:
        if permission not in PERMISSIONS[identity.role]:
            raise ProblemError(
                FORBIDDEN, f"Token {identity.name!r} has role {identity.role}, which may not {permission}."
            )
        return identity

    return check


#: Any caller the token file knows, whatever its role.
Caller = Annotated[Identity, Depends(current_identity)]
Viewer = Annotated[Identity, Depends(_allowed(Permission.READ))]
Operator = Annotated[Identity, Depends(_allowed(Permission.OPERATE))]
Approver = Annotated[Identity, Depends(_allowed(Permission.DECIDE))]

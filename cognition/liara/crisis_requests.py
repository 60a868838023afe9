"""Building a crisis request from what a caller gives, checked strictly (its ids are app.temporal.identity's)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from app.temporal.errors import InvalidCrisisRequestError
from app.temporal.identity import crisis_id_for_key, new_crisis_id, reserved_crisis_id
from app.temporal.models import CrisisRequest, MissionPhase, strict_input
from app.temporal.notifications import notification_task_queue
from app.temporal.notifier import CrisisWebhooks, configured_crisis_webhooks
from app.temporal.validation import FieldProblem, InvalidFieldsError, problems_of
from cognition.liara.approval_policy import POLICY_ONLY, ApprovalPolicy

#: Memo key of the digest of the request a crisis was started with (compared when a key is reused).
REQUEST_DIGEST_MEMO = "liara_request_sha256"


def request_digest(request: CrisisRequest) -> str:
    """SHA-256 of a request as it is started, its crisis id aside."""
    fields = request.model_dump(mode="json", exclude={"crisis_id"})
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def build_request(
    *,
    target_member: str,
    missions: Iterable[MissionPhase | Mapping[str, Any]],
    initiated_by: str = "unknown",
    crisis_id: str | None = None,
    idempotency_key: str | None = None,
    webhooks: Iterable[str] | None = None,
    **options: Any,
) -> CrisisRequest:
    """Validate everything a crisis needs; raise ``InvalidCrisisRequestError`` naming each bad field.

    The crisis id is the caller's ``crisis_id`` (never of the forms the agency keeps for its own
    ids, ``app.temporal.identity.reserved_crisis_id``), else the one ``idempotency_key`` stands
    for, else a generated one.

    ``webhooks`` names webhooks configured where notifications are delivered (``liara serve``,
    ``liara notifier``), to which those of this machine's configuration marked ``all_crises`` are
    added; each name must be defined in this machine's configuration too (a name it does not
    define is refused, naming the file, rather than retried for a week by the notifier).
    ``options`` are further ``CrisisRequest`` fields: ``retry``, ``phase_timeout_seconds``,
    ``heartbeat_timeout_seconds``, ``failure_policy``.
    """
    fields: dict[str, Any] = {
        "target_member": target_member,
        "missions": _plain_list(missions, "Invalid crisis request: missions"),
        "initiated_by": initiated_by,
        **{name: _plain(value) for name, value in options.items() if value is not None},
    }
    _refuse_policy_fields(fields["missions"], options)
    configured = configured_crisis_webhooks()
    named = list(webhooks or [])
    told = named + [name for name in configured.all_crises if name not in named]
    if told:
        fields["notifications"] = {"webhooks": told, "task_queue": notification_task_queue()}
    keyed = crisis_id_for_key(idempotency_key) if crisis_id is None and idempotency_key is not None else None
    reserved = reserved_crisis_id(crisis_id) if isinstance(crisis_id, str) else None
    refused = [FieldProblem(("crisis_id",), reserved)] if reserved else []
    try:
        # Check the target first so a generated crisis id is built from a valid one.
        strict_input(CrisisRequest, {**fields, "crisis_id": "check"})
        # An empty crisis id is refused like any other bad one, not replaced by a generated id.
        chosen = crisis_id if crisis_id is not None else keyed or new_crisis_id(target_member.strip())
        request = strict_input(CrisisRequest, {**fields, "crisis_id": chosen})
    except ValidationError as err:
        problems = problems_of(err)
        if any(problem.location[:1] == ("crisis_id",) for problem in problems):
            refused = []  # an id that breaks the rules of every id: that is what to say of it
        raise InvalidFieldsError("Invalid crisis request", [*problems, *refused]) from None
    if refused:
        raise InvalidFieldsError("Invalid crisis request", refused)
    _check_defined(named, configured)
    policy = ApprovalPolicy.configured()
    return request.model_copy(
        update={"missions": policy.apply(request.missions), "self_approval": policy.self_approval}
    )


def _check_defined(named: list[str], configured: CrisisWebhooks) -> None:
    """Refuse webhook names this machine's configuration does not define (each at its place,
    ``webhooks.N``): the notifier would retry their deliveries for a week before giving up.
    """
    if configured.path is None:
        where = (
            "is not a webhook defined here: no configuration file defines webhooks (liara.toml in this "
            "directory, or the file LIARA_CONFIG names)"
        )
    else:
        defines = f"it defines {', '.join(configured.defined)}" if configured.defined else "it defines none"
        where = f"is not a webhook of configuration file {configured.path} ({defines})"
    problems = [
        FieldProblem(("webhooks", index), f"{name!r} {where}")
        for index, name in enumerate(named)
        if name not in configured.defined
    ]
    if problems:
        raise InvalidFieldsError("Invalid crisis request", problems)


def build_phases(missions: Iterable[MissionPhase | Mapping[str, Any]]) -> list[MissionPhase]:
    """Validate phases to add to a running crisis."""
    plain = _plain_list(missions, "Invalid mission phases: the phases to add")
    if not plain:
        raise InvalidFieldsError("Invalid mission phases", [FieldProblem(("missions",), "give at least one phase")])
    _refuse_policy_fields(plain, {})
    phases = []
    for position, phase in enumerate(plain):
        try:
            phases.append(strict_input(MissionPhase, phase))
        except ValidationError as err:
            raise InvalidFieldsError.of("Invalid mission phase", err, within=("missions", position)) from None
    return ApprovalPolicy.configured().apply(phases)


def _refuse_policy_fields(missions: list[Any], options: Mapping[str, Any]) -> None:
    """What the approval policy sets is not a request's to give."""
    said = POLICY_ONLY
    problems = [
        FieldProblem(("missions", position, "approvers"), said)
        for position, phase in enumerate(missions)
        if isinstance(phase, Mapping) and phase.get("approvers") is not None
    ]
    if options.get("self_approval") is not None:
        problems.append(FieldProblem(("self_approval",), said))
    if problems:
        raise InvalidFieldsError("Invalid crisis request", problems)


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def _plain_list(missions: Any, what: str) -> list[Any]:
    """The phases as a list; a string, a mapping or a non-iterable is refused, not iterated."""
    if isinstance(missions, str | bytes | Mapping | BaseModel) or not isinstance(missions, Iterable):
        raise InvalidCrisisRequestError(f"{what} must be a list of phases, not {type(missions).__name__}.")
    return [_plain(m) for m in missions]

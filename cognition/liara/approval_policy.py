"""The approval policy: which phases wait for a decision, how many approvers they need and who may
decide, from ``[approvals]`` in ``liara.toml``, applied to every crisis that starts or grows here
(the Python API, the command line, the service, playbooks and schedules all start crises through
``cognition.liara.crisis_requests``). A crisis's author can ask for more than the policy does,
never for less.

    [approvals]
    self_approval = false                # four eyes: whoever started a crisis cannot decide its gates

    [approvals.actions."rotate-*"]       # the first pattern that matches a phase's action applies
    approvals = 2                        # distinct approvers, at least
    approvers = ["alice", "bob"]         # these token names may decide,
    roles = ["approver"]                 # and anyone deciding with this role (through the service)

A rule with neither ``approvers`` nor ``roles`` lets anyone who may decide do so. The workflow
itself holds each decision to the policy its phase carries (see app.temporal.crisis.approvals).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from app.temporal.config import ApprovalRule, ConfigError, load_config
from app.temporal.models import Approvers, MissionPhase
from cognition.liara.service.tokens import Role

#: What a request that tries to set what the policy sets is told.
POLICY_ONLY = "is set by the approval policy ([approvals] of liara.toml), not by a request"


@dataclass(frozen=True)
class ApprovalPolicy:
    self_approval: bool
    rules: Mapping[str, ApprovalRule]

    @classmethod
    def configured(cls, environ: Mapping[str, str] = os.environ) -> ApprovalPolicy:
        """The policy of this machine's configuration (four eyes and no rules without a file)."""
        config = load_config(environ=environ)
        section = config.approvals
        roles = {role.value for role in Role}
        for pattern, rule in section.actions.items():
            unknown = [role for role in rule.roles if role not in roles]
            if unknown:
                raise ConfigError(
                    f"{config.where} names an unknown role {unknown[0]!r} in approvals.actions.{pattern}.roles "
                    f"(the roles are {', '.join(sorted(roles))})."
                )
        return cls(self_approval=section.self_approval, rules=section.actions)

    def rule_for(self, action: str) -> ApprovalRule | None:
        return next((rule for pattern, rule in self.rules.items() if fnmatchcase(action, pattern)), None)

    def apply(self, phases: Sequence[MissionPhase]) -> list[MissionPhase]:
        """``phases`` with the gates the policy sets: a phase it names waits for at least its
        approvals, decided by whom it allows.
        """
        governed = []
        for phase in phases:
            rule = self.rule_for(phase.action)
            if rule is None:
                governed.append(phase)
                continue
            approvers = Approvers(names=rule.approvers, roles=rule.roles) if rule.approvers or rule.roles else None
            governed.append(
                phase.model_copy(
                    update={
                        "requires_approval": True,
                        "approvals_required": max(phase.approvals_required, rule.approvals),
                        "approvers": approvers,
                    }
                )
            )
        return governed

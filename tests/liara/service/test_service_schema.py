"""The service keeps its own contract: schemathesis generates requests from the OpenAPI document
the real ``liara serve`` subprocess serves, requests that fit it and requests that break it, and
checks every answer: no 5xx, only documented statuses, content types and headers, every body as
its schema says, and the token is enforced where the document says it is needed.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.temporal.models import CrisisRequest
from cognition.liara.service.schemas import StartCrisis

pytestmark = pytest.mark.integration

#: Examples per generation mode, across every operation: enough to reach each several times,
#: few enough that the test takes well under a minute.
EXAMPLES = 300


def keeps_rules_no_schema_states(case: schemathesis.Case) -> bool:
    """Whether a request keeps the rules JSON Schema cannot state, which a request that fits the
    document may still break, rightly getting a 422: a cursor is one a listing gave out (it is
    opaque), a playbook's inputs are the ones that playbook declares, and a crisis keeps the rules
    its validators state in code (``value_error``: phase ids unique, retry intervals in order, a
    sound plan) and names only webhooks the service's configuration defines (this service's
    defines none). A field the document describes wrongly fails with another error type, so it is
    still caught.
    """
    if (case.query or {}).get("cursor") is not None:
        return False
    if case.path == "/v1/playbooks/{name}/crises":
        return False
    body = case.body
    if not isinstance(body, dict) or "missions" not in body:
        return True
    if body.get("webhooks"):
        return False
    if case.path == "/v1/crises/{workflow_id}/phases":  # added phases keep a crisis's rules too
        body = {"target_member": "t", "missions": body["missions"]}
    try:
        start = StartCrisis.model_validate(body)  # as the service takes it (2.0 as 2, say)
        CrisisRequest.model_validate({"target_member": "t", **start.model_dump(exclude_none=True), "crisis_id": "c"})
    except ValidationError as err:
        return not all(problem["type"] == "value_error" for problem in err.errors())
    return True


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_every_answer_keeps_the_contract(liara_service, service_tokens, mode):
    schema = schemathesis.openapi.from_url(f"{liara_service.url}/openapi.json")
    admin = service_tokens.headers("admin-1")
    cases = schema.as_strategy(generation_mode=mode)
    if mode.is_positive:
        cases = cases.filter(keeps_rules_no_schema_states)

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def keeps_the_contract(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=admin, timeout=90)

    keeps_the_contract()


def chain(size: int, *, closed: bool = False) -> list[dict[str, object]]:
    """``size`` phases, each depending on the next one, listed first to last (so a check that
    follows dependencies goes ``size`` deep); ``closed``: the last depends on the first.
    """
    phases = [
        {"phase_id": f"p{i}", "agent_id": "a", "action": "scan", "target": "t", "depends_on": [f"p{i + 1}"]}
        for i in range(size)
    ]
    phases[-1]["depends_on"] = ["p0"] if closed else []
    return phases


@given(size=st.sampled_from([2, 50, 999, 1000]), closed=st.booleans(), fan_in=st.booleans())
@settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_deep_and_wide_graphs_never_get_a_5xx(liara_service, service_tokens, size, closed, fan_in):
    missions = chain(size, closed=closed)
    if fan_in:  # and one more phase that depends on every other
        missions.append(
            {
                "phase_id": "last",
                "agent_id": "a",
                "action": "scan",
                "target": "t",
                "depends_on": [phase["phase_id"] for phase in missions],
            }
        )
    admin = service_tokens.headers("admin-1")
    answer = httpx.post(
        f"{liara_service.url}/v1/crises",
        json={"target_member": "t", "missions": missions, "crisis_id": f"deep-{uuid.uuid4().hex[:12]}"},
        headers=admin,
        timeout=60,
    )
    assert answer.status_code < 500, answer.text
    if len(missions) > 1000:
        assert answer.status_code == 422, answer.text
    elif closed:
        assert answer.status_code == 422, answer.text
        assert "phases depend on each other in a circle" in answer.json()["detail"]
    else:
        assert answer.status_code == 201, answer.text
        cancelled = httpx.post(f"{liara_service.url}{answer.headers['Location']}/cancel", headers=admin, timeout=60)
        assert cancelled.status_code < 500, cancelled.text

"""A token's start quotas on a real ``liara serve``: running crises, counted on Temporal, and
starts per minute; past either a start (of a crisis or a playbook, over HTTP or through
``liara --api``) is a 429 saying which quota and when to try again, and starts nothing.

No worker runs here: the crises started stay running, as a token's long crises would.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import REPO_ROOT
from tests.helpers.cli import assert_one_sentence_error, cli
from tests.helpers.service import ServiceProcess, Tokens, assert_problem, crisis_body, phase, write_tokens

pytestmark = pytest.mark.integration

PLAYBOOK_START = ("/v1/playbooks/health-check/crises", {"inputs": {"site": "example.org"}})


@pytest.fixture(scope="module")
def quota_env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, "LIARA_PLAYBOOKS": str(REPO_ROOT / "playbooks")}


@pytest.fixture(scope="module")
def quota_tokens(service_dir: Path) -> Tokens:
    names = ("op-running", "op-rate", "op-other", "op-burst")
    return write_tokens(service_dir / "quota-tokens.json", dict.fromkeys(names, "operator"))


def served(env: dict[str, str], cwd: Path, tokens: Tokens, *quotas: str) -> Iterator[ServiceProcess]:
    server = ServiceProcess(env, cwd, "--tokens", str(tokens.path), "--no-notifications", *quotas)
    yield server
    assert server.stop(signal.SIGTERM, timeout=90) == 0, server.output


@pytest.fixture(scope="module")
def running_service(quota_env, service_dir, quota_tokens) -> Iterator[ServiceProcess]:
    """A service whose tokens may each have 2 crises running."""
    yield from served(quota_env, service_dir, quota_tokens, "--max-running-crises", "2")


@pytest.fixture(scope="module")
def rate_service(quota_env, service_dir, quota_tokens) -> Iterator[ServiceProcess]:
    """A service whose tokens may each start 3 crises a minute."""
    yield from served(quota_env, service_dir, quota_tokens, "--max-starts-per-minute", "3")


def api_env(env: dict[str, str], server: ServiceProcess, token: str) -> dict[str, str]:
    """An operator's shell on ``server`` with ``token``, nothing of Temporal's."""
    clean = {key: value for key, value in env.items() if not key.startswith(("TEMPORAL_", "LIARA_"))}
    return {**clean, "LIARA_API_URL": server.url, "LIARA_API_TOKEN": token}


async def test_a_token_with_its_quota_of_running_crises_starts_no_more(
    running_service, quota_tokens, quota_env, tmp_path
):
    operator = quota_tokens.headers("op-running")
    first = crisis_body(phase("recon-1"))
    async with httpx.AsyncClient(base_url=running_service.url, timeout=60) as http:
        for body, key in ((first, "first-start"), (crisis_body(phase("recon-1")), None)):
            headers = {**operator, **({"Idempotency-Key": key} if key else {})}
            started = await http.post("/v1/crises", json=body, headers=headers)
            assert started.status_code == 201, started.text

        refused = await http.post("/v1/crises", json=crisis_body(phase("recon-1")), headers=operator)
        problem = assert_problem(refused, 429, "too-many-running-crises")
        assert problem["detail"] == (
            "Token 'op-running' has 2 crises running, its quota: start another once one ends "
            "(cancel one, or try again in 30 s)."
        )
        assert refused.headers["Retry-After"] == "30"
        path, body = PLAYBOOK_START
        from_playbook = await http.post(path, json=body, headers=operator)
        assert_problem(from_playbook, 429, "too-many-running-crises")

        # A client repeating a start it made before gets its crisis, whatever its quota.
        repeated = await http.post("/v1/crises", json=first, headers={**operator, "Idempotency-Key": "first-start"})
        assert repeated.status_code == 200 and repeated.json()["created"] is False, repeated.text
        # The quota is the token's own: another token of the service starts as it likes.
        other = await http.post(
            "/v1/crises", json=crisis_body(phase("recon-1")), headers=quota_tokens.headers("op-other")
        )
        assert other.status_code == 201, other.text

    shell = api_env(quota_env, running_service, quota_tokens.by_name["op-running"])
    for start in (("trigger", "target-alpha", "recon"), ("trigger", "--playbook", "health-check", "--input", "site=x")):
        failed = await cli(shell, tmp_path, *start)
        assert failed.returncode == 1, failed.stdout
        assert assert_one_sentence_error(failed.stderr) == f"Error: {problem['detail']}"


async def test_a_token_starts_at_most_its_quota_of_crises_a_minute(rate_service, quota_tokens, quota_env, tmp_path):
    operator = quota_tokens.headers("op-rate")
    async with httpx.AsyncClient(base_url=rate_service.url, timeout=60) as http:
        first = crisis_body(phase("recon-1"), crisis_id=f"quota-rate-{id(http)}")
        assert (await http.post("/v1/crises", json=first, headers=operator)).status_code == 201
        # A start that starts nothing (the crisis id is taken) takes nothing of the quota.
        taken = await http.post("/v1/crises", json=first, headers=operator)
        assert_problem(taken, 409, "crisis-exists")
        for _ in range(2):
            started = await http.post("/v1/crises", json=crisis_body(phase("recon-1")), headers=operator)
            assert started.status_code == 201, started.text

        refused = await http.post("/v1/crises", json=crisis_body(phase("recon-1")), headers=operator)
        problem = assert_problem(refused, 429, "too-many-starts")
        retry = int(refused.headers["Retry-After"])
        assert 1 <= retry <= 60
        assert problem["detail"] == (
            f"Token 'op-rate' has started 3 crises within the last minute, its quota: try again in {retry} s."
        )
        path, body = PLAYBOOK_START
        assert_problem(await http.post(path, json=body, headers=operator), 429, "too-many-starts")
        other = await http.post(
            "/v1/crises", json=crisis_body(phase("recon-1")), headers=quota_tokens.headers("op-other")
        )
        assert other.status_code == 201, other.text

    shell = api_env(quota_env, rate_service, quota_tokens.by_name["op-rate"])
    failed = await cli(shell, tmp_path, "trigger", "target-alpha", "recon")
    assert failed.returncode == 1, failed.stdout
    said = assert_one_sentence_error(failed.stderr)
    assert re.fullmatch(
        r"Error: Token 'op-rate' has started 3 crises within the last minute, its quota: try again in \d+ s\.", said
    ), said


async def test_starts_sent_at_once_never_pass_the_running_quota(running_service, quota_tokens):
    operator = quota_tokens.headers("op-burst")
    async with httpx.AsyncClient(base_url=running_service.url, timeout=60) as http:
        answers = await asyncio.gather(
            *(http.post("/v1/crises", json=crisis_body(phase("recon-1")), headers=operator) for _ in range(6))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 201, 429, 429, 429, 429], [answer.text for answer in answers]

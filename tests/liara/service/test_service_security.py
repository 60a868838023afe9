"""What every answer of ``liara serve`` says of itself: no sniffing, no referrer, no framing; the
interactive API documents a content security policy that allows their own code alone.
"""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_every_answer_carries_the_security_headers(liara_service, service_tokens):
    viewer = service_tokens.headers("viewer-1")
    answers = {
        "api": httpx.get(f"{liara_service.url}/v1/crises", headers=viewer, timeout=30),
        "problem": httpx.get(f"{liara_service.url}/v1/crises", timeout=30),  # 401, no token
        "openapi": httpx.get(f"{liara_service.url}/openapi.json", timeout=30),
        "health": httpx.get(f"{liara_service.url}/healthz", timeout=30),
        "console": httpx.get(f"{liara_service.url}/", timeout=30),
    }
    assert answers["problem"].status_code == 401
    for name, answer in answers.items():
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["referrer-policy"] == "no-referrer", name
        assert answer.headers["x-frame-options"] == "DENY", name
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], name
    # The console keeps the policy of its own, which lets it load its scripts.
    assert "script-src 'self'" in answers["console"].headers["content-security-policy"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_documents_allow_their_own_code_and_no_framing(liara_service, page):
    answer = httpx.get(f"{liara_service.url}{page}", timeout=30)
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        for code in re.findall(rf"<{tag}>(.*?)</{tag}>", answer.text, re.S):
            digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in directives[directive], (page, tag)
        assert "'unsafe-inline'" not in directives[directive]

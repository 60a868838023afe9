"""``liara serve`` over TLS, and what keeps tokens off the network in clear: HTTPS with a
certificate the test makes, plain HTTP beyond loopback only when asked for (with a warning),
and ``liara --api`` warning of plain HTTP to another machine and trusting the certificate
authorities ``SSL_CERT_FILE`` names.
"""

from __future__ import annotations

import json
import os
import ssl

import httpx
import pytest

from cognition.liara.service.tokens import TokenFile
from tests.helpers.certificates import self_signed
from tests.helpers.cli import assert_one_sentence_error, cli, run_cli
from tests.helpers.network import non_loopback_address
from tests.helpers.service import ServiceProcess

pytestmark = pytest.mark.integration

INSECURE_WARNING = (
    "WARNING - --insecure-http: serving plain HTTP on 0.0.0.0, so bearer tokens and crises cross the network in "
    "clear, for anyone on the path to read and replay; do so only behind a proxy that terminates TLS."
)


def operator_shell(env: dict[str, str], url: str, token: str, **extra: str) -> dict[str, str]:
    """An operator's shell: the service's URL and a token, nothing of Temporal's."""
    clean = {key: value for key, value in env.items() if not key.startswith(("TEMPORAL_", "LIARA_", "SSL_CERT_"))}
    return {**clean, "LIARA_API_URL": url, "LIARA_API_TOKEN": token, **extra}


async def test_the_service_serves_https_with_the_certificate_it_is_given(service_env, service_worker, tmp_path):
    certificate = self_signed(tmp_path / "tls")
    tokens = tmp_path / "tokens.json"
    token = TokenFile(tokens).create("admin-tls", "admin")
    tls = ("--ssl-certfile", str(certificate.certfile), "--ssl-keyfile", str(certificate.keyfile))
    server = ServiceProcess(service_env, tmp_path, "--tokens", str(tokens), *tls)
    try:
        assert server.url.startswith("https://127.0.0.1:"), server.output
        trusted = ssl.create_default_context(cafile=certificate.certfile)
        async with httpx.AsyncClient(base_url=server.url, verify=trusted, timeout=60) as http:
            me = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["name"] == "admin-tls", me.text
        # Plain HTTP to it gets no answer, let alone a token's.
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url.replace("https://", "http://") + "/healthz", timeout=30)

        # The command line trusts the certificate authorities SSL_CERT_FILE names.
        shell = operator_shell(service_env, server.url, token, SSL_CERT_FILE=str(certificate.certfile))
        started = await cli(shell, tmp_path, "trigger", "target-tls", "recon", "--json")
        assert started.returncode == 0, started.stderr
        assert started.stderr == "", "no warning over https"
        workflow_id = json.loads(started.stdout)["workflow_id"]
        waited = await cli(shell, tmp_path, "wait", workflow_id, "--json")
        assert json.loads(waited.stdout)["success"] is True, waited.stderr
        # Without it, a self-signed certificate is refused, in one sentence.
        untrusted = await cli(operator_shell(service_env, server.url, token), tmp_path, "status", workflow_id)
        assert untrusted.returncode == 1
        assert assert_one_sentence_error(untrusted.stderr) == (
            f"Error: The Liara service at {server.url} has a certificate this machine does not trust "
            "(self-signed certificate): set SSL_CERT_FILE to the certificate of the authority that signed it "
            "(or to its own, if self-signed)."
        )
        unreadable = operator_shell(service_env, server.url, token, SSL_CERT_FILE=str(tmp_path / "missing.pem"))
        failed = await cli(unreadable, tmp_path, "status", workflow_id)
        assert assert_one_sentence_error(failed.stderr) == (
            f"Error: Cannot read the certificate authorities of SSL_CERT_FILE={tmp_path / 'missing.pem'} "
            "(No such file or directory): fix or unset it."
        )
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize(
    ("files", "says"),
    [
        (
            ("certfile",),
            "Error: --ssl-certfile and --ssl-keyfile go together: give the certificate and its private key.",
        ),
        (("keyfile", "keyfile"), "Error: Cannot serve TLS: {keyfile} holds no PEM certificate."),
        (("certfile", "missing"), "Error: Cannot serve TLS: {missing} cannot be read (No such file or directory)."),
        (("certfile", "other"), "Error: Cannot serve TLS: {other} is not the private key of {certfile}."),
    ],
)
def test_a_certificate_the_service_cannot_serve_with_is_one_sentence(service_env, tmp_path, files, says):
    certificate = self_signed(tmp_path / "tls")
    paths = {
        "certfile": certificate.certfile,
        "keyfile": certificate.keyfile,
        "missing": tmp_path / "missing.key",
        "other": self_signed(tmp_path / "other").keyfile,
    }
    args = [
        arg
        for flag, name in zip(("--ssl-certfile", "--ssl-keyfile"), files, strict=False)
        for arg in (flag, str(paths[name]))
    ]
    failed = run_cli(service_env, tmp_path, "serve", "--port", "0", *args)
    assert failed.returncode == 1, failed.stdout
    assert assert_one_sentence_error(failed.stderr) == says.format(**{name: str(path) for name, path in paths.items()})
    assert "listening" not in failed.stdout


def test_serve_refuses_plain_http_beyond_loopback_unless_told(service_env, tmp_path):
    tokens = tmp_path / "tokens.json"
    TokenFile(tokens).create("admin-1", "admin")
    refused = run_cli(service_env, tmp_path, "serve", "--host", "0.0.0.0", "--port", "0", "--tokens", str(tokens))
    assert refused.returncode == 1
    assert assert_one_sentence_error(refused.stderr) == (
        "Error: Serving on 0.0.0.0 without TLS would send every token across the network in clear: pass "
        "--ssl-certfile FILE and --ssl-keyfile FILE, or --insecure-http if a proxy in front of it terminates TLS."
    )
    assert "listening" not in refused.stdout


async def test_insecure_http_beyond_loopback_serves_and_says_why_it_is_risky(service_env, service_worker, tmp_path):
    tokens = tmp_path / "tokens.json"
    token = TokenFile(tokens).create("admin-1", "admin")
    server = ServiceProcess(service_env, tmp_path, "--host", "0.0.0.0", "--tokens", str(tokens), "--insecure-http")
    try:
        assert INSECURE_WARNING in server.lines, server.output
        port = server.url.rsplit(":", 1)[1]
        local = httpx.get(f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert local.json()["name"] == "admin-1", local.text
        # Through another address of this machine the command line works, and warns once.
        address = non_loopback_address()
        if address is not None:
            url = f"http://{address}:{port}"
            listed = await cli(operator_shell(service_env, url, token), tmp_path, "list", "--json")
            assert listed.returncode == 0, listed.stderr
            assert listed.stderr.strip() == (
                f"Warning: {url} is plain HTTP to another machine, so the token and every crisis cross the network "
                "in clear: serve it with --ssl-certfile and --ssl-keyfile and use https://."
            )
    finally:
        assert server.stop() == 0, server.output


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://liara.invalid:8780", True),
        ("https://liara.invalid:8780", False),
        ("http://127.0.0.1:1", False),
        ("http://localhost:1", False),
        ("http://[::1]:1", False),
    ],
)
def test_the_command_line_warns_of_plain_http_to_another_machine(url, warned, tmp_path):
    shell = operator_shell(dict(os.environ), url, "liara_not-a-token")
    failed = run_cli(shell, tmp_path, "status", "crisis-workflow-x")
    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    warning = (
        f"Warning: {url} is plain HTTP to another machine, so the token and every crisis cross the network in "
        "clear: serve it with --ssl-certfile and --ssl-keyfile and use https://."
    )
    assert lines[:-1] == ([warning] if warned else []), failed.stderr
    assert lines[-1].startswith(f"Error: Cannot reach the Liara service at {url}"), failed.stderr

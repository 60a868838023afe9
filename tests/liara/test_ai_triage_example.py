"""``python examples/temporal/liara_ai_triage_example.py`` as its docstring runs it: against the
scripted model server when no model is configured, against the endpoint the environment names
otherwise, on the test's dev server with the example's own in-process worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.scripted_model_server import Answer, ScriptedModelServer, ToolCalls
from tests.helpers import REPO_ROOT
from tests.helpers.cli import assert_one_sentence_error

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "examples/temporal/liara_ai_triage_example.py"
KEY = "sk-test-" + uuid.uuid4().hex


def run_example(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLE)], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def told(stdout: str) -> dict[str, str]:
    """The example's lines by their first word (``Model``, ``Answer``, ``Usage``, ``Record``, ...)."""
    return {line.partition(": ")[0]: line.partition(": ")[2] for line in stdout.splitlines() if ": " in line}


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([], api_key=KEY, chunk_delay=0) as server:
        yield server


def test_without_a_model_configured_the_example_says_it_uses_the_scripted_one(liara_env, tmp_path):
    done = run_example(liara_env, tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = told(done.stdout)
    assert lines["Model"].startswith(
        "no LIARA_MODEL_BASE_URL is set, so the analyst is the scripted model server at http://127.0.0.1:"
    ), done.stdout
    assert "answering from a canned script" in lines["Model"]
    assert lines["Tool calls"] == 'lookup {"host": "web-7"}'
    assert lines["Answer"].startswith("web-7 looks compromised: a new SSH key")
    assert lines["Usage"] == "2 model call(s), 603 prompt + 75 completion = 678 tokens"
    assert done.stdout.splitlines()[-1] == "Success: True"

    # The record, where the example says, holds the gate's decision and the analyst's transcript.
    record_path = Path(lines["Record"].partition(" (")[0])
    assert record_path.parent == Path(liara_env["LIARA_CRISIS_DIR"]).resolve()
    record = json.loads(record_path.read_text())
    assert record["playbook"] == "ai-triage" and record["status"] == "completed"
    assert record["initiated_by"] == "ai-triage-example"
    phases = {phase["phase_id"]: phase for phase in record["phases"]}
    assert phases["contain"]["approved_by"] == "duty-lead"
    assert phases["contain"]["params"]["proposal"] == {"answer": lines["Answer"]}
    transcript = phases["investigate"]["transcript"]
    assert [message["role"] for message in transcript] == ["system", "user", "assistant", "tool", "assistant"]
    assert json.loads(transcript[3]["content"])["owner"] == "payments-team"  # what lookup_host.py knows
    assert record["usage"]["total_tokens"] == 678


def test_the_example_calls_the_endpoint_the_environment_names_with_its_key(liara_env, tmp_path, model):
    model.set_script(
        [ToolCalls([("lookup", {"host": "web-7"})], usage=(30, 4)), Answer("Isolate web-7.", usage=(50, 6))]
    )
    env = {**liara_env, "LIARA_MODEL_BASE_URL": model.base_url, "LIARA_MODEL": "gpt-test", "LIARA_MODEL_API_KEY": KEY}
    done = run_example(env, tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = told(done.stdout)
    assert lines["Model"] == f"gpt-test at {model.base_url}, key from LIARA_MODEL_API_KEY"
    assert "scripted" not in done.stdout
    assert (lines["Answer"], lines["Usage"]) == (
        "Isolate web-7.",
        "2 model call(s), 80 prompt + 10 completion = 90 tokens",
    )
    first, second = (request.body for request in model.requests)
    assert first["model"] == "gpt-test" and [tool["function"]["name"] for tool in first["tools"]] == ["lookup"]
    assert '"host": "web-7"' in first["messages"][1]["content"]  # the playbook's params beside the prompt
    assert "payments-team" in second["messages"][-1]["content"]  # the lookup tool's answer
    assert all(request.headers["authorization"] == f"Bearer {KEY}" for request in model.requests)
    record = Path(lines["Record"].partition(" (")[0]).read_text()
    assert KEY not in done.stdout + done.stderr and KEY not in record


def test_a_refused_model_call_is_one_sentence(liara_env, tmp_path, model):
    model.set_script([Answer("never sent")])
    env = {**liara_env, "LIARA_MODEL_BASE_URL": model.base_url, "LIARA_MODEL": "gpt-test"}
    env["LIARA_MODEL_API_KEY"] = "sk-wrong-0000"
    done = run_example(env, tmp_path)

    assert done.returncode == 3, done.stdout + done.stderr
    error = assert_one_sentence_error(done.stderr)
    assert error.startswith("Error: crisis crisis-workflow-crisis-web-7-"), error
    assert (
        f"did not succeed: phase investigate failed: Model 'gpt-test' at {model.base_url}/chat/completions "
        "answered HTTP 401: Incorrect API key provided"
    ) in error
    assert len(model.requests) == 1  # a 4xx fails the phase at once
    assert "Success" not in done.stdout


def test_a_base_url_without_a_model_is_one_sentence(liara_env, tmp_path):
    done = run_example({**liara_env, "LIARA_MODEL_BASE_URL": "http://127.0.0.1:9/v1"}, tmp_path)

    assert done.returncode == 1
    assert assert_one_sentence_error(done.stderr) == (
        "Error: LIARA_MODEL_BASE_URL is set but LIARA_MODEL is not: name the model too (e.g. gpt-4.1-mini)."
    )

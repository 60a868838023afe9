"""``python examples/temporal/liara_crisis_example.py`` as the quick reference runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.integration


def run_example(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples/temporal/liara_crisis_example.py")],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_example_runs_a_crisis_on_the_worker(liara_env, liara_worker, tmp_path):
    done = run_example(liara_env, tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Started crisis-workflow-crisis-target-alpha-")
    assert lines[-1] == "Success: True"
    result = json.loads("\n".join(lines[1:-1]))
    assert result["success"] is True
    assert result["summary"] == {"completed_phases": 4, "failed_phases": 0, "total_phases": 4}
    record = Path(liara_env["LIARA_CRISIS_DIR"]) / f"{result['crisis_id']}.json"
    assert json.loads(record.read_text())["status"] == "completed"


def test_example_without_a_worker_says_to_start_one(liara_env, tmp_path):
    done = run_example(liara_env, tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "Success" not in done.stdout
    assert f"No worker polls task queue '{liara_env['LIARA_TASK_QUEUE']}'" in done.stdout
    assert "`python cognition/liara/worker.py`" in done.stdout
    assert not Path(liara_env["LIARA_CRISIS_DIR"]).exists()

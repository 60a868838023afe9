"""``scripts/bench_agent_steps.py`` runs both sides end to end with tiny counts and writes its
figures (what they are is BENCHMARKS.md's business, not a test's).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.helpers.processes import run_script

pytestmark = pytest.mark.integration


async def test_the_agent_steps_bench_measures_both_sides(dev_server, liara_env, tmp_path):
    figures_file = tmp_path / "agent-steps.json"
    args = ("--address", dev_server.address, "--runs", "2", "--rounds", "1", "--concurrency", "2")
    args += ("--tool-calls", "1", "--json", str(figures_file))

    done = await asyncio.to_thread(run_script, "scripts/bench_agent_steps.py", liara_env, tmp_path, *args, timeout=180)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "One llm phase of 2 model calls and 1 tool call per crisis" in done.stdout
    figures = json.loads(figures_file.read_text())
    assert len(figures["rounds"]) == 1
    median = figures["median"]
    for side in ("bare", "liara"):
        for name in ("crisis_p50_ms", "model_latency_p50_ms", "tool_latency_p50_ms", "crises_per_second"):
            assert median[side][name] > 0, (side, name, median)
    assert median["ratio"]["crisis_p50_ms"] == pytest.approx(
        median["liara"]["crisis_p50_ms"] / median["bare"]["crisis_p50_ms"]
    )

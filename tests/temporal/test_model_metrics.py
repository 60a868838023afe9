"""Model metrics end to end: a worker process started with ``--metrics-port`` runs a language-model
agent against the scripted model server, and its Prometheus endpoint counts the model calls by
outcome and the tokens they spent by kind, per model.
"""

from __future__ import annotations

import asyncio

import pytest

from app.temporal import metrics
from cognition.liara.agency import LiaraTemporalAgency
from scripts.scripted_model_server import Failure, ScriptedModelServer
from tests.helpers import assert_eventually
from tests.helpers.model_agents import KEY, MODEL, USAGE, agent_env, script, triage
from tests.temporal.test_metrics import Scrape, free_port, scrape

pytestmark = pytest.mark.integration


async def test_a_worker_counts_model_calls_and_their_tokens(dev_server, spawn, liara_env, task_queue, tmp_path):
    port = free_port()
    # The first call fails (a 500, retried by the phase's retry policy), then the agent's two calls.
    with ScriptedModelServer([Failure(500), *script()], api_key=KEY) as model:
        env = agent_env(liara_env, tmp_path, model.base_url)
        worker = await asyncio.to_thread(spawn, "cognition/liara/worker.py", env, tmp_path, "--metrics-port", str(port))
        async with LiaraTemporalAgency(temporal_host=dev_server.address, task_queue=task_queue) as agency:
            workflow_id = await agency.trigger_crisis_response("web-1", [triage()], "tester")
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=60)
        assert result["success"] and result["usage"] == USAGE, result
        assert len(model.requests) == 3

    queue = {"task_queue": task_queue}
    page: Scrape | None = None

    async def counted() -> bool:
        nonlocal page
        page = await scrape(port)
        return page.total(metrics.CRISES_COMPLETED, **queue) == 1

    await assert_eventually(counted)
    assert page is not None
    assert page.by(metrics.MODEL_CALLS, "model", "outcome", **queue) == {
        (MODEL, "completed"): USAGE["model_calls"],
        (MODEL, "failed"): 1,
    }
    assert page.by(metrics.MODEL_TOKENS, "model", "kind", **queue) == {
        (MODEL, "prompt"): USAGE["prompt_tokens"],
        (MODEL, "completion"): USAGE["completion_tokens"],
    }
    # The activity's own attributes: the call_model activity of this worker's queue.
    for name in metrics.MODEL_METRICS:
        assert {labels["activity_type"] for labels in page.series(name, **queue)} == {"call_model"}, name
    assert await asyncio.to_thread(worker.stop) == 0, worker.output

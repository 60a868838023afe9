"""The procedure for changing workflow logic once crises in flight must survive an upgrade
(README, "Changing the workflow safely"), shown on a small workflow of its own: a change guarded
by ``workflow.patched`` replays both the histories recorded before it and those after it; the
same change unguarded breaks the old ones.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker


@activity.defn
async def notify(channel: str) -> str:
    return f"notified {channel}"


@workflow.defn(name="Notifier")
class NotifierRelease1:
    @workflow.run
    async def run(self) -> list[str]:
        return [await workflow.execute_activity(notify, "ops", start_to_close_timeout=timedelta(seconds=10))]


@workflow.defn(name="Notifier")
class NotifierRelease2:
    """Release 2 also notifies the pager, guarded by a patch."""

    @workflow.run
    async def run(self) -> list[str]:
        sent = [await workflow.execute_activity(notify, "ops", start_to_close_timeout=timedelta(seconds=10))]
        if workflow.patched("notify-pager"):
            sent.append(await workflow.execute_activity(notify, "pager", start_to_close_timeout=timedelta(seconds=10)))
        return sent


@workflow.defn(name="Notifier")
class NotifierRelease2Unguarded:
    """The same change without the patch."""

    @workflow.run
    async def run(self) -> list[str]:
        sent = [await workflow.execute_activity(notify, "ops", start_to_close_timeout=timedelta(seconds=10))]
        sent.append(await workflow.execute_activity(notify, "pager", start_to_close_timeout=timedelta(seconds=10)))
        return sent


async def history_of(env: WorkflowEnvironment, release: type) -> tuple[list[str], WorkflowHistory]:
    queue = str(uuid.uuid4())
    async with Worker(env.client, task_queue=queue, workflows=[release], activities=[notify]):
        handle = await env.client.start_workflow("Notifier", id=queue, task_queue=queue)
        result = await handle.result()
    return result, await handle.fetch_history()


async def replays(release: type, history: WorkflowHistory) -> bool:
    replayed = await Replayer(workflows=[release]).replay_workflow(history, raise_on_replay_failure=False)
    return replayed.replay_failure is None


async def test_a_patched_change_replays_old_and_new_histories(time_skipping_env: WorkflowEnvironment):
    old_result, old_history = await history_of(time_skipping_env, NotifierRelease1)
    new_result, new_history = await history_of(time_skipping_env, NotifierRelease2)

    assert (old_result, new_result) == (["notified ops"], ["notified ops", "notified pager"])
    assert await replays(NotifierRelease2, old_history), "an in-flight run of release 1 goes on under release 2"
    assert await replays(NotifierRelease2, new_history)
    assert not await replays(NotifierRelease2Unguarded, old_history), "unguarded, the change breaks it"

"""The ``simulate`` executor: the built-in default, an agent that does what the phase's params say."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.temporal.agents.mission import ExecutorSettings, Mission, agent_failure, phase_params


class SimulateParams(BaseModel):
    """``phase.params`` understood by the simulator; other keys are left for real executors."""

    model_config = ConfigDict(extra="ignore", strict=True)

    duration: Annotated[float, Field(ge=0, le=86400)] = 0.0
    fail_attempts: Annotated[int, Field(ge=0)] = 0
    fail: Literal["always", "permanent"] | None = None
    hang: bool = False
    output: JsonValue = Field(default_factory=lambda: {"simulated": True})


class SimulateExecutor:
    """Stands in for a real agent: completes, waits, hangs or fails as the phase's params say.

    It is the default so a crisis runs end to end with no agents deployed, and its params let
    tests and demos drive every path of the workflow (retries, permanent failures, cancellation).
    """

    async def run(self, mission: Mission) -> JsonValue:
        params = phase_params(SimulateParams, mission, "simulate")
        if params.duration:
            await asyncio.sleep(params.duration)
        if params.hang:
            await asyncio.get_running_loop().create_future()  # only cancellation ends this
        phase_id = mission.phase.phase_id
        if params.fail == "permanent":
            raise agent_failure(f"Simulated permanent failure of phase {phase_id}.", retryable=False)
        if params.fail == "always":
            raise agent_failure(f"Simulated failure of phase {phase_id} on attempt {mission.attempt}.", retryable=True)
        if mission.attempt <= params.fail_attempts:
            raise agent_failure(
                f"Simulated failure of phase {phase_id} on attempt {mission.attempt} of "
                f"{params.fail_attempts} planned failures.",
                retryable=True,
            )
        return params.output


class SimulateSettings(ExecutorSettings):
    """``type = "simulate"`` takes nothing else: what it does comes from each phase's params."""

    def build(self, config_dir: Path) -> SimulateExecutor:
        return SimulateExecutor()

"""An agent for the fleet tests: the program of a ``command`` executor, run with the mission JSON on
its stdin.

It notes each run in ``$FLEET_AGENT_DIR/agents.jsonl`` (``started``, then ``completed``, with its
host, crisis, phase and attempt), so the test knows which host's agent ran which attempt and which
ran to completion. A first attempt waits until ``$FLEET_AGENT_DIR/release`` exists, or
``release-<phase id>`` for its phase alone, so the test decides when it finishes; a retry finishes
at once. Its output names its host and attempt, so the record says whose completion it holds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

#: Longest wait for the release: a test that never gives it fails instead of hanging.
RELEASE_WAIT_SECONDS = 120


def main() -> int:
    mission = json.load(sys.stdin)
    host = os.environ["FLEET_HOST"]
    directory = Path(os.environ["FLEET_AGENT_DIR"])
    run = {"host": host, "crisis_id": mission["crisis_id"], "phase_id": mission["phase_id"]}
    run["attempt"] = mission["attempt"]

    def note(event: str) -> None:
        with (directory / "agents.jsonl").open("a") as notes:
            notes.write(json.dumps({"event": event, **run, "at": time.time()}) + "\n")

    note("started")
    if mission["attempt"] == 1:
        deadline = time.monotonic() + RELEASE_WAIT_SECONDS
        while not any((directory / name).exists() for name in ("release", f"release-{mission['phase_id']}")):
            if time.monotonic() > deadline:
                print(f"not released within {RELEASE_WAIT_SECONDS} s", file=sys.stderr)
                return 1
            time.sleep(0.05)
    note("completed")
    print(json.dumps({"host": host, "attempt": mission["attempt"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A ``command`` tool for the agent fleet tests: looks the host of its params up, and notes each run.

Each run appends one JSON line to ``$TOOL_RUNS_FILE``: the idempotency key the executor gives the
run (``LIARA_IDEMPOTENCY_KEY``: the mission document on stdin does not carry it), the attempt and
the params from that document, and the host's answer. So a test counts the runs and tells a
retried tool call (same key) from another one.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    mission = json.load(sys.stdin)
    params = mission["params"]
    found = {"host": params["host"], "owner": "ops"}
    run = {
        "idempotency_key": os.environ["LIARA_IDEMPOTENCY_KEY"],
        "attempt": mission["attempt"],
        "phase_id": mission["phase_id"],
        "params": params,
    }
    with open(os.environ["TOOL_RUNS_FILE"], "a") as runs:
        runs.write(json.dumps(run) + "\n")
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())

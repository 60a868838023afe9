"""A ``command`` tool for the limits tests: takes ``$TOOL_SECONDS`` to answer, and notes when each
run began and ended (``time.time()``, one JSON line per run in ``$TOOL_RUNS_FILE``), so that a
test sees which runs overlapped, whichever worker process ran them.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    mission = json.load(sys.stdin)
    began = time.time()
    time.sleep(float(os.environ["TOOL_SECONDS"]))
    run = {"phase_id": mission["phase_id"], "params": mission["params"], "began": began, "ended": time.time()}
    with open(os.environ["TOOL_RUNS_FILE"], "a") as runs:
        runs.write(json.dumps(run) + "\n")
    print(json.dumps({"host": mission["params"].get("host"), "owner": "ops"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

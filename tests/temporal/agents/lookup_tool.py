"""A ``command`` tool for the agent tests: looks the host of its params up; ``fail`` is unknown."""

import json
import sys

mission = json.load(sys.stdin)
host = mission["params"]["host"]
if host == "fail":
    print(f"no such host {host}", file=sys.stderr)
    sys.exit(3)
found = {"host": host, "owner": "ops"}
if "size" in mission["params"]:  # a long answer
    found["notes"] = "x" * mission["params"]["size"]
print(json.dumps(found))

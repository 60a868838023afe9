"""The ``lookup`` tool of the AI triage example: a ``command`` executor that looks a host up in a
small inventory and prints what it knows as JSON.

It gets the mission document on stdin, as every command agent does; called as a tool, the
mission's ``params`` are the arguments the model wrote (``{"host": "web-7"}``). A host the
inventory does not hold is answered with ``"known": false``, which the model reads like any
other result; a mission without a host exits 2 with one sentence on stderr, which the model
reads as the tool's error.
"""

from __future__ import annotations

import json
import sys

INVENTORY: dict[str, dict[str, object]] = {
    "web-7": {
        "role": "public web server (checkout)",
        "owner": "payments-team",
        "exposed_to_internet": True,
        "last_patched": "2026-09-14",
        "recent_events": [
            "03:12 new SSH key added for user deploy",
            "03:14 outbound connections to 203.0.113.50:4444, 1.2 GB sent",
        ],
    },
    "db-2": {
        "role": "PostgreSQL primary (orders)",
        "owner": "data-team",
        "exposed_to_internet": False,
        "last_patched": "2026-11-30",
        "recent_events": [],
    },
}


def main() -> int:
    try:
        mission = json.load(sys.stdin)
        host = mission["params"]["host"]
    except (ValueError, KeyError, TypeError):
        print("lookup needs a mission whose params name a host.", file=sys.stderr)
        return 2
    if not isinstance(host, str) or not host:
        print("lookup needs the host as a non-empty text.", file=sys.stderr)
        return 2
    found = INVENTORY.get(host)
    print(json.dumps({"host": host, "known": True, **found} if found else {"host": host, "known": False}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

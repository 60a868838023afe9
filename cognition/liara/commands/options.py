"""Arguments and options several commands take, the workers' among them."""

from __future__ import annotations

from typing import Annotated

import typer

# Where to connect: every command line takes them (see app.temporal.client for how they resolve,
# with the environment and temporal.toml).
AddressOption = Annotated[
    str | None, typer.Option(help="Temporal frontend host:port (env TEMPORAL_ADDRESS; default localhost:7233)")
]
NamespaceOption = Annotated[
    str | None, typer.Option(help="Temporal namespace (env TEMPORAL_NAMESPACE; default default)")
]
TaskQueueOption = Annotated[
    str | None, typer.Option(help="Crisis task queue (env LIARA_TASK_QUEUE; default liara-crisis-tasks)")
]
ProfileOption = Annotated[str | None, typer.Option(help="Profile of temporal.toml to use (env TEMPORAL_PROFILE)")]

WorkflowId = Annotated[str, typer.Argument(help="The id printed by `liara trigger`")]
#: How long approve, reject and add-phases wait for a worker to take the change.
WORKER_TIMEOUT_SECONDS = 10.0
WorkerTimeout = Annotated[
    float,
    typer.Option(
        "--timeout", min=0, metavar="SECONDS", help="Give up after this many seconds if no worker takes the change"
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
Timeout = Annotated[float | None, typer.Option(min=0, help="Give up waiting after this many seconds")]
Priority = Annotated[
    int | None,
    typer.Option(
        min=1, max=5, help="1 (most urgent) to 5: an urgent crisis overtakes a backlog on the task queue (default 3)"
    ),
]

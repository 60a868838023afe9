"""Arguments and options several commands take."""

from __future__ import annotations

from typing import Annotated

import typer

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

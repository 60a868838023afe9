"""Options every Liara command line shares (the workers' and ``liara``'s): where to connect."""

from __future__ import annotations

from typing import Annotated

import typer

# See app.temporal.client for how they resolve, with the environment and temporal.toml.
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

"""The ``liara bench`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from app.temporal.client import DEFAULT_ADDRESS
from app.temporal.errors import LiaraError
from app.temporal.models import MAX_PHASES
from app.temporal.server import EmbeddedServer
from app.temporal.worker_options import MAX_CACHED_WORKFLOWS
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.bench.gate import measure_gate_memory
from cognition.liara.bench.report import print_results, write_results
from cognition.liara.bench.runner import BenchPlan, run_bench
from cognition.liara.commands.connection import EXIT_ERROR, Connection
from cognition.liara.commands.options import JsonFlag
from cognition.liara.commands.output import err_console, print_json, say

#: Beyond this the benchmark client, not the worker, is what gets measured.
MAX_SWEEP_CONCURRENCY = 1000


def _counts(text: str, maximum: int) -> tuple[int, ...]:
    """``"1,10,50"`` as ``(1, 10, 50)``; an empty text is no sweep."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of whole numbers, e.g. 1,10,50") from None
    if any(count < 1 or count > maximum for count in counts):
        raise typer.BadParameter(f"each value must be between 1 and {maximum}, not {text!r}")
    return counts


def bench(
    ctx: typer.Context,
    crises: Annotated[int, typer.Option(min=1, help="Runs per side under load (N)")] = 200,
    phases: Annotated[int, typer.Option(min=1, max=1000, help="Phases per crisis (P)")] = 4,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs in flight at once (C)")] = 50,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Worker processes per side")] = 1,
    single_runs: Annotated[int, typer.Option(min=2, help="Runs one after another for single-run latency")] = 20,
    rounds: Annotated[
        int, typer.Option(min=1, help="Rounds in which the two sides take turns; ratios are the rounds' median")
    ] = 3,
    output_dir: Annotated[Path, typer.Option(help="Where the JSON figures (and PNG plot) go")] = Path("bench-results"),
    sweep_concurrency: Annotated[
        str, typer.Option(help="Then throughput at each of these concurrencies, at P phases ('' for none)")
    ] = "1,10,50",
    sweep_phases: Annotated[
        str, typer.Option(help="Then throughput at each of these phase counts, at concurrency C ('' for none)")
    ] = "1,4,16",
    sweep_runs: Annotated[int, typer.Option(min=2, help="Runs per side at each sweep point")] = 60,
    gate: Annotated[
        int | None,
        typer.Option(
            min=1, help="Instead: worker RSS with this many crises waiting at an approval gate, then approve them all"
        ),
    ] = None,
    max_cached_workflows: Annotated[
        int, typer.Option(min=0, help="With --gate: the worker's --max-cached-workflows (crises kept in memory)")
    ] = MAX_CACHED_WORKFLOWS,
    as_json: JsonFlag = False,
) -> None:
    """Measure crises against a bare workflow of as many no-op activities, on the same server.

    Uses the configured server; on the default address it starts the embedded one if needed.
    The plot shows the latency distribution and throughput against concurrency and against P.
    With --gate N it measures instead how much memory a worker needs to hold N open crises, and
    how long approving them all takes to drain them.
    """
    plan = BenchPlan(
        crises,
        phases,
        concurrency,
        workers,
        single_runs,
        rounds,
        sweep_concurrency=_counts(sweep_concurrency, MAX_SWEEP_CONCURRENCY),
        sweep_phases=_counts(sweep_phases, MAX_PHASES),
        sweep_runs=sweep_runs,
    )
    connection: Connection = ctx.obj
    settings = connection.agency().settings
    if settings.address == DEFAULT_ADDRESS and not EmbeddedServer().answers():
        say("Starting the embedded Temporal server...", err_console)
        try:
            EmbeddedServer().start()
        except LiaraError as err:
            say(f"Error: {err}", err_console)
            raise typer.Exit(EXIT_ERROR) from None
    if gate is not None:

        async def measure_gate(agency: LiaraTemporalAgency) -> dict[str, Any]:
            with Progress(console=err_console, transient=True) as progress:
                return await measure_gate_memory(
                    agency.settings, gate, progress, max_cached_workflows=max_cached_workflows
                )

        figures = connection.run(measure_gate)
        if as_json:
            print_json(figures)
        else:
            say(
                f"{figures['gated_crises']} crises waiting at an approval gate "
                f"(at most {figures['max_cached_workflows']} in memory): "
                f"worker RSS {figures['worker_rss_mib']} MiB (idle {figures['worker_rss_idle_mib']} MiB, "
                f"peak {figures['worker_peak_rss_mib']} MiB); approving them all drained them in "
                f"{figures['drain_seconds']} s ({figures['drained_per_second']}/s), "
                f"worker RSS after {figures['worker_rss_after_mib']} MiB; "
                f"{figures['approvals_retried']} approvals sent again while the server was busy"
            )
        return

    async def measure(agency: LiaraTemporalAgency) -> dict[str, Any]:
        with Progress(console=err_console, transient=True) as progress:
            return await run_bench(agency.settings, plan, progress)

    results = connection.run(measure)
    files = write_results(results, output_dir)
    if as_json:
        print_json(results)
        return
    print_results(results, plan)
    say("Written: " + ", ".join(str(path) for path in files))

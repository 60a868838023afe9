"""Where a run's CPU goes on one machine: the worker's, the Temporal server's and the client's CPU
time per run, for Liara and both bare workflows, in alternating rounds of N runs at concurrency C.

    python scripts/setup_temporal.py start --port 17850 --data-dir /tmp/benchsrv
    python scripts/bench_cpu.py --address localhost:17850 --server-pid "$(pgrep -f 'start-dev --port 17850')"

With ``--before CHECKOUT`` a fourth side, ``liara_before``, runs Liara's worker from another copy of
the code (``git worktree add /tmp/before HEAD~1``), so a change is measured against the code before
it in the same rounds, on the same server.

The sides are those of ``liara bench`` (each with a worker of its own, started as it starts them);
the server's CPU is read from ``/proc`` of the process given (``--server-pid``; without it, only the
worker's and the client's are measured), so that server must run on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from pathlib import Path

from rich.progress import Progress

from app.temporal.client import ConnectionSettings, run_and_exit
from app.temporal.errors import LiaraError
from cognition.liara.bench.runner import LIARA_BEFORE, SIDES, load_runs, running_sides, side_order
from cognition.liara.bench.workers import proc_cpu_seconds


def _client_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _server_cpu_seconds(pid: int | None) -> float:
    return proc_cpu_seconds(pid) if pid else 0.0


async def measure(
    settings: ConnectionSettings, server_pid: int | None, args: argparse.Namespace
) -> dict[str, list[dict]]:
    sides = (*SIDES, LIARA_BEFORE) if args.before else SIDES
    figures: dict[str, list[dict]] = {side: [] for side in sides}
    with Progress(disable=True) as progress:
        async with running_sides(settings, 1, before=args.before) as (groups, runners):
            for side in sides:
                await load_runs(runners[side], args.warm_up, args.phases, 10, groups[side], progress, side)
            for number in range(1, args.rounds + 1):
                for side in side_order(number, sides):
                    server, client = _server_cpu_seconds(server_pid), _client_cpu_seconds()
                    load = await load_runs(
                        runners[side], args.runs, args.phases, args.concurrency, groups[side], progress, side
                    )
                    per_run = {
                        "runs/s": args.runs / load.wall_seconds,
                        "worker": load.cpu_seconds / args.runs * 1000,
                        "client": (_client_cpu_seconds() - client) / args.runs * 1000,
                    }
                    if server_pid:
                        per_run["server"] = (_server_cpu_seconds(server_pid) - server) / args.runs * 1000
                    figures[side].append(per_run)
                    print(f"round {number} {side:21s} " + _line(per_run), flush=True)
    return figures


def _line(figures: dict[str, float]) -> str:
    runs = figures["runs/s"]
    return f"{runs:6.1f} runs/s; CPU per run (ms): " + ", ".join(
        f"{name} {value:5.1f}" for name, value in figures.items() if name != "runs/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--address", help="Temporal server (default: the configured one)")
    parser.add_argument("--server-pid", type=int, help="the Temporal server's process id, to measure its CPU too")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=200, help="runs per side and round")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--phases", type=int, default=4)
    parser.add_argument("--warm-up", type=int, default=30, help="runs per side before the first round")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="CHECKOUT",
        help="also measure Liara's worker run from this checkout (say `git worktree add /tmp/before HEAD~1`), "
        "as the side liara_before",
    )
    args = parser.parse_args()
    for name in ("rounds", "runs", "concurrency", "phases"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warm_up < 0:
        parser.error("--warm-up cannot be negative")
    if args.server_pid is not None and not Path(f"/proc/{args.server_pid}/stat").exists():
        parser.error(f"no process {args.server_pid} runs on this machine: give the Temporal server's process id")
    if args.before is not None:
        if not (args.before / "cognition" / "liara" / "worker.py").is_file():
            parser.error(f"{args.before} is no checkout of Liara (it has no cognition/liara/worker.py)")
        args.before = args.before.resolve()
    settings = ConnectionSettings.resolve(address=args.address)
    try:
        figures = asyncio.run(measure(settings, args.server_pid, args))
    except (LiaraError, RuntimeError) as err:  # an unreachable server, workers that never polled
        raise SystemExit(f"Error: {err}") from None
    print(
        f"medians of {args.rounds} rounds of {args.runs} runs of {args.phases} phases at concurrency {args.concurrency}"
    )
    for side, rounds in figures.items():
        medians = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
        print(f"  {side:21s} " + _line(medians))


if __name__ == "__main__":
    run_and_exit(main)

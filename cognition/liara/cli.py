"""The ``liara`` command line (also ``python cognition/liara/cli.py``): the commands of
``cognition.liara.commands`` (and ``liara bench``) under one Typer app.

Exit codes: 0 success, 1 an error you can fix (the message says how), 2 a usage error,
3 the crisis finished but did not succeed.
"""

from __future__ import annotations

import typer

from app.temporal.client import run_and_exit
from cognition.liara.bench.command import bench
from cognition.liara.commands import codec, crises, notifier, reruns, service, setup
from cognition.liara.commands.connection import connection_options
from cognition.liara.commands.playbooks import playbook_app
from cognition.liara.commands.records import record_app
from cognition.liara.commands.schedules import schedule_app
from cognition.liara.commands.usage import readable
from cognition.liara.commands.webhooks import webhook_app
from cognition.liara.worker import liara_worker_command

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help=(
        "Launch crisis responses on Temporal and follow them.\n\n"
        "Start the server (python scripts/setup_temporal.py start) and a worker (liara worker) first; "
        "then `liara trigger target-alpha recon secure extract cleanup` prints a workflow id to use "
        "with `liara status` and `liara wait`."
    ),
)
app.callback()(connection_options)

app.command("worker")(liara_worker_command)
app.command()(crises.trigger)
app.command()(crises.status)
app.command()(crises.wait)
app.command()(crises.watch)
app.command()(crises.cancel)
app.command()(crises.approve)
app.command()(crises.reject)
app.command("add-phases")(crises.add_phases)
app.command("list")(crises.list_crises)
app.command()(reruns.rerun)
app.command()(reruns.diff)
app.command()(setup.doctor)
app.command()(bench)
app.command()(setup.setup)
app.command("codec-server")(codec.codec_server)
app.command("codec-key")(codec.codec_key)
app.command()(notifier.notifier)
app.add_typer(webhook_app, name="webhook")
app.add_typer(playbook_app, name="playbook")
app.add_typer(schedule_app, name="schedule")
app.command()(service.serve)
app.add_typer(service.tokens_app, name="token")
app.add_typer(record_app, name="record")


def main() -> None:
    run_and_exit(readable(app))


if __name__ == "__main__":
    main()

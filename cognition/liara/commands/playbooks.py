"""``liara playbook validate|show``: check a playbook file and see the plan it would run."""

from __future__ import annotations

from typing import Annotated

import typer

from app.temporal.errors import LiaraError
from app.temporal.validation import InvalidFieldsError
from cognition.liara import playbooks
from cognition.liara.commands.connection import EXIT_ERROR, Connection
from cognition.liara.commands.crises import parse_inputs
from cognition.liara.commands.options import JsonFlag
from cognition.liara.commands.output import err_console, out, print_json, print_phases, say, table_of
from cognition.liara.crisis_requests import build_request

playbook_app = typer.Typer(
    no_args_is_help=True,
    help="Check playbooks and see the plan they run; start one with `liara trigger --playbook FILE --input k=v`.",
)

PlaybookFile = Annotated[
    str,
    typer.Argument(
        metavar="PLAYBOOK",
        help="A playbook file (YAML, JSON or TOML), or the name of one in the playbooks directory (LIARA_PLAYBOOKS), "
        "as trigger --playbook takes it",
        show_default=False,
    ),
]


@playbook_app.command()
def validate(playbook: PlaybookFile) -> None:
    """Check a playbook and print every problem with its location; exit 1 if there is any."""
    path = Connection.guard(lambda: playbooks.locate(playbook))
    found = playbooks.problems(path)
    for problem in found:
        say(problem, err_console)
    if found:
        raise typer.Exit(EXIT_ERROR)
    say(f"Playbook {path} is sound.")


@playbook_app.command()
def show(
    playbook: PlaybookFile,
    input_values: Annotated[
        list[str] | None, typer.Option("--input", metavar="NAME=VALUE", help="An input (repeatable)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the plan a playbook would run with these inputs (required ones missing: placeholders)."""
    try:
        loaded = playbooks.load(playbooks.locate(playbook))
        fields = loaded.render(parse_inputs(input_values or []), placeholders=True)
        target, missions = fields.pop("target_member"), fields.pop("missions")
        try:
            request = build_request(target_member=target, missions=missions, crisis_id="plan", **fields)
        except InvalidFieldsError as err:  # said where it is in the playbook (phases[0].priority)
            raise err.reworded(loaded.in_its_words, f"Playbook {loaded.name}") from None
    except LiaraError as err:
        say(f"Error: {err}", err_console)
        raise typer.Exit(EXIT_ERROR) from None
    if as_json:
        print_json(request.model_dump(mode="json", exclude={"crisis_id"}))
        return
    say(f"{loaded.name}: {loaded.description}" if loaded.description else loaded.name)
    out.print(
        table_of(
            ("input", "type", "value", "description"),
            [
                (name, spec.type.value, request.inputs.get(name), spec.description)
                for name, spec in loaded.inputs.items()
            ],
        )
    )
    mode = f"a graph, {request.max_parallel} at once" if request.is_graph else "one phase after another"
    policy = request.failure_policy.value
    say(f"Target {request.target_member}; {len(request.missions)} phases, {mode}; failure policy {policy}")
    print_phases(
        [
            {**phase.model_dump(mode="json"), "status": "approval" if phase.requires_approval else "-"}
            for phase in request.ordered_missions()
        ],
        None,
        out,
    )

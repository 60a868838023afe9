"""Every command's ``--help``, as a user runs it: it exits 0, every help text is shown whole (none
of it taken for Rich markup: ``[webhooks]`` once printed as ``(the  of liara.toml)``), and values
are named as users expect (``PATH``, ``INTEGER``, ``TEXT``), never as Python types (``<bool>``,
``<list[str]>``, ``<path>``, ``<int range>``). No server needed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup, _click

from app.temporal.identity import scheduled_crisis_id, workflow_ids_for
from cognition.liara.cli import app
from tests.helpers.cli import run_cli

Command = _click.Command

#: A value named by its Python type, as Typer names it when nothing else is said.
PYTHON_TYPE = re.compile(
    r"<(?:str|int|float|bool|path|file|datetime|uuid|list\[[^\]]*\]|\w+ range|[\w-]+(?:\|[\w-]+)+)>"
)
#: What Rich draws around help panels.
BOX = re.compile(r"[│╭╮╰╯─]")


def commands(command: Command | None = None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command and subcommand of the ``liara`` app, by the words that run it."""
    command = command or typer.main.get_command(app)
    yield path, command
    if isinstance(command, TyperGroup):
        for name, subcommand in command.commands.items():
            yield from commands(subcommand, (*path, name))


def flat(text: str) -> str:
    return " ".join(BOX.sub(" ", text).split())


def param_help(param: object) -> str | None:
    return getattr(param, "help", None)


def help_texts(command: Command) -> list[str]:
    """The help of each argument and option of ``command``, and its own description's paragraphs."""
    texts = [str(param_help(param)) for param in command.params if param_help(param)]
    texts += [paragraph for paragraph in (command.help or "").split("\n\n") if paragraph.strip()]
    return texts


ALL = list(commands())


def test_the_walk_finds_every_command():
    names = {" ".join(path) for path, _ in ALL}
    assert {"trigger", "status", "watch", "worker", "playbook show", "record show", "schedule create"} <= names


#: Prints every command's ``--help`` as ``liara`` runs it (its main: ``readable(app)``), as JSON
#: by command: one process for all of them (a process each would take a minute).
SHOW_ALL = """
import contextlib, io, json, sys
from app.temporal.identity import scheduled_crisis_id, workflow_ids_for
from cognition.liara.cli import app
from cognition.liara.commands.usage import readable

command = readable(app)
shown = {}
for path in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            command.main([*path, "--help"], prog_name="liara")
        except SystemExit as stop:
            code = stop.code
    shown[" ".join(path)] = {"code": code, "out": out.getvalue()}
print(json.dumps(shown))
"""


def test_every_help_is_whole_and_names_values_as_users_expect(tmp_path: Path):
    # Wide enough that no help text is wrapped, so each can be found whole.
    env = {**os.environ, "TERMINAL_WIDTH": "3000"}
    paths = [list(path) for path, _ in ALL]
    ran = subprocess.run(
        [sys.executable, "-c", SHOW_ALL, json.dumps(paths)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    shown = json.loads(ran.stdout)

    for path, command in ALL:
        name = " ".join(("liara", *path))
        result = shown[" ".join(path)]
        assert result["code"] in (0, None), f"{name} --help: {result['out']}"
        assert "Traceback" not in result["out"], name
        text = flat(result["out"])
        python_type = PYTHON_TYPE.search(text)
        assert python_type is None, f"{name} --help names a Python type: {python_type[0]}"
        for help_text in help_texts(command):
            wanted = flat(help_text)
            # A paragraph of a command's description may be reflowed; its bracketed words must stay.
            for bracketed in re.findall(r"\[[^\]]*\]", wanted):
                assert bracketed in text, f"{name} --help lost {bracketed!r} of {wanted!r}"
            if help_text in [param_help(param) for param in command.params]:
                assert wanted in text, f"{name} --help shows {wanted!r} otherwise:\n{result['out']}"


def test_the_command_line_shows_the_same_help(tmp_path: Path):
    """``liara trigger --help`` itself, as the walk above shows it."""
    shown = run_cli({**os.environ, "TERMINAL_WIDTH": "3000"}, tmp_path, "trigger", "--help")

    assert shown.returncode == 0, shown.stderr
    text = flat(shown.stdout)
    assert "Usage: cli.py trigger [OPTIONS] [TARGET] [ACTIONS]..." in text
    assert "--missions-file PATH" in text and "--max-attempts INTEGER" in text and "--json Print JSON" in text
    assert "a webhooks.NAME table of the notifier's liara.toml" in text
    assert not PYTHON_TYPE.search(text)


@pytest.mark.parametrize("name", ["incident-response", "incident-response.yaml"])
def test_playbook_show_finds_a_playbook_as_trigger_does(name, tmp_path: Path):
    repository = Path(__file__).resolve().parents[2]
    env = {**os.environ, "LIARA_PLAYBOOKS": str(repository / "playbooks")}
    argument = name if not name.endswith(".yaml") else str(repository / "playbooks" / name)

    shown = run_cli(env, tmp_path, "playbook", "show", argument)
    checked = run_cli(env, tmp_path, "playbook", "validate", argument)

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("incident-response: ")
    assert checked.returncode == 0 and "is sound" in checked.stdout, checked.stderr
    missing = run_cli(env, tmp_path, "playbook", "show", "no-such-playbook")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: No playbook 'no-such-playbook' in ") and "Traceback" not in missing.stderr


def test_record_show_tells_how_a_scheduled_runs_crisis_id_is_made(tmp_path: Path):
    shown = run_cli({**os.environ, "TERMINAL_WIDTH": "3000"}, tmp_path, "record", "show", "--help")

    assert shown.returncode == 0, shown.stderr
    workflow_id, crisis_id = "crisis-workflow-sched-nightly-2026-12-02T03:00:00Z", "sched-nightly-2026-12-02T03-00-00Z"
    # The rule of app.temporal.identity, both ways.
    assert scheduled_crisis_id(workflow_id) == crisis_id and workflow_id in workflow_ids_for(crisis_id)
    assert f"(workflow {workflow_id}, crisis {crisis_id})" in flat(shown.stdout)

"""How the command line names the values it takes and says what is wrong with one.

A command's ``--help`` names values as users expect (``PATH``, ``INTEGER``, ``TEXT``,
``continue|abort``, an argument's own name), never as Python types (Typer's own ``<path>``,
``<list[str]>``, ``<int range>``), and a flag names none (Typer's ``<bool>``). A value Typer
refuses is said in words (``'x' is not one of 'continue', 'abort'``), without pydantic's
"Value error," before it.

``readable(app)`` is the app's command tree so, for every command and subcommand, ``--help``
included; the names given on purpose (``SECONDS``, ``NAME=VALUE``) stay.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, cast

import typer
import typer._coercion
import typer._param_types
import typer.main
from typer.core import TyperArgument, TyperGroup, TyperOption, _click

from app.temporal.validation import meaning

#: The name of a value of each type, as command lines name them.
_TYPE_NAMES: dict[Any, str] = {str: "TEXT", int: "INTEGER", float: "NUMBER", Path: "PATH", datetime: "DATETIME"}


def readable(app: typer.Typer) -> _click.Command:
    """``app``'s command tree, every value in its help named as users expect, and a value it
    refuses said in words.
    """
    command = typer.main.get_command(app)
    _name_values(command)
    # Typer says why it refuses a value with pydantic's first message, as it is.
    for module in (typer._coercion, typer._param_types):
        module.__dict__["get_error_msg"] = _error_message
    return command


def _error_message(exc: Any) -> str:
    """What is wrong with a value Typer refuses, in words (no "Value error," before it)."""
    errors = exc.errors() if callable(getattr(exc, "errors", None)) else []
    text = meaning(errors[0]) if errors else str(exc)
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


class _NamedArgument(TyperArgument):
    """An argument whose help names its values' type as an option's would (Typer shows its Python type)."""

    value_name = "TEXT"

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        return self.value_name

    def _usage_display_name(self) -> str:
        """``NAME`` when required, ``[NAME]`` when not (Typer writes a required one ``{NAME}``)."""
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _name_values(command: _click.Command) -> None:
    context = _click.Context(command)
    help_option = command.get_help_option(context)
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                # Named by what it is (TARGET, ACTIONS), as the usage line names it.
                param.metavar = (param.name or "value").upper()
            param.__class__ = _NamedArgument
            cast(_NamedArgument, param).value_name = _type_name(param)
        elif isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag or param.count else _type_name(param)
    if isinstance(command, TyperGroup):
        for subcommand in command.commands.values():
            _name_values(subcommand)


def _type_name(param: TyperOption | TyperArgument) -> str:
    described = param.type_descriptor
    if described.is_choice:
        return "|".join(str(choice.value if isinstance(choice, Enum) else choice) for choice in described.choices or ())
    annotation = described.annotation
    if described.is_list:
        annotation = next(iter(getattr(annotation, "__args__", ())), str)
    return _TYPE_NAMES.get(annotation, "VALUE")

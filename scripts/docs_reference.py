"""The documentation site's generated pages, written from the code at build time (a MkDocs hook,
named in ``mkdocs.yml``), so that no reference can drift from what it describes:

- ``reference/cli.md``: every command of the ``liara`` Typer app, with its help, arguments and options;
- ``reference/http-api.md``: the paths, parameters, bodies and answers of the served OpenAPI document
  (``create_app(...).openapi()``, as ``GET /openapi.json`` serves it);
- ``reference/configuration.md``: ``liara.toml``, from its pydantic models (``LiaraConfig`` and its
  sections, each built-in executor type's settings model, the webhook table);
- ``benchmarks.md`` and ``changelog.md``: ``BENCHMARKS.md`` and ``CHANGELOG.md`` of the repository's
  root, where they stay.

Nothing is written into ``docs/``: the pages exist only in the build. ``python scripts/docs_reference.py
DIR`` writes them to DIR instead, to read them without building the site.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Where each generated page goes in the site, and what writes it.
GENERATED = ("reference/cli.md", "reference/http-api.md", "reference/configuration.md", "benchmarks.md", "changelog.md")


# -- the command line ---------------------------------------------------------------------------


def cli_reference() -> str:
    from cognition.liara.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# Command line",
        "",
        "Generated from the `liara` command line itself (`cognition/liara/cli.py`), as `liara COMMAND --help`",
        "prints it. `liara` is the same program as `python cognition/liara/cli.py`. What the commands are",
        "for, with examples: [The command line](../guides/command-line.md).",
        "",
    ]
    ctx = root.context_class(root, info_name="liara")
    lines += _command(root, ctx, "liara", level=2)
    return "\n".join(lines) + "\n"


def _command(command: Any, ctx: Any, path: str, level: int) -> list[str]:
    # Typer carries its own copy of Click: its commands are told apart by what they have, not their class.
    lines = [f"{'#' * level} `{path}`", ""]
    help_text = inspect.cleandoc(command.help or "")
    if help_text:
        lines += [_plain(help_text), ""]
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```", f"{path} {usage}".rstrip(), "```", ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
    if arguments:
        lines += ["| argument | |", "|---|---|"]
        for argument in arguments:
            meaning = getattr(argument, "help", None) or ""
            required = "required" if argument.required else "optional"
            name = (argument.metavar or argument.name or "").upper()
            lines.append(f"| `{name}` | {_cell(meaning)} ({required}) |")
        lines.append("")
    if options:
        lines += ["| option | |", "|---|---|"]
        for option in options:
            flags = ", ".join(f"`{flag}`" for flag in [*option.opts, *option.secondary_opts])
            meaning = option.help or ""
            extra = []
            if option.envvar:
                names = option.envvar if isinstance(option.envvar, list | tuple) else [option.envvar]
                extra.append("env " + ", ".join(f"`{name}`" for name in names))
            if option.show_default is not False and option.default not in (None, False, (), []):
                if not callable(option.default):
                    extra.append(f"default `{_default(option.default)}`")
            if option.required:
                extra.append("required")
            suffix = f" ({'; '.join(extra)})" if extra else ""
            lines.append(f"| {flags} | {_cell(meaning)}{suffix} |")
        lines.append("")
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = sub.context_class(sub, info_name=name, parent=ctx)
            lines += _command(sub, sub_ctx, f"{path} {name}", level=3 if path != "liara" else 2)
    return lines


def _default(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(getattr(value, "value", value))


def _plain(text: str) -> str:
    """Help text as Markdown: Rich markup and Typer's paragraph breaks (``\\b``) taken out."""
    text = text.replace("\b\n", "").replace("\b", "").replace("``", "`")
    return re.sub(r"\[/?(bold|dim|italic|red|green|yellow|cyan)\]", "", text)


def _cell(text: str) -> str:
    """``text`` on one line of a Markdown table."""
    return " ".join(_plain(text).split()).replace("|", "\\|")


# -- the HTTP API -------------------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document ``liara serve`` serves (building the app connects to nothing)."""
    from cognition.liara.agency import LiaraTemporalAgency
    from cognition.liara.service.main import create_app

    return create_app(LiaraTemporalAgency(), tokens=None).openapi()


def http_reference() -> str:
    document = openapi_document()
    schemas = document.get("components", {}).get("schemas", {})
    info = document.get("info", {})
    lines = [
        "# HTTP API",
        "",
        f"Generated from the OpenAPI document that `liara serve` serves at `/openapi.json` ({info.get('title', '')}",
        f"{info.get('version', '')}); a running service also serves it as interactive documents at `/docs`.",
        "Roles, errors, limits and examples: [The HTTP service](../guides/http-service.md); the event stream:",
        "[Events](events.md).",
        "",
        "| method | path | summary |",
        "|---|---|---|",
    ]
    operations = list(_operations(document))
    for method, path, operation in operations:
        anchor = _slug(f"{method} {path}")
        lines.append(f"| `{method}` | [`{path}`](#{anchor}) | {_cell(operation.get('summary', ''))} |")
    lines.append("")
    for method, path, operation in operations:
        lines += [f"## `{method} {path}`", ""]
        if operation.get("description"):
            lines += [_plain(inspect.cleandoc(operation["description"])), ""]
        parameters = operation.get("parameters", [])
        if parameters:
            lines += ["| parameter | in | type | required | meaning |", "|---|---|---|---|---|"]
            for parameter in parameters:
                schema = parameter.get("schema", {})
                meaning = parameter.get("description") or schema.get("description") or ""
                lines.append(
                    f"| `{parameter['name']}` | {parameter['in']} | {_cell(_schema_type(schema))} | "
                    f"{'yes' if parameter.get('required') else 'no'} | {_cell(meaning)} |"
                )
            lines.append("")
        body = operation.get("requestBody")
        if body:
            for media, content in body.get("content", {}).items():
                lines += [f"Body ({media}): {_schema_type(content.get('schema', {}))}", ""]
                lines += _schema_fields(content.get("schema", {}), schemas)
        responses = operation.get("responses", {})
        if responses:
            lines += ["| status | answer |", "|---|---|"]
            for status, response in responses.items():
                kinds = ", ".join(
                    f"{media} {_schema_type(content.get('schema', {}))}".strip()
                    for media, content in response.get("content", {}).items()
                )
                text = response.get("description", "")
                lines.append(f"| {status} | {_cell(text)}{' (' + _cell(kinds) + ')' if kinds else ''} |")
            lines.append("")
    lines += ["## Schemas", ""]
    for name in sorted(schemas):
        schema = schemas[name]
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [_plain(inspect.cleandoc(schema["description"])), ""]
        lines += _schema_fields(schema, schemas) or [f"{_schema_type(schema)}", ""]
    return "\n".join(lines) + "\n"


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method.upper(), path, operation


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_slug(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_schema_type(option) for option in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"object of {_schema_type(schema['additionalProperties'])}"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    return str(kind or "any")


def _schema_fields(schema: dict[str, Any], schemas: dict[str, Any]) -> list[str]:
    if "$ref" in schema:
        return []  # the schema has its own section
    properties = schema.get("properties", {})
    if not properties:
        return []
    required = set(schema.get("required", []))
    lines = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for name, field in properties.items():
        meaning = field.get("description", "")
        if "default" in field and field["default"] is not None:
            meaning = f"{meaning} (default `{field['default']}`)".strip()
        lines.append(
            f"| `{name}` | {_cell(_schema_type(field))} | {'yes' if name in required else 'no'} | {_cell(meaning)} |"
        )
    return [*lines, ""]


def _slug(text: str) -> str:
    """The anchor MkDocs gives a heading of ``text`` (its default ``toc`` slugify)."""
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


# -- liara.toml ---------------------------------------------------------------------------------


def configuration_reference() -> str:
    from app.temporal.agents.plugins import BUILTIN_TYPES
    from app.temporal.config import LiaraConfig
    from app.temporal.notifications import Webhook

    lines = [
        "# liara.toml",
        "",
        "Generated from the models that read the file (`app.temporal.config.LiaraConfig` and its sections,",
        "each executor type's settings model in `src/app/temporal/agents/`, the webhook table of",
        "`app.temporal.notifications`). The file is `liara.toml` in the working directory, or the one",
        "`LIARA_CONFIG` names; it is read and checked where it is used, and a mistake is one sentence naming",
        "the file and the key. Every table is strict: a key it does not name, or a value of another TOML type",
        '(`"30"` for a number), is refused. How to use it: [Configuring executors](../guides/executors.md),',
        "[Language-model agents](../guides/llm-agents.md), [Webhook notifications](../guides/webhooks.md),",
        "[Approval](../concepts/approval.md), [Record](../concepts/record.md).",
        "",
        "## The file's sections",
        "",
    ]
    lines += _model_table(LiaraConfig)
    for name, model in _nested_models(LiaraConfig):
        lines += [f"## `[{name}]`", ""]
        lines += _model_table(model)
    lines += ["## `[webhooks.NAME]`", ""]
    lines += _model_table(Webhook)
    lines += [
        "## `[executors.NAME]`",
        "",
        "Every executor table has a `type`: one of the built-in types below, or the name of an entry point",
        "in the group `liara.executors` (a plugin, which takes the table's other keys). Any executor that",
        "an `llm` executor may call as a tool also takes `description` (what the tool does: required for a",
        'tool), `parameters` (a JSON schema of `type = "object"`), `approval` (`"never"`, the default, or',
        '`"always"`: each call waits for approval) and `approvals` (the quorum of such a call, default 1).',
        "",
    ]
    for type_name, model in BUILTIN_TYPES.items():
        lines += [f'### `type = "{type_name}"`', ""]
        lines += _model_table(model)
    return "\n".join(lines) + "\n"


def _nested_models(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, type[BaseModel]]]:
    """``(table name, model)`` of each section ``model`` holds, depth first; ``NAME`` where a dict's keys go."""
    for name, field in model.model_fields.items():
        inner, keyed = _model_in(field.annotation)
        if inner is None:
            continue
        table = f"{prefix}{name}" + (".NAME" if keyed else "")
        yield table, inner
        yield from _nested_models(inner, f"{table}.")


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model an annotation holds, and whether it holds it as the values of a dict."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    if origin is dict:
        value = typing.get_args(annotation)[1]
        inner, _ = _model_in(value)
        if inner is not None and inner.__name__ != "ExecutorTable":
            return inner, True
    return None, False


def _model_table(model: type[BaseModel]) -> list[str]:
    lines = []
    doc = inspect.getdoc(model)
    if doc and not doc.startswith(("A base class", "Usage docs")):
        lines += [_plain(doc), ""]
    comments = _field_comments(model)
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name == "type" and model.__name__ == "ExecutorTable":
            continue
        meaning = field.description or comments.get(name, "")
        lines.append(
            f"| `{name}` | {_cell(_type_name(field.annotation))} | {_cell(_field_default(field))} | {_cell(meaning)} |"
        )
    return [*lines, ""]


def _field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The ``#:`` comments written above each field, in the model's class and its bases."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (inspect.isclass(cls) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            source = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):
            continue
        pending: list[str] = []
        for line in source:
            stripped = line.strip()
            if stripped.startswith("#:"):
                pending.append(stripped[2:].strip())
                continue
            match = re.match(r"^\s+(\w+)\s*:", line)
            if match and pending:
                found[match.group(1)] = " ".join(pending)
            pending = []
    return found


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is typing.Literal:
        return " or ".join(f'"{arg}"' for arg in args)
    if origin in (list, tuple, set):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"table of {_type_name(args[1])}" if args else "table"
    if annotation is type(None):
        return "none"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return "table"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any"}
    if annotation in names:
        return names[annotation]
    if inspect.isclass(annotation) and issubclass(annotation, str):
        return "string"  # an enum of names
    return getattr(annotation, "__name__", str(annotation)).replace("JsonValue", "any JSON")


def _field_default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return ""
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, list | tuple) and value:
        return "`" + ", ".join(str(getattr(item, "value", item)) for item in value) + "`"
    if value in ({}, []):
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{getattr(value, 'value', value)}`"


# -- the root's pages ---------------------------------------------------------------------------


def root_page(name: str) -> str:
    """A Markdown file of the repository's root as a page of the site: its links into ``docs/`` made
    relative to the site's root."""
    text = (REPO_ROOT / name).read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text)


def pages() -> dict[str, str]:
    return {
        "reference/cli.md": cli_reference(),
        "reference/http-api.md": http_reference(),
        "reference/configuration.md": configuration_reference(),
        "benchmarks.md": root_page("BENCHMARKS.md"),
        "changelog.md": root_page("CHANGELOG.md"),
    }


# -- the MkDocs hook ----------------------------------------------------------------------------


def on_files(files: Any, config: Any) -> Any:
    """Adds the generated pages to the build (MkDocs calls this before it reads the navigation)."""
    from mkdocs.structure.files import File

    for src_uri, content in pages().items():
        existing = files.get_file_from_path(src_uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, src_uri, content=content))
    return files


def on_config(config: Any) -> Any:
    """Changes to the code the references come from rebuild them under ``mkdocs serve``."""
    watch = config.setdefault("watch", [])
    for folder in ("src", "cognition", "BENCHMARKS.md", "CHANGELOG.md"):
        path = str(REPO_ROOT / folder)
        if path not in watch:
            watch.append(path)
    return config


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/docs_reference.py DIR")
    target = Path(sys.argv[1])
    for src_uri, content in pages().items():
        out = target / src_uri
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(content, encoding="utf-8")
        print(out)

"""The configuration file, ``liara.toml``: found, read and checked in this one place.

Each part of the engine that a machine configures reads its section from :class:`LiaraConfig`:
the executor registry (``[agents]``, ``[executors]``, app.temporal.agents.config), the
notifier and the webhooks every crisis tells (``[webhooks]``, app.temporal.notifier) and the
record store (``record_store``, app.temporal.records.config), the approval policy (``[approvals]``,
cognition.liara.approval_policy) and the limits on agents' model and tool calls across the fleet
(``[limits]``, app.temporal.limits). So the file is found the same way
for all of them, and every error about it begins "Configuration file PATH", whichever section
was being read. A new feature adds its section here.

The file is the one ``LIARA_CONFIG`` names (it must exist), else ``liara.toml`` in the working
directory if there is one; without a file every section has its built-in default. Relative
paths in the file are relative to the file's folder (:attr:`LiaraConfig.directory`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import ErrorDetails

from app.temporal.errors import LiaraError
from app.temporal.models import ActionName
from app.temporal.validation import meaning

CONFIG_ENV = "LIARA_CONFIG"
DEFAULT_CONFIG_FILE = Path("liara.toml")
#: The executor of actions the file maps to none: built in, needs no ``[executors]`` entry.
SIMULATE = "simulate"

#: Names of executors and webhooks (tables of the file).
TableName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class ConfigError(LiaraError, ValueError):
    """The configuration (its file, or an environment variable standing in for it) is unusable:
    what reads it must not start."""


class _Strict(BaseModel):
    # strict: TOML already has types; "30" for a number is a mistake worth reporting.
    model_config = ConfigDict(extra="forbid", strict=True)


class AgentsSection(_Strict):
    """``[agents]``: the executor of each action (``actions``) and of the others (``default``)."""

    default: TableName = SIMULATE
    actions: dict[ActionName, TableName] = Field(default_factory=dict)


class ExecutorTable(BaseModel):
    """``[executors.NAME]``: ``type`` plus whatever that type takes (checked against the type's
    own settings model when the registry builds it)."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: Annotated[str, Field(min_length=1)]


#: An action, or a pattern of actions (``*`` any characters, ``?`` one, ``[...]`` one of them).
ActionPattern = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_*?\[\]!-]+$")]
#: A token's name or a role, as the service knows them.
ApproverName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")]


class ApprovalRule(_Strict):
    """``[approvals.actions."PATTERN"]``: what a phase whose action matches needs before it runs."""

    approvals: Annotated[int, Field(ge=1, le=100)] = 1
    #: Who may decide: these token names, and anyone with these roles (anyone who may decide, if neither).
    approvers: list[ApproverName] = Field(default_factory=list)
    roles: list[ApproverName] = Field(default_factory=list)


class ApprovalsSection(_Strict):
    """``[approvals]``: the approval policy a crisis's author cannot lower."""

    #: Whether whoever started a crisis may decide its gates (false: four eyes).
    self_approval: bool = False
    #: By action pattern, in the order of the file: the first that matches a phase's action applies.
    actions: dict[ActionPattern, ApprovalRule] = Field(default_factory=dict)


#: The key of a limit: a model's name as its provider spells it ("gpt-4.1-mini", "openai/gpt-4o",
#: "llama3:8b"), an executor's name, or a provider's host.
LimitName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")]
#: The most a limit may say, of calls at once or calls a minute.
MAX_LIMIT = 10_000


class LimitTable(_Strict):
    """``[limits.models.NAME]`` or ``[limits.tools.NAME]``: at most ``concurrent`` calls at once and
    ``per_minute`` calls a minute (one every 60/per_minute seconds), across every worker.
    """

    concurrent: Annotated[int, Field(ge=1, le=MAX_LIMIT)] | None = None
    per_minute: Annotated[int, Field(ge=1, le=MAX_LIMIT)] | None = None

    @model_validator(mode="after")
    def _says_something(self) -> LimitTable:
        if self.concurrent is None and self.per_minute is None:
            raise ValueError("give concurrent (calls at once), per_minute (calls a minute) or both")
        return self


class LimitsSection(_Strict):
    """``[limits]``: limits on agents' calls across the fleet, by model (``models``: a model, an llm
    executor or a provider's host) and by tool (``tools``: an executor agents call); checked
    against the executors by app.temporal.agents.config.
    """

    models: dict[LimitName, LimitTable] = Field(default_factory=dict)
    tools: dict[TableName, LimitTable] = Field(default_factory=dict)


class LiaraConfig(_Strict):
    """The file's sections, each checked as far as its shape goes; what a section means is
    checked where it is used, so a bad webhook does not stop ``liara record``."""

    agents: AgentsSection = Field(default_factory=AgentsSection)
    executors: dict[TableName, ExecutorTable] = Field(default_factory=dict)
    #: Each webhook's settings, checked where notifications are delivered (app.temporal.notifications).
    webhooks: dict[TableName, dict[str, Any]] = Field(default_factory=dict)
    #: Where crisis records go (a ``postgresql://`` URL; files when unset), checked by app.temporal.records.
    record_store: Annotated[str, Field(min_length=1)] | None = None
    #: The approval policy every crisis started here gets (cognition.liara.approval_policy).
    approvals: ApprovalsSection = Field(default_factory=ApprovalsSection)
    #: Limits on agents' model and tool calls across the fleet (app.temporal.limits).
    limits: LimitsSection = Field(default_factory=LimitsSection)

    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        """The file read (an absolute path), or None: no file, the built-in defaults."""
        return self._path

    @property
    def directory(self) -> Path:
        """The folder relative paths in the file are relative to."""
        return self._path.parent if self._path is not None else Path()

    @property
    def where(self) -> str:
        """How an error names the file: ``Configuration file PATH`` (without a file, only an
        environment variable standing in for a setting can be wrong)."""
        return f"Configuration file {self._path}" if self._path is not None else "The configuration"


def load_config(path: Path | None = None, environ: Mapping[str, str] = os.environ) -> LiaraConfig:
    """The configuration: ``path``, else the file ``LIARA_CONFIG`` names, else ``liara.toml``
    here if it exists, else the built-in defaults. A file named explicitly must exist.
    """
    source = _find(path, environ)
    if source is None:
        return LiaraConfig()
    config = _read(source)
    config._path = source
    return config


def describe_problem(err: ValidationError, where: str, prefix: str = "") -> str:
    """The first problem of ``err`` as one sentence naming its key (``prefix``, then the path
    within the model), and how many more there are."""
    problems = err.errors()
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"{where} {_problem(problems[0], prefix)}{more}."


def _find(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    if path is None and environ.get(CONFIG_ENV):
        path = Path(environ[CONFIG_ENV])
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} names {path}, which is not an existing file.")
    if path is None:
        return DEFAULT_CONFIG_FILE.resolve() if DEFAULT_CONFIG_FILE.is_file() else None
    if not path.is_file():
        raise ConfigError(f"Configuration file {path} is not an existing file.")
    return path.resolve()


def _read(source: Path) -> LiaraConfig:
    where = f"Configuration file {source}"
    try:
        with source.open("rb") as file:
            raw = tomllib.load(file)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where} is not valid TOML: {err}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where} is not UTF-8 text.") from None
    except OSError as err:
        raise ConfigError(f"{where} cannot be read: {err.strerror or err}.") from None
    try:
        return LiaraConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_problem(err, where)) from None


def _problem(problem: ErrorDetails, prefix: str) -> str:
    loc = [str(part) for part in problem["loc"]]
    is_key = bool(loc) and loc[-1] == "[key]"
    parts = loc[:-1] if is_key else loc
    key = ".".join(part for part in [prefix, *parts] if part) or "top level"
    if is_key:
        return f"has an invalid name {problem['input']!r} under {key.rpartition('.')[0] or 'top level'}"
    if problem["type"] == "missing":
        return f"is missing {key}"
    if problem["type"] == "extra_forbidden":
        return f"has an unknown key {key}"
    return f"has an invalid {key}: {meaning(problem)}"

"""``liara.toml``, found and read in one place: which file, its sections, and errors that name it."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.temporal.config import ConfigError, LiaraConfig, load_config
from app.temporal.errors import LiaraError

SECTIONS = """
record_store = "postgresql://liara@db/records"

[agents]
default = "recon-api"
[agents.actions]
cleanup = "simulate"

[executors.recon-api]
type = "http"
url = "http://127.0.0.1:9000/missions"

[webhooks.ops]
url = "https://hooks.example.org/liara"
secret_env = "OPS_SECRET"
"""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_without_a_file_every_section_has_its_default(here: Path) -> None:
    config = load_config(environ={})
    assert config == LiaraConfig()
    assert config.path is None and config.directory == Path()
    assert config.agents.default == "simulate" and not config.executors and not config.webhooks
    assert config.record_store is None


def test_liara_toml_here_is_read_with_every_section(here: Path) -> None:
    (here / "liara.toml").write_text(SECTIONS)
    config = load_config(environ={})
    assert config.path == here / "liara.toml" and config.path.is_absolute()
    assert config.directory == here  # what relative paths in the file are relative to
    assert config.agents.default == "recon-api" and config.agents.actions == {"cleanup": "simulate"}
    assert config.executors["recon-api"].type == "http"
    assert config.webhooks == {"ops": {"url": "https://hooks.example.org/liara", "secret_env": "OPS_SECRET"}}
    assert config.record_store == "postgresql://liara@db/records"


def test_the_file_liara_config_names_wins_over_liara_toml_and_a_path_over_both(
    here: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (here / "liara.toml").write_text('record_store = "postgresql://here/db"\n')
    named = tmp_path_factory.mktemp("elsewhere") / "agency.toml"
    named.write_text('record_store = "postgresql://named/db"\n')
    given = tmp_path_factory.mktemp("given") / "given.toml"
    given.write_text('record_store = "postgresql://given/db"\n')
    assert load_config(environ={"LIARA_CONFIG": str(named)}).record_store == "postgresql://named/db"
    assert load_config(given, {"LIARA_CONFIG": str(named)}).record_store == "postgresql://given/db"
    assert load_config(environ={"LIARA_CONFIG": ""}).record_store == "postgresql://here/db"  # empty is unset


def test_a_file_named_explicitly_must_exist(here: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"LIARA_CONFIG": str(here / "nowhere.toml")})
    assert str(raised.value) == f"LIARA_CONFIG names {here / 'nowhere.toml'}, which is not an existing file."
    with pytest.raises(ConfigError) as raised:
        load_config(here / "nowhere.toml", {})
    assert str(raised.value) == f"Configuration file {here / 'nowhere.toml'} is not an existing file."


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[agents\n", "is not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 8)."),
        (b'record_store = "\xff"\n', "is not UTF-8 text."),
        (b'colour = "red"\n', "has an unknown key colour."),
        (b"record_store = 5\n", "has an invalid record_store: Input should be a valid string."),
        (b'[webhooks."bad name"]\nurl = "https://h/x"\n', "has an invalid name 'bad name' under webhooks."),
        (
            b"[agents.actions]\nrecon = 1\ncleanup = 2\n",
            "has an invalid agents.actions.recon: Input should be a valid string (and 1 more problems).",
        ),
    ],
)
def test_every_error_about_the_file_begins_with_its_path(here: Path, content: bytes, says: str) -> None:
    (here / "liara.toml").write_bytes(content)
    with pytest.raises(ConfigError) as raised:
        load_config(environ={})
    assert str(raised.value) == f"Configuration file {here / 'liara.toml'} {says}"
    assert isinstance(raised.value, LiaraError) and isinstance(raised.value, ValueError)

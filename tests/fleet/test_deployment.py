"""The container deployment: docker-compose.yml, Dockerfile and the wheel the image installs.

No Docker engine is needed: the files are parsed and checked against what the quick reference
promises (`docker-compose up -d temporal temporal-postgresql`, `--scale temporal-worker=5`, the
Web UI on http://localhost:8233) and against the settings the workers read.
"""

from __future__ import annotations

import asyncio
import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.temporal.client import DEFAULT_NAMESPACE, DEFAULT_TASK_QUEUE, TASK_QUEUE_ENV
from app.temporal.metrics import METRICS_HOST_ENV
from app.temporal.records import RECORD_DIR_ENV, RECORD_STORE_ENV, PostgresRecordStore
from app.temporal.records.postgres import SCHEMA_VERSION, parse_url
from app.temporal.visibility import CRISIS_SEARCH_ATTRIBUTES
from scripts.local_postgres import LocalPostgres, postgres_bin_dir
from tests.helpers.records import create

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"

SPEC_SERVICES = {"temporal", "temporal-postgresql", "temporal-worker"}
CRISIS_ATTRIBUTE_NAMES = [key.name for key in CRISIS_SEARCH_ATTRIBUTES]


#: What an operator sets before the first start (the file has no default for a password).
OPERATOR_ENV = {"POSTGRES_PASSWORD": "temporal-secret", "LIARA_RECORDS_PASSWORD": "records-secret"}
_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(Exception):
    """Compose refuses to start: a required variable is not set (its message is Compose's)."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """What Compose makes of a value with the variables ``env``: ``${VAR:-default}`` is the value
    or the default, ``${VAR:?message}`` the value or a refusal, ``$$`` is ``$``.
    """
    if isinstance(value, str):

        def substituted(found: re.Match[str]) -> str:
            name, kind, rest = found[1], found[2], found[3]
            given = env.get(name, "")
            if given:
                return given
            if kind in (":-", "-"):
                return rest
            if kind in (":?", "?"):
                raise MissingVariable(f"{name}: {rest}")
            return ""

        return _VARIABLE.sub(substituted, value).replace("$$", "$")
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), OPERATOR_ENV)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def published_ports(service: dict[str, Any]) -> dict[int, int]:
    """Host port -> container port, from short (`"8233:8080"`) or long syntax."""
    ports: dict[int, int] = {}
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports[int(port["published"])] = int(port["target"])
            continue
        parts = str(port).split(":")  # [IP:]HOST:CONTAINER[/PROTOCOL]
        assert len(parts) >= 2, f"port {port} is not published on a fixed host port"
        ports[int(parts[-2])] = int(parts[-1].split("/")[0])
    return ports


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command_text(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else str(value or "")


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", str(duration))
    assert parts, f"not a Compose duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


# docker-compose.yml


def test_the_quick_reference_services_exist(services: dict[str, Any]) -> None:
    assert SPEC_SERVICES <= services.keys()
    assert "temporal-ui" in services


def test_temporal_starts_with_its_database_and_the_web_ui(services: dict[str, Any]) -> None:
    # `docker-compose up -d temporal temporal-postgresql` starts these two and their dependencies:
    # the UI comes along so the quick reference's curl of :8233 answers right after.
    assert depends_on(services["temporal"]) == {
        "temporal-postgresql": "service_healthy",
        "temporal-ui": "service_started",
    }
    assert depends_on(services["temporal-postgresql"]) == {}
    assert depends_on(services["temporal-ui"]) == {}


@pytest.mark.parametrize("unset", sorted(OPERATOR_ENV))
def test_compose_refuses_to_start_without_each_password(unset: str) -> None:
    env = {name: value for name, value in OPERATOR_ENV.items() if name != unset}
    with pytest.raises(MissingVariable, match=f"^{unset}: set {unset} "):
        interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env)


def test_no_password_has_a_default() -> None:
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"PASSWORD:?-", text), "a password variable with a default"
    assert "PASSWORD: temporal" not in text and ":liara@" not in text


def test_temporal_and_its_web_ui_are_published_on_loopback_unless_told_otherwise(services: dict[str, Any]) -> None:
    for name in ("temporal", "temporal-ui"):
        assert all(str(port).startswith("127.0.0.1:") for port in services[name]["ports"]), name
    everywhere = interpolate(
        yaml.safe_load(COMPOSE_FILE.read_text()), {**OPERATOR_ENV, "TEMPORAL_BIND_ADDRESS": "0.0.0.0"}
    )
    assert everywhere["services"]["temporal"]["ports"] == ["0.0.0.0:7233:7233"]


def test_temporal_uses_postgresql(services: dict[str, Any]) -> None:
    temporal, database = environment(services["temporal"]), environment(services["temporal-postgresql"])
    assert temporal["DB"] == "postgres12"
    assert temporal["DB_PORT"] == "5432"
    assert temporal["POSTGRES_SEEDS"] == "temporal-postgresql"
    assert temporal["POSTGRES_USER"] == database["POSTGRES_USER"]
    assert temporal["POSTGRES_PWD"] == database["POSTGRES_PASSWORD"]
    volumes = services["temporal-postgresql"]["volumes"]
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in volumes)


def test_worker_is_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    build = services["temporal-worker"]["build"]
    context = REPO_ROOT / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (context / dockerfile).resolve() == DOCKERFILE


def test_worker_runs_the_dedicated_worker(services: dict[str, Any]) -> None:
    worker = services["temporal-worker"]
    command = command_text(worker.get("command"))
    assert command in {"liara worker", "python -m cognition.liara.worker"}


def test_worker_can_be_scaled(services: dict[str, Any]) -> None:
    # `--scale temporal-worker=5` needs replicas without a fixed name or a fixed host port.
    worker = services["temporal-worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_worker_settings_point_at_the_temporal_service(services: dict[str, Any]) -> None:
    env = environment(services["temporal-worker"])
    host, port = env["TEMPORAL_ADDRESS"].rsplit(":", 1)
    assert host == "temporal"
    assert int(port) in published_ports(services["temporal"]).values()
    assert env["TEMPORAL_NAMESPACE"] == DEFAULT_NAMESPACE
    assert env[TASK_QUEUE_ENV] == DEFAULT_TASK_QUEUE == "liara-crisis-tasks"
    assert depends_on(services["temporal-worker"]) == {
        "temporal": "service_healthy",
        "liara-setup": "service_completed_successfully",
    }


def test_worker_metrics_listen_on_every_interface_of_the_container(services: dict[str, Any]) -> None:
    # Outside a container a worker's metrics stay on 127.0.0.1; in one, Prometheus scrapes the
    # container's address, so the workers there listen on every interface.
    assert environment(services["temporal-worker"])[METRICS_HOST_ENV] == "0.0.0.0"


def test_workers_keep_records_in_a_database_of_their_own_on_the_compose_server(services: dict[str, Any]) -> None:
    # Every replica writes the same record database, so `--scale temporal-worker=5` keeps one
    # record per crisis; no replica keeps files of its own.
    worker, database = environment(services["temporal-worker"]), environment(services["temporal-postgresql"])
    settings = parse_url(worker[RECORD_STORE_ENV], RECORD_STORE_ENV)
    assert (settings["host"], settings["port"]) == ("temporal-postgresql", "5432")
    assert (settings["user"], settings["password"], settings["dbname"]) == (
        database["LIARA_RECORDS_USER"],
        database["LIARA_RECORDS_PASSWORD"],
        database["LIARA_RECORDS_DB"],
    )
    assert settings["user"] != database["POSTGRES_USER"], "records have a user of their own, not Temporal's"
    assert RECORD_DIR_ENV not in worker and not services["temporal-worker"].get("volumes")


def test_the_record_database_is_created_with_the_postgres_volume(services: dict[str, Any]) -> None:
    mounts = dict(reversed(str(volume).split(":")[:2]) for volume in services["temporal-postgresql"]["volumes"])
    script = REPO_ROOT / mounts["/docker-entrypoint-initdb.d/liara-records.sh"]
    text = script.read_text()
    for variable in ("LIARA_RECORDS_USER", "LIARA_RECORDS_PASSWORD", "LIARA_RECORDS_DB"):
        assert f"${variable}" in text
    assert "CREATE ROLE" in text and "CREATE DATABASE" in text and "OWNER" in text
    subprocess.run(["bash", "-n", str(script)], check=True)


async def test_the_record_database_script_gives_the_workers_user_a_database_it_can_set_up_and_write(
    services: dict[str, Any], postgres: LocalPostgres
) -> None:
    # The script as the postgres image runs it: psql on the server's socket, as its superuser.
    mounts = dict(reversed(str(volume).split(":")[:2]) for volume in services["temporal-postgresql"]["volumes"])
    script = REPO_ROOT / mounts["/docker-entrypoint-initdb.d/liara-records.sh"]
    tag = uuid.uuid4().hex[:8]
    user, database = f"liara_compose_{tag}", f"liara_records_{tag}"
    env = {
        **os.environ,
        "LIARA_RECORDS_USER": user,
        "LIARA_RECORDS_PASSWORD": "compose-secret",
        "LIARA_RECORDS_DB": database,
        "POSTGRES_USER": "postgres",
        "PGHOST": str(postgres.directory),
        "PGPORT": str(postgres.port),
        "PATH": f"{postgres_bin_dir()}:{os.environ['PATH']}",
    }
    done = await asyncio.to_thread(subprocess.run, ["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    # What liara-setup and then a worker do with the worker's URL.
    url = f"postgresql://{user}:compose-secret@{postgres.host}:{postgres.port}/{database}"
    async with PostgresRecordStore(url) as store:
        assert await store.create_schema() == SCHEMA_VERSION
        health = await store.check()
        assert health.ok, health
        await create(store, "crisis-compose")
        record = await store.read("crisis-compose")
    assert record is not None and record["crisis_id"] == "crisis-compose"


def test_setup_creates_the_record_tables_before_any_worker_starts(services: dict[str, Any]) -> None:
    setup = services["liara-setup"]
    assert command_text(setup["command"]) == "liara setup"
    assert setup["restart"] == "no"
    assert setup["build"] == services["temporal-worker"]["build"]
    assert depends_on(setup) == {"temporal": "service_healthy"}
    env = environment(setup)
    assert env[RECORD_STORE_ENV] == environment(services["temporal-worker"])[RECORD_STORE_ENV]
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_worker_stops_gracefully_and_restarts(services: dict[str, Any]) -> None:
    worker = services["temporal-worker"]
    assert worker["restart"] == "unless-stopped"
    # The worker gives running activities 10 s after SIGTERM; Compose must not SIGKILL it sooner.
    assert seconds(worker["stop_grace_period"]) > 10


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if str(service.get("restart", "no")).startswith(("no", "on-failure")):
            continue  # a one-shot job
        healthcheck = service.get("healthcheck") or {}
        assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} has no healthcheck"


def test_worker_healthcheck_needs_no_port(services: dict[str, Any]) -> None:
    test = services["temporal-worker"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    script = test[-1]
    assert "http" not in script and "localhost" not in script
    assert "configured_record_store().check()" in script, "the check asks the record store the worker writes"


def test_web_ui_is_on_8233(services: dict[str, Any]) -> None:
    ui = services["temporal-ui"]
    assert published_ports(ui) == {8233: 8080}
    env = environment(ui)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_CORS_ORIGINS"] == "http://localhost:8233"


def test_temporal_frontend_is_on_7233(services: dict[str, Any]) -> None:
    assert published_ports(services["temporal"]) == {7233: 7233}


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "image" not in service:
            assert "build" in service, f"{name} has neither image nor build"
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image} has no tag"
        assert tag != "latest", f"{name}: image {image} is not pinned"


def test_crisis_search_attributes_are_registered(services: dict[str, Any]) -> None:
    temporal = services["temporal"]
    script = command_text(temporal.get("entrypoint")) + " " + command_text(temporal.get("command"))
    assert "temporal operator search-attribute create" in script
    assert "--type Keyword" in script
    for name in CRISIS_ATTRIBUTE_NAMES:
        assert re.search(rf"\b{name}\b", script), f"{name} is not registered"
    # The server still starts the image's way, after the registration is sent to the background.
    assert script.rstrip().endswith("exec /etc/temporal/entrypoint.sh autosetup")
    # ... and is only healthy (so workers only start) once every attribute is there.
    healthcheck = command_text(temporal["healthcheck"]["test"])
    for name in CRISIS_ATTRIBUTE_NAMES:
        assert name in healthcheck


# Dockerfile


def test_dockerfile_uses_a_pinned_slim_python() -> None:
    base = next(arguments for instruction, arguments in dockerfile_instructions() if instruction == "FROM")
    image = base.split()[0]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-[a-z]+)?", image), image


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [arguments.strip() for instruction, arguments in dockerfile_instructions() if instruction == "USER"]
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def dockerfile_env() -> dict[str, str]:
    """The ``ENV`` settings of the Dockerfile (``KEY=VALUE`` form)."""
    settings: dict[str, str] = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            settings.update(item.split("=", 1) for item in shlex.split(arguments) if "=" in item)
    return settings


def shell_steps() -> list[list[str]]:
    """Every simple command of every ``RUN``, in order, split into words."""
    steps = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "RUN":
            steps += [shlex.split(step) for step in re.split(r"&&|;", arguments) if step.strip()]
    return steps


def test_dockerfile_creates_the_record_directory_owner_only() -> None:
    # Crisis records are not encrypted: like the record store, the image makes their directory
    # 0700 (a named volume mounted there starts with this owner and mode).
    record_dir = dockerfile_env()[RECORD_DIR_ENV]
    assert record_dir == "/data/crises"
    steps = shell_steps()
    created = [n for n, step in enumerate(steps) if step[0] in {"mkdir", "install"} and record_dir in step]
    assert created, f"no RUN creates {record_dir}"
    modes = [
        (n, step[1])
        for n, step in enumerate(steps)
        if step[0] == "chmod" and record_dir in step[2:] and not step[1].startswith("-")
    ]
    modes += [(n, step[step.index("-m") + 1]) for n, step in enumerate(steps) if step[0] in {"mkdir", "install"}
              and record_dir in step and "-m" in step]  # fmt: skip
    assert modes, f"{record_dir} keeps the default mode (0755): chmod 700 it"
    last, mode = max(modes)
    assert last >= created[-1] and mode in {"700", "0700", "u=rwx,go="}, (mode, steps)
    owned = [n for n, step in enumerate(steps) if step[0] == "chown" and record_dir in step]
    assert owned and owned[-1] >= created[-1], "the worker's user must own the record directory"


def test_compose_leaves_the_record_directory_to_the_image(services: dict[str, Any]) -> None:
    # Nothing in the worker's command or entrypoint creates a record directory with another mode
    # (the image's, for `docker run` with files, stays 0700).
    worker = services["temporal-worker"]
    for part in ("command", "entrypoint"):
        text = command_text(worker.get(part))
        assert "mkdir" not in text and "chmod" not in text and "install -d" not in text, text


def test_dockerfile_installs_the_package_and_runs_the_worker() -> None:
    instructions = dockerfile_instructions()
    runs = " ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert "pip install --no-cache-dir ." in runs
    assert "-e " not in runs, "the image installs the project non-editable"
    assert any(instruction == "WORKDIR" for instruction, _ in instructions)
    cmd = next(arguments for instruction, arguments in reversed(instructions) if instruction == "CMD")
    assert command_text(yaml.safe_load(cmd)) in {"liara worker", "python -m cognition.liara.worker"}


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".venv", ".git", "data"} <= ignored
    assert {"**/__pycache__", "*.egg-info"} <= ignored
    for source in copied_sources():
        assert source not in ignored, f"{source} is copied into the image but ignored"


def copied_sources() -> list[str]:
    sources: list[str] = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "COPY" and "--from" not in arguments:
            sources += shlex.split(arguments)[:-1]
    return sources


# The wheel the image installs


def test_the_image_sources_build_a_complete_wheel(tmp_path: Path) -> None:
    """Build the wheel from exactly what the Dockerfile copies (not in the working tree)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in copied_sources():
        origin = REPO_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check"]
        + ["--wheel-dir", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = wheels.glob("liara_temporal_agency-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points_file = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(entry_points_file).decode())
    for module in (
        "app/temporal/workflows.py",
        "app/temporal/activities.py",
        "app/temporal/worker.py",
        "cognition/liara/cli.py",
        "cognition/liara/worker.py",
        "cognition/liara/agency.py",
    ):
        assert module in names, f"{module} is missing from the wheel"
    assert entry_points["console_scripts"]["liara"] == "cognition.liara.cli:main"

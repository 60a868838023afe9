"""The bad-input catalogue: every kind of bad input, through the command line and the Python API.

For each row: one clear sentence (never a traceback), a non-zero exit code from the CLI, a typed
``LiaraError`` from the API, nothing written outside the data directory, and the records already
there left intact. Commands run in a sandbox directory whose data directory is ``crises/``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.service import RPCError, RPCStatusCode

from app.temporal.agents import load_executor_registry
from app.temporal.errors import InvalidCrisisRequestError, LiaraError, TemporalUnavailableError
from app.temporal.models import CrisisCompletion, CrisisSnapshot, PhaseOutcome, PhaseStatus
from app.temporal.records import FileRecordStore
from cognition.liara.actions import missions_from_actions
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.errors import CrisisNotFoundError, CrisisWaitTimeoutError
from tests.helpers import assert_eventually
from tests.helpers.cli import run_cli
from tests.helpers.processes import WorkerProcess, run_script
from tests.helpers.service import WRONG_JSON_TYPES, phase

pytestmark = pytest.mark.integration

ID_RULE = "use only letters, digits, '.', '_' and '-', starting with a letter or digit"
UNREACHABLE = "127.0.0.1:1"


def one_sentence(stderr: str) -> str:
    """The CLI's failure contract: exactly one ``Error: ...`` line ending in a full stop, no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ") and lines[0].endswith("."), stderr
    return lines[0]


def worker_sentence(output: str) -> str:
    """A worker that refuses to start: exactly one ``ERROR - ...`` sentence, no traceback."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("ERROR - ")]
    assert len(errors) == 1, output
    assert errors[0].endswith("."), errors[0]
    assert "Liara worker is running" not in output
    return errors[0]


@dataclass
class Sandbox:
    """The working directory of every command, its data directory and what was there before."""

    root: Path
    env: dict[str, str]
    data_dir: Path
    earlier: dict[Path, bytes] = field(default_factory=dict)
    outside: set[Path] = field(default_factory=set)

    def paths_outside_data_dir(self) -> set[Path]:
        return {path for path in self.root.rglob("*") if not path.is_relative_to(self.data_dir)}

    def remember(self) -> None:
        """Take the state that ``assert_untouched`` compares with (after the test wrote its inputs)."""
        self.outside = self.paths_outside_data_dir()
        self.earlier = {path: path.read_bytes() for path in self.data_dir.glob("*.json")}

    def assert_untouched(self) -> None:
        assert self.paths_outside_data_dir() == self.outside, "something was written outside the data directory"
        for path, content in self.earlier.items():
            assert path.read_bytes() == content, f"earlier record {path.name} changed"

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(env or self.env, self.root, *args, timeout=timeout)

    async def acli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.cli, *args, env=env)

    def agency(self, **options: Any) -> LiaraTemporalAgency:
        return LiaraTemporalAgency(
            **{"temporal_host": self.env["TEMPORAL_ADDRESS"], "task_queue": self.env["LIARA_TASK_QUEUE"], **options}
        )


async def write_earlier_record(data_dir: Path) -> None:
    """A finished crisis recorded before the bad input arrives."""
    store = FileRecordStore(data_dir)
    moment = datetime(2026, 1, 16, 10, 30, tzinfo=UTC)
    done = PhaseOutcome(
        phase_id="recon-phase-1",
        agent_id="recon-agent-001",
        action="reconnaissance",
        status=PhaseStatus.COMPLETED,
        attempts=1,
        timestamp=moment,
    )
    await store.create(
        CrisisSnapshot(
            crisis_id="crisis-earlier",
            workflow_id="crisis-workflow-crisis-earlier",
            run_id="run-earlier",
            target="target-alpha",
            initiated_by="tester",
            started_at=moment,
            phases=[done.model_copy(update={"status": PhaseStatus.PENDING})],
        )
    )
    await store.finalize(
        CrisisCompletion(crisis_id="crisis-earlier", status="completed", completed_at=moment, phases=[done])
    )


@pytest_asyncio.fixture
async def sandbox(liara_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sandbox]:
    root = tmp_path / "work"
    root.mkdir()
    data_dir = root / "crises"
    await write_earlier_record(data_dir)
    monkeypatch.chdir(root)  # the API runs here too, so a stray file would show up in the sandbox
    box = Sandbox(root=root, env={**liara_env, "LIARA_CRISIS_DIR": str(data_dir)}, data_dir=data_dir)
    box.remember()
    yield box


async def assert_not_started(dev_server, workflow_id: str) -> None:
    with pytest.raises(RPCError) as raised:
        await dev_server.client.get_workflow_handle(workflow_id).describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND


# --- requests the rules refuse -----------------------------------------------------------------


@dataclass(frozen=True)
class BadRequest:
    """One row: the CLI arguments after ``trigger`` (``FILE`` is the missions file), the API call's
    arguments over a valid request, and what the one sentence must say (CLI, then API if different).
    """

    cli: tuple[str, ...]
    api: dict[str, Any]
    says: str
    api_says: str | None = None
    missions_file: Any = None


TEN_THOUSAND = "x" * 10_000
SCHEDULES_IDS = "begins with sched-, which only the runs of schedules take; choose another crisis id"
KEYS_IDS = (
    "has the form crisis-key-<32 hex digits>, which only the crises of idempotency keys take; choose another crisis id"
)
#: Valid phases, to pair with a bad field elsewhere.
VALID = [phase()]

BAD_REQUESTS = {
    # The command line names what the user typed: TARGET, --crisis-id; the Python API its arguments.
    "empty target": BadRequest(
        ("", "recon"),
        {"target_member": ""},
        "Invalid crisis request: TARGET: String should have at least 1 character.",
        api_says="target_member: String should have at least 1 character",
    ),
    "whitespace target": BadRequest(
        ("   ", "recon"),
        {"target_member": " \t "},
        "Invalid crisis request: TARGET: String should have at least 1 character.",
        api_says="target_member: String should have at least 1 character",
    ),
    "target with /": BadRequest(
        ("a/b", "recon"), {"target_member": "a/b"}, f"TARGET: {ID_RULE}.", api_says=f"target_member: {ID_RULE}"
    ),
    "target ..": BadRequest(
        ("..", "recon"), {"target_member": ".."}, f"TARGET: {ID_RULE}.", api_says=f"target_member: {ID_RULE}"
    ),
    "crisis id with /": BadRequest(
        ("--crisis-id", "../escape", "target-alpha", "recon"),
        {"crisis_id": "../escape"},
        f"Invalid crisis request: --crisis-id: {ID_RULE}.",
        api_says=f"crisis_id: {ID_RULE}",
    ),
    "crisis id ..": BadRequest(
        ("--crisis-id", "..", "target-alpha", "recon"), {"crisis_id": ".."}, "--crisis-id: ", api_says="crisis_id: "
    ),
    "empty crisis id": BadRequest(
        ("--crisis-id", "", "target-alpha", "recon"),
        {"crisis_id": ""},
        "--crisis-id: String should have at least 1",
        api_says="crisis_id: String should have at least 1",
    ),
    # The forms of the agency's own crisis ids: a schedule's runs', an idempotency key's.
    "crisis id of a schedule's run": BadRequest(
        ("--crisis-id", "sched-nightly-2026-12-02T03-00-00Z", "target-alpha", "recon"),
        {"crisis_id": "sched-nightly-2026-12-02T03-00-00Z"},
        f"Invalid crisis request: --crisis-id: {SCHEDULES_IDS}.",
        api_says=f"Invalid crisis request: crisis_id: {SCHEDULES_IDS}.",
    ),
    "crisis id of an idempotency key": BadRequest(
        ("--crisis-id", "crisis-key-ba7816bf8f01cfea414140de5dae2223", "target-alpha", "recon"),
        {"crisis_id": "crisis-key-ba7816bf8f01cfea414140de5dae2223"},
        f"Invalid crisis request: --crisis-id: {KEYS_IDS}.",
        api_says=f"Invalid crisis request: crisis_id: {KEYS_IDS}.",
    ),
    "phase id with /": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase("a/b")]},
        f"missions.0.phase_id: {ID_RULE}",
        missions_file=[phase("a/b")],
    ),
    "phase id ..": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase("..")]},
        f"missions.0.phase_id: {ID_RULE}",
        missions_file=[phase("..")],
    ),
    "phase id with NUL": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase("a\x00b")]},
        f"missions.0.phase_id: {ID_RULE}",
        missions_file=[phase("a\x00b")],
    ),
    "target with NUL (API only: argv cannot hold NUL)": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"target_member": "a\x00b"},
        "missions.0.target: ",
        api_says=f"target_member: {ID_RULE}",
        missions_file=[phase(target="a\x00b")],
    ),
    "10,000-character target": BadRequest(
        (TEN_THOUSAND, "recon"),
        {"target_member": TEN_THOUSAND},
        "TARGET: String should have at most 128 characters",
        api_says="target_member: String should have at most 128 characters",
    ),
    "10,000-character crisis id": BadRequest(
        ("--crisis-id", TEN_THOUSAND, "target-alpha", "recon"),
        {"crisis_id": TEN_THOUSAND},
        "--crisis-id: String should have at most 128 characters",
        api_says="crisis_id: String should have at most 128 characters",
    ),
    "10,000-character phase id": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase(TEN_THOUSAND)]},
        "missions.0.phase_id: String should have at most 128 characters",
        missions_file=[phase(TEN_THOUSAND)],
    ),
    "non-ASCII target": BadRequest(
        ("tärget", "recon"), {"target_member": "tärget"}, f"TARGET: {ID_RULE}", api_says=f"target_member: {ID_RULE}"
    ),
    "non-ASCII phase id": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase("phäse-1")]},
        f"missions.0.phase_id: {ID_RULE}",
        missions_file=[phase("phäse-1")],
    ),
    "duplicate phase ids": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase("p-1"), phase("p-1")]},
        "missions: phase_id 'p-1' appears more than once",
        missions_file=[phase("p-1"), phase("p-1")],
    ),
    "zero phases": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": []},
        "missions: give at least one phase.",
        missions_file=[],
    ),
    "10,000 phases": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase(f"p-{n}") for n in range(10_000)]},
        "missions: give at most 1000 phases, not 10000.",
        missions_file=[phase(f"p-{n}") for n in range(10_000)],
    ),
    "negative priority": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase(priority=-1)]},
        "missions.0.priority: Input should be greater than or equal to 0",
        missions_file=[phase(priority=-1)],
    ),
    "fractional priority": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase(priority=1.5)]},
        "missions.0.priority: Input should be a valid integer",
        missions_file=[phase(priority=1.5)],
    ),
    "text priority": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": [phase(priority="high")]},
        "missions.0.priority: Input should be a valid integer",
        missions_file=[phase(priority="high")],
    ),
    "action word with invalid characters": BadRequest(
        ("target-alpha", "recon", "rec!on"),
        {"missions": [phase(action="rec!on")]},
        "Action 'rec!on' is not a word: use up to 64 letters, digits, '_' and '-', starting with a letter.",
        api_says="missions.0.action: use a word of letters, digits, '_' and '-', starting with a letter",
    ),
    "retry intervals out of order": BadRequest(
        ("--retry-maximum-interval", "1", "--retry-initial-interval", "5", "target-alpha", "recon"),
        {"retry": {"maximum_interval_seconds": 1, "initial_interval_seconds": 5}},
        "Invalid crisis request: --retry-maximum-interval (1) must not be less than --retry-initial-interval (5).",
        api_says="retry: maximum_interval_seconds (1) must not be less than initial_interval_seconds (5)",
    ),
    "retry interval of zero": BadRequest(
        ("--retry-maximum-interval", "0", "target-alpha", "recon"),
        {"retry": {"maximum_interval_seconds": 0}},
        "Invalid crisis request: --retry-maximum-interval: Input should be greater than 0.",
        api_says="retry.maximum_interval_seconds: Input should be greater than 0",
    ),
    # What people type is as strict in a missions file and from the Python API as over HTTP.
    **{
        name: BadRequest(
            ("target-alpha", "--missions-file", "FILE"),
            {"missions": [phase(**fields)]},
            f"Invalid crisis request: missions.0.{field}: {says}.",
            missions_file=[phase(**fields)],
        )
        for name, (fields, field, says) in WRONG_JSON_TYPES.items()
    },
    "missions not a list (API)": BadRequest(
        ("target-alpha", "--missions-file", "FILE"),
        {"missions": {"phase_id": "p-1"}},
        "Missions file FILE must hold a JSON list of phases.",
        api_says="missions must be a list of phases, not dict",
        missions_file={"phase_id": "p-1"},
    ),
}


@pytest.mark.parametrize("row", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_a_bad_request_is_refused_with_one_sentence_and_starts_nothing(row: BadRequest, sandbox, dev_server):
    missions_file = sandbox.root / "missions.json"
    if row.missions_file is not None:
        missions_file.write_text(json.dumps(row.missions_file))
    sandbox.remember()
    crisis_id = f"bad-input-{uuid.uuid4().hex[:8]}"
    cli_args = [str(missions_file) if arg == "FILE" else arg for arg in row.cli]
    if "--crisis-id" not in cli_args:
        cli_args = ["--crisis-id", crisis_id, *cli_args]

    refused = await sandbox.acli("trigger", *cli_args)

    assert refused.returncode == 1, refused.stderr
    assert refused.stdout == ""
    message = one_sentence(refused.stderr)
    assert row.says.replace("FILE", str(missions_file)) in message, message

    api_kwargs = {"target_member": "target-alpha", "missions": VALID, "crisis_id": crisis_id, **row.api}
    async with sandbox.agency() as agency:
        with pytest.raises(InvalidCrisisRequestError) as raised:
            await agency.trigger_crisis_response(**api_kwargs)
    assert isinstance(raised.value, LiaraError)
    api_message = str(raised.value)
    assert (row.api_says or row.says) in api_message, api_message
    assert "\n" not in api_message and len(api_message) < 1000, api_message

    await assert_not_started(dev_server, f"crisis-workflow-{crisis_id}")
    sandbox.assert_untouched()
    assert sorted(p.name for p in sandbox.data_dir.iterdir()) == ["crisis-earlier.json"]


@pytest.mark.parametrize(("fields", "field", "says"), WRONG_JSON_TYPES.values(), ids=WRONG_JSON_TYPES.keys())
async def test_a_playbook_phase_of_the_wrong_json_type_is_refused_where_it_is_in_the_playbook(
    fields, field, says, sandbox, dev_server
):
    playbook = sandbox.root / "wrong-types.json"
    playbook.write_text(
        json.dumps({"name": "wrong-types", "target_member": "target-alpha", "phases": [phase(**fields)]})
    )
    sandbox.remember()
    sentence = f"Playbook wrong-types: phases[0].{field}: {says}."

    refused = await sandbox.acli("trigger", "--playbook", str(playbook), "--crisis-id", "wrong-types")

    assert refused.returncode == 1 and refused.stdout == ""
    assert one_sentence(refused.stderr) == f"Error: {sentence}"
    async with sandbox.agency() as agency:
        with pytest.raises(InvalidCrisisRequestError) as raised:
            await agency.start_playbook(playbook, crisis_id="wrong-types")
    assert str(raised.value) == sentence
    await assert_not_started(dev_server, "crisis-workflow-wrong-types")
    sandbox.assert_untouched()


async def test_no_message_quotes_a_pattern(sandbox):
    """Each rule of a name is said in words (the input names', the ids'), never as its pattern."""
    async with sandbox.agency() as agency:
        with pytest.raises(InvalidCrisisRequestError) as raised:
            await agency.trigger_crisis_response("target-alpha", VALID, inputs={"1st": "x"})
    message = str(raised.value)
    assert message == (
        "Invalid crisis request: inputs.1st: use only letters, digits, '_' and '-', starting with a letter or '_'."
    )
    assert "pattern" not in message and "Value error" not in message


async def test_a_trigger_without_actions_is_a_usage_error(sandbox):
    refused = await sandbox.acli("trigger", "target-alpha")

    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "Invalid value for ACTIONS: give either ACTIONS or --missions-file" in refused.stderr
    sandbox.assert_untouched()


MISSIONS_FILES = {
    "not JSON": ("[{phase_id: 1}", "is not valid JSON (Expecting property name enclosed in double quotes"),
    "not UTF-8": (b"\xff\xfe\x00", "is not valid JSON ('utf-8' codec can't decode byte 0xff"),
    "not a list": ('{"phase_id": "p-1"}', "must hold a JSON list of phases."),
    "missing": (None, "Cannot read missions file"),
    "a directory": ("DIRECTORY", "Cannot read missions file"),
}


@pytest.mark.parametrize(("content", "says"), MISSIONS_FILES.values(), ids=MISSIONS_FILES.keys())
async def test_a_malformed_missions_file_is_refused_with_one_sentence(content, says, sandbox):
    path = sandbox.root / "missions.json"
    if content == "DIRECTORY":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    sandbox.remember()

    for command in (("trigger", "target-alpha"), ("add-phases", "crisis-workflow-anything")):
        refused = await sandbox.acli(*command, "--missions-file", str(path))

        assert refused.returncode == 1, refused.stderr
        message = one_sentence(refused.stderr)
        assert says in message and str(path) in message, message
    sandbox.assert_untouched()


@pytest.mark.parametrize("missions", ["recon", 42, None, {"phase_id": "p-1"}], ids=repr)
async def test_the_api_refuses_missions_that_are_not_a_list(missions, sandbox):
    async with sandbox.agency() as agency:
        with pytest.raises(InvalidCrisisRequestError, match=r"^Invalid crisis request: missions must be a list"):
            await agency.trigger_crisis_response("target-alpha", missions)
        with pytest.raises(
            InvalidCrisisRequestError, match=r"^Invalid mission phases: the phases to add must be a list"
        ):
            await agency.add_phases("crisis-workflow-anything", missions)
    sandbox.assert_untouched()


# --- crises that do not exist, servers that cannot be used ----------------------------------------

UNKNOWN = "crisis-workflow-does-not-exist"
UNKNOWN_SAYS = f"No crisis workflow '{UNKNOWN}' in namespace 'default': check the id printed by `liara trigger`."


@pytest.mark.parametrize(
    "command",
    [
        ("status", UNKNOWN),
        ("wait", UNKNOWN),
        ("watch", UNKNOWN),
        ("cancel", UNKNOWN),
        ("approve", UNKNOWN, "recon-phase-1"),
        ("reject", UNKNOWN, "recon-phase-1"),
        ("add-phases", UNKNOWN, "recon"),
    ],
    ids=lambda command: command[0],
)
async def test_an_unknown_workflow_id_is_one_sentence_from_every_command(command, sandbox):
    refused = await sandbox.acli(*command)

    assert refused.returncode == 1, refused.stderr
    assert one_sentence(refused.stderr) == f"Error: {UNKNOWN_SAYS}"
    sandbox.assert_untouched()


async def test_an_unknown_workflow_id_is_a_crisis_not_found_error_from_every_api_call(sandbox):
    async with sandbox.agency() as agency:
        calls = {
            "get_crisis_status": agency.get_crisis_status(UNKNOWN),
            "wait_for_crisis_completion": agency.wait_for_crisis_completion(UNKNOWN, timeout=30),
            "cancel_crisis": agency.cancel_crisis(UNKNOWN),
            "approve_phase": agency.approve_phase(UNKNOWN, "recon-phase-1", "tester"),
            "reject_phase": agency.reject_phase(UNKNOWN, "recon-phase-1", "tester"),
            "add_phases": agency.add_phases(UNKNOWN, missions_from_actions("target-alpha", ["recon"])),
        }
        for name, call in calls.items():
            with pytest.raises(CrisisNotFoundError) as raised:
                await call
            assert str(raised.value) == UNKNOWN_SAYS, name
    sandbox.assert_untouched()


UNREACHABLE_SAYS = (
    f"Cannot reach the Temporal server at {UNREACHABLE}: start it with `python scripts/setup_temporal.py start` "
    "or point TEMPORAL_ADDRESS at a running server."
)


async def test_an_unreachable_server_is_one_sentence_from_the_cli_the_worker_and_the_api(sandbox):
    env = {**sandbox.env, "TEMPORAL_ADDRESS": UNREACHABLE}
    for command in (("trigger", "target-alpha", "recon"), ("status", UNKNOWN), ("list",), ("setup",)):
        refused = await sandbox.acli(*command, env=env)

        assert refused.returncode == 1, (command, refused.stderr)
        assert one_sentence(refused.stderr) == f"Error: {UNREACHABLE_SAYS}", command

    worker = await sandbox.acli("worker", env=env)
    assert worker.returncode == 1
    assert worker_sentence(worker.stdout + worker.stderr) == f"ERROR - {UNREACHABLE_SAYS}"

    doctor = await sandbox.acli("doctor", env=env)
    assert doctor.returncode == 1
    assert "Traceback" not in doctor.stdout + doctor.stderr
    assert f"FAIL connection: {UNREACHABLE_SAYS}" in doctor.stdout.splitlines()

    with pytest.raises(TemporalUnavailableError) as raised:
        async with LiaraTemporalAgency(temporal_host=UNREACHABLE):
            pass
    assert str(raised.value) == UNREACHABLE_SAYS
    sandbox.assert_untouched()


@pytest.mark.parametrize("address", ["nonsense:abc", "localhost:99999", ":7233", "localhost"])
async def test_an_address_that_is_not_host_port_is_one_sentence_naming_it(sandbox, address):
    says = (
        f"The Temporal address {address!r} is not host:port with a port from 1 to 65535: "
        "fix --address or TEMPORAL_ADDRESS (e.g. localhost:7233)."
    )
    for command in (("--address", address, "list"), ("--address", address, "status", UNKNOWN)):
        refused = await sandbox.acli(*command)
        assert refused.returncode == 1, (command, refused.stderr)
        assert one_sentence(refused.stderr) == f"Error: {says}", command
    refused = await sandbox.acli("list", env={**sandbox.env, "TEMPORAL_ADDRESS": address})
    assert refused.returncode == 1 and one_sentence(refused.stderr) == f"Error: {says}"

    with pytest.raises(LiaraError) as raised:
        async with LiaraTemporalAgency(temporal_host=address):
            pass
    assert str(raised.value) == says
    sandbox.assert_untouched()


async def test_a_wrong_namespace_is_one_sentence_naming_it(sandbox):
    env = {**sandbox.env, "TEMPORAL_NAMESPACE": "nope"}
    says = f"Namespace 'nope' does not exist on the Temporal server at {sandbox.env['TEMPORAL_ADDRESS']}: "
    for command in (("trigger", "target-alpha", "recon"), ("status", UNKNOWN), ("list",)):
        refused = await sandbox.acli(*command, env=env)

        assert refused.returncode == 1, (command, refused.stderr)
        message = one_sentence(refused.stderr)
        assert message.startswith(f"Error: {says}") and "TEMPORAL_NAMESPACE" in message, message

    worker = await sandbox.acli("worker", env=env)
    assert worker.returncode == 1
    assert worker_sentence(worker.stdout + worker.stderr).startswith(f"ERROR - {says}")

    with pytest.raises(TemporalUnavailableError) as raised:
        async with sandbox.agency(namespace="nope"):
            pass
    assert str(raised.value).startswith(says)
    sandbox.assert_untouched()


# --- executor configuration --------------------------------------------------------------------

CONFIGS = {
    "unknown executor": (
        '[agents.actions]\nreconnaissance = "recon-api"\n',
        "maps agents.actions.reconnaissance to executor 'recon-api', which is not defined under [executors].",
    ),
    "unknown executor type": (
        '[executors.recon-api]\ntype = "satellite"\n',
        "sets executors.recon-api.type to unknown executor type 'satellite' "
        "(built in: simulate, http, command, mcp, llm; installed plugins: none).",
    ),
    "malformed TOML": (
        '[agents\ndefault = "simulate"\n',
        "is not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 8).",
    ),
}


@pytest.mark.parametrize(("content", "says"), CONFIGS.values(), ids=CONFIGS.keys())
async def test_a_bad_executor_configuration_stops_the_worker_and_fails_doctor(content, says, sandbox):
    config = sandbox.root / "liara.toml"
    config.write_text(content)
    sandbox.remember()
    sentence = f"Configuration file {config} {says}"

    worker = await sandbox.acli("worker")
    assert worker.returncode == 1
    assert worker_sentence(worker.stdout + worker.stderr) == f"ERROR - {sentence}"

    doctor = await sandbox.acli("doctor")
    assert doctor.returncode == 1
    assert "Traceback" not in doctor.stdout + doctor.stderr
    assert f"FAIL executor configuration: {sentence}" in doctor.stdout.splitlines(), doctor.stdout

    with pytest.raises(LiaraError) as raised:
        load_executor_registry(config)
    assert str(raised.value) == sentence
    sandbox.assert_untouched()


async def test_a_bad_webhooks_table_stops_the_main_worker_with_one_sentence(sandbox):
    config = sandbox.root / "liara.toml"
    config.write_text('[webhooks.ops]\nurl = "https://hooks.example/liara"\nsecret_env = "LIARA_TEST_OPS_SECRET"\n')
    sandbox.remember()

    worker = await asyncio.to_thread(run_script, "src/app/temporal/worker.py", sandbox.env, sandbox.root)

    assert worker.returncode == 1
    assert worker_sentence(worker.stdout + worker.stderr) == (
        "ERROR - Webhook 'ops' needs a secret of at least 16 characters in the environment variable "
        "LIARA_TEST_OPS_SECRET."
    )
    sandbox.assert_untouched()


async def test_a_webhook_over_plain_http_to_another_machine_stops_whatever_reads_it(sandbox):
    """The notifier, the service's deliveries, the main worker and a crisis that names the webhook
    all refuse it, in one sentence naming its key (and never its URL, which may hold a secret)."""
    config = sandbox.root / "liara.toml"
    config.write_text('[webhooks.ops]\nurl = "http://hooks.example/liara"\nsecret_env = "LIARA_TEST_OPS_SECRET"\n')
    sandbox.remember()
    env = {**sandbox.env, "LIARA_TEST_OPS_SECRET": "a-webhook-secret-for-tests-1234"}
    sentence = (
        f"Configuration file {config} sets webhooks.ops.url wrongly: an http:// URL may only name this machine "
        "(localhost, 127.0.0.0/8 or ::1), as it would carry events and their signatures unencrypted: use https://."
    )

    for command in (["notifier"], ["serve", "--port", "0"], ["trigger", "target-alpha", "recon", "--webhook", "ops"]):
        done = await sandbox.acli(*command, env=env)
        assert done.returncode == 1, command
        assert one_sentence(done.stderr) == f"Error: {sentence}", command

    worker = await asyncio.to_thread(run_script, "src/app/temporal/worker.py", env, sandbox.root)
    assert worker.returncode == 1
    assert worker_sentence(worker.stdout + worker.stderr) == f"ERROR - {sentence}"
    sandbox.assert_untouched()


async def test_a_configuration_file_that_does_not_parse_is_named_so_whatever_reads_it(sandbox):
    """Webhooks (liara notifier, liara trigger for those every crisis tells) and the record store
    (liara record, the main worker) read the same file: its problem is the file's, not the executors'."""
    config = sandbox.root / "liara.toml"
    config.write_text('[webhooks.ops\nurl = "https://hooks.example/liara"\n')
    sandbox.remember()
    sentence = (
        f"Configuration file {config} is not valid TOML: Expected ']' at the end of a table declaration "
        "(at line 1, column 14)."
    )

    for command in (["notifier"], ["trigger", "target-alpha", "recon"], ["record", "list"]):
        done = await sandbox.acli(*command)
        assert done.returncode == 1, command
        assert one_sentence(done.stderr) == f"Error: {sentence}", command

    worker = await asyncio.to_thread(run_script, "src/app/temporal/worker.py", sandbox.env, sandbox.root)
    assert worker.returncode == 1
    assert worker_sentence(worker.stdout + worker.stderr) == f"ERROR - {sentence}"
    sandbox.assert_untouched()


# --- a record store setting that cannot be used -----------------------------------------------------

URL_ADVICE = "write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
BAD_STORE_URLS = {
    "another scheme": (
        "mysql://liara:secret@db/records",
        f"must be a postgresql:// URL, not one starting 'mysql': {URL_ADVICE}, or leave it unset to keep records "
        "in files.",
    ),
    "a port that is no number": (
        "postgresql://liara:secret@db:54x2/records",
        f"has port '54x2', which is not a port number: {URL_ADVICE}.",
    ),
    "an unknown parameter": (
        "postgresql://liara:secret@db/records?colour=red",
        f'is not a valid PostgreSQL URL (invalid URI query parameter: "colour"): {URL_ADVICE}.',
    ),
    "no database": ("postgresql://liara:secret@db", f"names no database: {URL_ADVICE}."),
}


@pytest.mark.parametrize(("url", "says"), BAD_STORE_URLS.values(), ids=BAD_STORE_URLS.keys())
@pytest.mark.parametrize("where", ["environment", "liara.toml"])
async def test_a_bad_record_store_url_stops_the_worker_with_one_sentence(url, says, where, sandbox):
    env = sandbox.env
    if where == "environment":
        env, source = {**env, "LIARA_RECORD_STORE": url}, "LIARA_RECORD_STORE"
    else:
        config = sandbox.root / "liara.toml"
        config.write_text(f'record_store = "{url}"\n')
        source = f"Configuration file {config}: record_store"
    sandbox.remember()

    worker = await sandbox.acli("worker", env=env)

    assert worker.returncode == 1
    sentence = worker_sentence(worker.stdout + worker.stderr)
    assert sentence == f"ERROR - {source} {says}"
    assert "secret" not in worker.stdout + worker.stderr
    listed = await sandbox.acli("record", "list", env=env)
    assert listed.returncode == 1 and one_sentence(listed.stderr) == f"Error: {source} {says}"
    sandbox.assert_untouched()


# --- a record store that cannot be used ----------------------------------------------------------


async def problem_of(agency: LiaraTemporalAgency, workflow_id: str) -> str:
    """The one sentence ``status`` gives on a crisis that cannot go on; waits until there is one."""

    async def reported() -> bool:
        return "problem" in await agency.get_crisis_status(workflow_id)

    await assert_eventually(reported, timeout=60)
    status = await agency.get_crisis_status(workflow_id)
    assert status["status"] == "running", status
    return status["problem"]


async def assert_paused_with_one_sentence(
    sandbox: Sandbox, agency: LiaraTemporalAgency, workflow_id: str, activity: str, reason: str
) -> str:
    """status (CLI and API) names the failing activity and why; wait gives up with that sentence."""
    problem = await problem_of(agency, workflow_id)
    assert problem.startswith(f"{activity} has failed ") and reason in problem, problem

    async def api_wait() -> BaseException:
        with pytest.raises(CrisisWaitTimeoutError) as raised:
            await agency.wait_for_crisis_completion(workflow_id, timeout=0.5)
        return raised.value

    # The three ask side by side: the sooner the test repairs what it broke, the sooner the
    # activity's next retry (its backoff doubling from 1 s) finds it repaired.
    shown, waited, api_timeout = await asyncio.gather(
        sandbox.acli("status", workflow_id), sandbox.acli("wait", workflow_id, "--timeout", "1"), api_wait()
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == f"Crisis workflow {workflow_id}: running"
    problem_lines = [line for line in shown.stdout.splitlines() if line.startswith("Problem: ")]
    assert len(problem_lines) == 1 and reason in problem_lines[0], shown.stdout

    assert waited.returncode == 1
    message = one_sentence(waited.stderr)
    assert "keeps running, but " in message and f"{activity} has failed" in message and reason in message, message

    assert isinstance(api_timeout, LiaraError)
    assert reason in str(api_timeout)
    return problem


def assert_recorded_once(record_path: Path, phase_ids: list[str]) -> dict[str, Any]:
    record = json.loads(record_path.read_text())
    assert record["status"] == "completed"
    assert [p["phase_id"] for p in record["phases"]] == phase_ids
    assert {p["status"] for p in record["phases"]} == {"completed"}
    return record


async def test_a_corrupt_record_pauses_its_crisis_with_one_sentence_until_it_is_moved_aside(sandbox):
    crisis_id = f"corrupt-{uuid.uuid4().hex[:8]}"
    corrupt = sandbox.data_dir / f"{crisis_id}.json"
    corrupt.write_text('{"crisis_id": "corr')
    sandbox.remember()
    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", sandbox.env, sandbox.root)
    try:
        started = await sandbox.acli("trigger", "--crisis-id", crisis_id, "target-alpha", "recon")
        assert started.returncode == 0, started.stderr
        workflow_id = started.stdout.strip()
        async with sandbox.agency() as agency:
            await assert_paused_with_one_sentence(
                sandbox,
                agency,
                workflow_id,
                "initialize_crisis_response",
                f"crisis record {corrupt} is not valid JSON (Unterminated string starting at: line 1 column 15 "
                "(char 14)); move it aside",
            )
            sandbox.assert_untouched()  # the corrupt record is kept as it was, the earlier one too
            # Do what the sentence says; the crisis then goes on by itself.
            aside = sandbox.root / f"{crisis_id}.json.corrupt"
            corrupt.rename(aside)
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=120)
    finally:
        assert await asyncio.to_thread(worker.stop) == 0, worker.output
    assert result["success"] is True
    assert aside.read_text() == '{"crisis_id": "corr'
    assert_recorded_once(corrupt, ["recon-phase-1"])
    assert (sandbox.data_dir / "crisis-earlier.json").read_bytes() == sandbox.earlier[
        sandbox.data_dir / "crisis-earlier.json"
    ]


@pytest.mark.parametrize("repair", ["restored", "moved aside"])
async def test_a_record_corrupted_mid_crisis_pauses_it_until_it_is_repaired(repair: str, sandbox):
    crisis_id = f"corrupt-later-{uuid.uuid4().hex[:8]}"
    record = sandbox.data_dir / f"{crisis_id}.json"
    moved = record.with_suffix(".corrupt")
    missions = [phase("recon-phase-1"), phase("secure-phase-2", action="secure", priority=2, requires_approval=True)]
    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", sandbox.env, sandbox.root)
    try:
        async with sandbox.agency() as agency:
            workflow_id = await agency.trigger_crisis_response("target-alpha", missions, crisis_id=crisis_id)

            async def awaiting_approval() -> bool:
                status = await agency.get_crisis_status(workflow_id)
                return [p["status"] for p in status.get("phases", [])] == ["completed", "awaiting_approval"]

            await assert_eventually(awaiting_approval, timeout=60)
            good = record.read_bytes()
            record.write_text("{this is not json")
            sandbox.remember()
            approved = await sandbox.acli("approve", workflow_id, "secure-phase-2", "--by", "tester")
            assert approved.returncode == 0, approved.stderr

            # secure-phase-2 is the last phase: the final write records it, and pauses on the record.
            await assert_paused_with_one_sentence(
                sandbox, agency, workflow_id, "finalize_crisis_response", f"crisis record {record} is not valid JSON ("
            )
            sandbox.assert_untouched()  # the product never overwrites a record it cannot read
            if repair == "restored":
                record.write_bytes(good)  # say from a backup
            else:
                record.rename(moved)  # as the sentence says: the record is then written afresh
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=120)
    finally:
        assert await asyncio.to_thread(worker.stop) == 0, worker.output
    assert result["success"] is True
    written = assert_recorded_once(record, ["recon-phase-1", "secure-phase-2"])
    assert (written["target"], written["workflow_id"]) == ("target-alpha", workflow_id)
    assert written["phases"][1]["approved_by"] == "tester"
    if repair == "moved aside":
        assert moved.read_text() == "{this is not json", "the corrupt record stays where it was moved, untouched"


async def test_an_unwritable_record_directory_pauses_crises_with_one_sentence(sandbox):
    # A directory under a regular file cannot be created even by root (CI runs as root, which
    # ignores permission bits, so a read-only directory would prove nothing there).
    blocker = sandbox.root / "not-a-directory"
    blocker.write_text("a regular file where the record directory's parent should be\n")
    records = blocker / "crises"
    env = {**sandbox.env, "LIARA_CRISIS_DIR": str(records)}
    reason = f"cannot read crisis record {records}/"
    sandbox.remember()
    box = Sandbox(
        root=sandbox.root, env=env, data_dir=sandbox.data_dir, earlier=sandbox.earlier, outside=sandbox.outside
    )
    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", env, sandbox.root)
    try:
        doctor = await box.acli("doctor")
        assert doctor.returncode == 1
        assert any(
            line.startswith(f"FAIL crisis records: {records} is not writable here: ")
            for line in doctor.stdout.splitlines()
        ), doctor.stdout

        started = await box.acli("trigger", "target-alpha", "recon")
        assert started.returncode == 0, started.stderr
        workflow_id = started.stdout.strip()
        async with box.agency() as agency:
            await assert_paused_with_one_sentence(box, agency, workflow_id, "initialize_crisis_response", reason)
            box.assert_untouched()
            # Make the store usable again: the crisis goes on by itself.
            blocker.unlink()
            result = await agency.wait_for_crisis_completion(workflow_id, timeout=120)
    finally:
        assert await asyncio.to_thread(worker.stop, signal.SIGTERM) == 0, worker.output
    assert result["success"] is True
    assert_recorded_once(records / f"{result['crisis_id']}.json", ["recon-phase-1"])


async def test_a_record_database_refusing_the_password_pauses_crises_with_one_sentence(sandbox, postgres):
    env = {**sandbox.env, "LIARA_RECORD_STORE": postgres.url_as(postgres.user, "not-the-password")}
    box = Sandbox(
        root=sandbox.root, env=env, data_dir=sandbox.data_dir, earlier=sandbox.earlier, outside=sandbox.outside
    )
    reason = (
        f"cannot reach the crisis record database postgresql://{postgres.host}:{postgres.port}/{postgres.database}: "
        f'password authentication failed for user "{postgres.user}"'
    )
    worker = await asyncio.to_thread(WorkerProcess, "cognition/liara/worker.py", env, sandbox.root)
    try:
        started = await box.acli("trigger", "target-alpha", "recon")
        assert started.returncode == 0, started.stderr
        workflow_id = started.stdout.strip()
        async with box.agency() as agency:
            await assert_paused_with_one_sentence(box, agency, workflow_id, "initialize_crisis_response", reason)
            box.assert_untouched()
            doctor = await box.acli("doctor")
            (failed,) = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL crisis records: ")]
            assert failed.endswith(f'password authentication failed for user "{postgres.user}"'), failed
            await agency.client.get_workflow_handle(workflow_id).terminate("test over")
    finally:
        assert await asyncio.to_thread(worker.stop) == 0, worker.output
    assert "not-the-password" not in worker.output

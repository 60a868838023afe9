"""Where the connection settings come from: arguments, TEMPORAL_* variables, temporal.toml profiles.

Nothing connects here; the settings are what every worker, the CLI and the agency connect with.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from app.temporal.client import ConnectionSettings, ConnectionSettingsError
from app.temporal.errors import LiaraError
from cognition.liara.agency import LiaraTemporalAgency

CLOUD_PROFILE = """
[profile.default]
address = "crisis.acct1.tmprl.cloud:7233"
namespace = "crisis.acct1"
api_key = "profile-api-key"

[profile.default.grpc_meta]
x-team = "crisis"

[profile.staging]
address = "staging.example.com:7233"
namespace = "staging"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TEMPORAL_* or LIARA_TASK_QUEUE from the real environment, and no real temporal.toml."""
    for name in list(os.environ):
        if name.startswith("TEMPORAL_") or name == "LIARA_TASK_QUEUE":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


@pytest.fixture
def cloud_profile(tmp_path: Path) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(CLOUD_PROFILE)
    return path


@pytest.fixture
def mtls_profile(tmp_path: Path) -> Path:
    (tmp_path / "client.pem").write_text("CLIENT CERTIFICATE")
    (tmp_path / "client.key").write_text("CLIENT KEY")
    (tmp_path / "ca.pem").write_text("SERVER CA")
    path = tmp_path / "mtls.toml"
    path.write_text(
        f"""
[profile.default]
address = "crisis.acct1.tmprl.cloud:7233"
namespace = "crisis.acct1"

[profile.default.tls]
client_cert_path = "{tmp_path / "client.pem"}"
client_key_path = "{tmp_path / "client.key"}"
server_ca_cert_path = "{tmp_path / "ca.pem"}"
server_name = "crisis.acct1.tmprl.cloud"
"""
    )
    return path


def test_defaults_are_the_embedded_server() -> None:
    settings = ConnectionSettings.resolve()
    assert (settings.address, settings.namespace, settings.task_queue) == (
        "localhost:7233",
        "default",
        "liara-crisis-tasks",
    )
    assert settings.api_key is None
    assert settings.tls is None


def test_profile_with_api_key_turns_tls_on(cloud_profile: Path) -> None:
    settings = ConnectionSettings.resolve(config_file=str(cloud_profile))
    assert settings.address == "crisis.acct1.tmprl.cloud:7233"
    assert settings.namespace == "crisis.acct1"
    assert settings.api_key == "profile-api-key"
    assert settings.tls is True
    assert settings.rpc_metadata == {"x-team": "crisis"}


def test_temporal_config_file_names_the_profile_file(monkeypatch: pytest.MonkeyPatch, cloud_profile: Path) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(cloud_profile))
    settings = ConnectionSettings.resolve()
    assert settings.address == "crisis.acct1.tmprl.cloud:7233"
    assert settings.api_key == "profile-api-key"
    assert settings.tls is True


def test_arguments_override_the_profile(cloud_profile: Path) -> None:
    settings = ConnectionSettings.resolve(
        config_file=str(cloud_profile),
        address="other.acct2.tmprl.cloud:7233",
        namespace="other.acct2",
        task_queue="crisis-tasks-eu",
        api_key="argument-api-key",
    )
    assert settings.address == "other.acct2.tmprl.cloud:7233"
    assert settings.namespace == "other.acct2"
    assert settings.task_queue == "crisis-tasks-eu"
    assert settings.api_key == "argument-api-key"
    assert settings.tls is True


def test_environment_variables_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "crisis")
    settings = ConnectionSettings.resolve()
    assert settings.address == "temporal:7233"
    assert settings.namespace == "crisis"
    assert settings.api_key is None
    assert settings.tls is None


def test_environment_variables_override_the_profile(monkeypatch: pytest.MonkeyPatch, cloud_profile: Path) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "crisis")
    settings = ConnectionSettings.resolve(config_file=str(cloud_profile))
    assert (settings.address, settings.namespace) == ("temporal:7233", "crisis")
    assert settings.api_key == "profile-api-key"


def test_temporal_profile_selects_a_profile(monkeypatch: pytest.MonkeyPatch, cloud_profile: Path) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(cloud_profile))
    monkeypatch.setenv("TEMPORAL_PROFILE", "staging")
    settings = ConnectionSettings.resolve()
    assert (settings.address, settings.namespace) == ("staging.example.com:7233", "staging")
    assert settings.api_key is None


def test_profile_argument_selects_a_profile(cloud_profile: Path) -> None:
    settings = ConnectionSettings.resolve(config_file=str(cloud_profile), profile="staging")
    assert settings.address == "staging.example.com:7233"


def test_mtls_profile_gives_a_tls_config(mtls_profile: Path) -> None:
    settings = ConnectionSettings.resolve(config_file=str(mtls_profile))
    assert isinstance(settings.tls, TLSConfig)
    assert settings.tls.client_cert == b"CLIENT CERTIFICATE"
    assert settings.tls.client_private_key == b"CLIENT KEY"
    assert settings.tls.server_root_ca_cert == b"SERVER CA"
    assert settings.tls.domain == "crisis.acct1.tmprl.cloud"
    assert settings.api_key is None


def test_mtls_from_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_text("CLIENT CERTIFICATE")
    (tmp_path / "client.key").write_text("CLIENT KEY")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "crisis.acct1.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(tmp_path / "client.pem"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(tmp_path / "client.key"))
    settings = ConnectionSettings.resolve()
    assert isinstance(settings.tls, TLSConfig)
    assert settings.tls.client_cert == b"CLIENT CERTIFICATE"
    assert settings.tls.client_private_key == b"CLIENT KEY"


def test_api_key_argument_keeps_the_profile_tls_settings(mtls_profile: Path) -> None:
    settings = ConnectionSettings.resolve(config_file=str(mtls_profile), api_key="argument-api-key")
    assert settings.api_key == "argument-api-key"
    assert isinstance(settings.tls, TLSConfig)
    assert settings.tls.domain == "crisis.acct1.tmprl.cloud"


def test_api_key_from_the_environment_turns_tls_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "env-api-key")
    settings = ConnectionSettings.resolve()
    assert settings.api_key == "env-api-key"
    assert settings.tls is True


def test_tls_can_be_turned_off_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "env-api-key")
    monkeypatch.setenv("TEMPORAL_TLS", "false")
    assert ConnectionSettings.resolve().tls is False


def test_malformed_profile_file_is_one_sentence(tmp_path: Path) -> None:
    broken = tmp_path / "temporal.toml"
    broken.write_text('[profile.default\naddress = "crisis.acct1.tmprl.cloud:7233"\n')
    with pytest.raises(ConnectionSettingsError) as caught:
        ConnectionSettings.resolve(config_file=str(broken))
    message = str(caught.value)
    assert isinstance(caught.value, LiaraError)
    assert "\n" not in message
    assert "line 1" in message
    assert message.startswith("Cannot load the Temporal connection settings")
    assert message.endswith("fix the TEMPORAL_* variables or temporal.toml")


def test_malformed_file_named_by_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broken = tmp_path / "temporal.toml"
    broken.write_text("[profile.default]\naddress = \n")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(broken))
    with pytest.raises(ConnectionSettingsError, match="Cannot load the Temporal connection settings"):
        ConnectionSettings.resolve()


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConnectionSettingsError, match="missing.toml does not exist: fix TEMPORAL_CONFIG_FILE"):
        ConnectionSettings.resolve()


def test_unknown_profile_is_an_error(cloud_profile: Path) -> None:
    with pytest.raises(ConnectionSettingsError, match="Profile 'production' not found"):
        ConnectionSettings.resolve(config_file=str(cloud_profile), profile="production")


def test_task_queue_from_liara_task_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIARA_TASK_QUEUE", "crisis-tasks-eu")
    assert ConnectionSettings.resolve().task_queue == "crisis-tasks-eu"
    assert ConnectionSettings.resolve(task_queue="crisis-tasks-us").task_queue == "crisis-tasks-us"


def test_quick_reference_temporal_cloud_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """`LiaraTemporalAgency(temporal_host=..., namespace=..., task_queue=...)` with TEMPORAL_API_KEY set."""
    monkeypatch.setenv("TEMPORAL_API_KEY", "cloud-api-key")
    agency = LiaraTemporalAgency(
        temporal_host="crisis.acct1.tmprl.cloud:7233",
        namespace="crisis.acct1",
        task_queue="liara-crisis-tasks",
    )
    settings = agency.settings
    assert settings.address == "crisis.acct1.tmprl.cloud:7233"
    assert settings.namespace == "crisis.acct1"
    assert settings.task_queue == "liara-crisis-tasks"
    assert settings.api_key == "cloud-api-key"
    assert settings.tls is True


def test_quick_reference_temporal_cloud_call_with_mtls_profile(
    monkeypatch: pytest.MonkeyPatch, mtls_profile: Path
) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(mtls_profile))
    agency = LiaraTemporalAgency(
        temporal_host="crisis.acct1.tmprl.cloud:7233",
        namespace="crisis.acct1",
        task_queue="liara-crisis-tasks",
    )
    assert isinstance(agency.settings.tls, TLSConfig)
    assert agency.settings.tls.client_cert == b"CLIENT CERTIFICATE"


def test_api_key_is_not_in_the_repr(cloud_profile: Path) -> None:
    assert "profile-api-key" not in repr(ConnectionSettings.resolve(config_file=str(cloud_profile)))

"""The one place that turns connection settings into a Temporal ``Client``.

Settings come, strongest first, from explicit arguments, then the SDK's environment
configuration (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``,
``TEMPORAL_TLS_*``, ``TEMPORAL_PROFILE`` and ``temporal.toml`` profiles), then the defaults of
the embedded server. Every entry point (workers, agency, CLI, scripts) connects through here.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from app.temporal.codec import KeylessCodec, configured_codec
from app.temporal.converter import PayloadConverter
from app.temporal.errors import LiaraError, TemporalUnavailableError

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "liara-crisis-tasks"
TASK_QUEUE_ENV = "LIARA_TASK_QUEUE"
CONFIG_FILE_ENV = "TEMPORAL_CONFIG_FILE"

START_SERVER_HINT = (
    "start it with `python scripts/setup_temporal.py start` or point TEMPORAL_ADDRESS at a running server"
)


class ConnectionSettingsError(LiaraError, ValueError):
    """The connection settings (environment or profile file) cannot be used."""


@dataclass(frozen=True)
class ConnectionSettings:
    address: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    task_queue: str = DEFAULT_TASK_QUEUE
    api_key: str | None = field(default=None, repr=False)
    tls: bool | TLSConfig | None = None
    rpc_metadata: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def resolve(
        cls,
        *,
        address: str | None = None,
        namespace: str | None = None,
        task_queue: str | None = None,
        api_key: str | None = None,
        tls: bool | TLSConfig | None = None,
        profile: str | None = None,
        config_file: str | None = None,
    ) -> ConnectionSettings:
        """Merge explicit arguments over the environment configuration over the defaults.

        ``config_file`` is the path of a ``temporal.toml`` (default: ``TEMPORAL_CONFIG_FILE``,
        else the SDK's default location); a named file that does not exist is an error.
        """
        named_file = config_file or os.environ.get(CONFIG_FILE_ENV)
        if named_file and not Path(named_file).is_file():
            source = "config_file" if config_file else CONFIG_FILE_ENV
            raise ConnectionSettingsError(
                f"The Temporal config file {named_file} does not exist: fix {source} or create the file."
            )
        try:
            # A str config_source is the file's contents to the SDK, so pass the path as a Path.
            loaded: dict[str, Any] = dict(
                ClientConfigProfile.load(
                    profile=profile, config_source=Path(config_file) if config_file else None
                ).to_client_connect_config()
            )
        except Exception as err:  # the SDK raises plain errors for unreadable profiles
            raise ConnectionSettingsError(
                f"Cannot load the Temporal connection settings ({_one_line(err)}): "
                "fix the TEMPORAL_* variables or temporal.toml"
            ) from err
        if api_key is not None and tls is None:
            # An API key needs TLS; keep the profile's TLS settings (CA, server name) if it has any.
            tls = loaded["tls"] if "tls" in loaded else True
        return cls(
            address=_checked_address(address or loaded.get("target_host") or DEFAULT_ADDRESS),
            namespace=namespace or loaded.get("namespace") or DEFAULT_NAMESPACE,
            task_queue=task_queue or os.environ.get(TASK_QUEUE_ENV) or DEFAULT_TASK_QUEUE,
            api_key=api_key if api_key is not None else loaded.get("api_key"),
            tls=tls if tls is not None else loaded.get("tls"),
            rpc_metadata=dict(loaded.get("rpc_metadata") or {}),
        )


def _checked_address(address: str) -> str:
    """``address`` if it is ``host:port`` (the port 1 to 65535), else a one-sentence error."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConnectionSettingsError(
            f"The Temporal address {address!r} is not host:port with a port from 1 to 65535: "
            "fix --address or TEMPORAL_ADDRESS (e.g. localhost:7233)."
        )
    return address


def _one_line(err: Exception) -> str:
    """The SDK's configuration error without its multi-line TOML excerpt, e.g.
    ``TOML parse error at line 1, column 17: unclosed table, expected `]```.
    """
    lines = [line.strip() for line in str(err).splitlines()]
    kept = [line for line in lines if line and not line.startswith("|") and not line.split("|")[0].strip().isdigit()]
    text = ": ".join(kept) or type(err).__name__
    return text.removeprefix("Configuration loading error: ")


@functools.cache
def data_converter() -> DataConverter:
    """The pydantic data converter, encrypting payloads (and failure messages) when encryption
    keys are configured (see ``app.temporal.codec``); read once per process. Without keys,
    encrypted payloads are refused with an error saying which variable to set.
    """
    codec = configured_codec()
    # The SDK's pydantic converter, its type adapters built once per process (app.temporal.converter).
    converter = dataclasses.replace(pydantic_data_converter, payload_converter_class=PayloadConverter)
    if codec is None:
        return dataclasses.replace(converter, payload_codec=KeylessCodec())
    return dataclasses.replace(
        converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: ConnectionSettings, **client_options: Any) -> Client:
    """Connect with the pydantic data converter (encrypting when keys are configured); a failure
    is a ``TemporalUnavailableError``, bad encryption keys an ``EncryptionConfigError``.
    """
    converter = data_converter()
    try:
        client = await Client.connect(
            settings.address,
            namespace=settings.namespace,
            api_key=settings.api_key,
            tls=settings.tls,
            rpc_metadata=settings.rpc_metadata,
            data_converter=converter,
            **client_options,
        )
    except RuntimeError as err:
        raise TemporalUnavailableError(
            f"Cannot reach the Temporal server at {settings.address}: {START_SERVER_HINT}."
        ) from err
    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=settings.namespace))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise TemporalUnavailableError(
                f"Namespace {settings.namespace!r} does not exist on the Temporal server at {settings.address}: "
                f"create it with `temporal operator namespace create --namespace {settings.namespace}` "
                "or set TEMPORAL_NAMESPACE."
            ) from err
        if err.status == RPCStatusCode.UNAVAILABLE:
            raise TemporalUnavailableError(
                f"Cannot reach the Temporal server at {settings.address}: {START_SERVER_HINT}."
            ) from err
        # Permission to describe namespaces is not needed to run crises; carry on.
    return client


def run_and_exit(main: Callable[[], object]) -> NoReturn:
    """Run a command's ``main`` and end the process without interpreter finalization.

    The SDK's Rust runtime keeps threads that can crash a finalizing interpreter (SIGSEGV or
    SIGABRT on exit, temporalio/sdk-python#300), turning a successful command into a failed
    one; flushing and calling ``os._exit`` skips that teardown.
    """
    code = 0
    try:
        main()
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""The connection options every command shares, and how a command's errors become exit codes.

Exit codes: 0 success, 1 an error you can fix (the message says how), 2 a usage error,
3 the crisis finished but did not succeed, 130 interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer

from app.temporal.errors import LiaraError
from cognition.liara.agency import LiaraTemporalAgency
from cognition.liara.commands.options import AddressOption, NamespaceOption, ProfileOption, TaskQueueOption
from cognition.liara.commands.output import err_console, say
from cognition.liara.crisis_agency import CrisisAgency
from cognition.liara.errors import CrisisFailedError
from cognition.liara.remote import API_TOKEN_ENV, API_URL_ENV, RemoteAgency, cleartext_warning

EXIT_ERROR = 1
EXIT_CRISIS_UNSUCCESSFUL = 3
T = TypeVar("T")


class Connection:
    """Connection options given before the command; turned into an agency per command: the
    Python API on Temporal, or, with ``--api``, a remote ``liara serve``.
    """

    def __init__(
        self,
        address: str | None,
        namespace: str | None,
        task_queue: str | None,
        profile: str | None,
        api: str | None = None,
        token: str | None = None,
    ):
        self.address, self.namespace, self.task_queue, self.profile = address, namespace, task_queue, profile
        self.api, self.token = api, token

    @property
    def options(self) -> list[str]:
        """These options as given, for a command to print (``liara --address A approve ...``);
        never the token.
        """
        given = (("--address", self.address), ("--namespace", self.namespace), ("--profile", self.profile))
        given += (("--api", self.api),)
        return [part for flag, value in given if value for part in (flag, value)]

    def agency(self) -> LiaraTemporalAgency:
        """The Python API on Temporal with these options (it connects on first use)."""
        return LiaraTemporalAgency(self.address, self.namespace, self.task_queue, profile=self.profile)

    def run(self, command: Callable[[LiaraTemporalAgency], Awaitable[T]]) -> T:
        """Run ``command`` with the Python API on Temporal (the commands that need it directly)."""
        if self.api:
            return self.guard(self._refuse_remote)

        async def with_agency() -> T:
            # The agency connects on first use, so `doctor` can report a failed connection itself.
            return await command(self.agency())

        return self.guard(lambda: asyncio.run(with_agency()))

    def run_on_crises(self, command: Callable[[CrisisAgency], Awaitable[T]]) -> T:
        """Run a crisis command: on Temporal, or through the service with ``--api`` (so it may use
        only what both agencies offer).
        """
        if not self.api:
            return self.run(command)
        warning = cleartext_warning(self.api)
        if warning:
            say(warning, err_console)

        async def with_service() -> T:
            async with RemoteAgency(self.api or "", self.token) as remote:
                return await command(remote)

        return self.guard(lambda: asyncio.run(with_service()))

    @staticmethod
    def _refuse_remote() -> NoReturn:
        raise LiaraError("This command talks to Temporal itself, not through the service: leave out --api.")

    @staticmethod
    def guard(step: Callable[[], T]) -> T:
        """Run ``step``; an error the user can fix is one ``Error:`` line and its exit code."""
        try:
            return step()
        except CrisisFailedError as err:
            say(f"Error: {err}", err_console)
            raise typer.Exit(EXIT_CRISIS_UNSUCCESSFUL) from None
        except LiaraError as err:
            say(f"Error: {err}", err_console)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            say("Interrupted; the crisis goes on in Temporal.", err_console)
            raise typer.Exit(130) from None


def connection_options(
    ctx: typer.Context,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
    task_queue: TaskQueueOption = None,
    profile: ProfileOption = None,
    api: Annotated[
        str | None,
        typer.Option(
            envvar=API_URL_ENV,
            help="Drive crises through this `liara serve` (http(s)://host:port) instead of Temporal",
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar=API_TOKEN_ENV, help="The service token to send with --api", show_default=False)
    ] = None,
) -> None:
    """The options before the command (``liara --address host:7233 status ID``)."""
    ctx.obj = Connection(address, namespace, task_queue, profile, api=api, token=token)

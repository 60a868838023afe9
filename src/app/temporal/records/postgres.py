"""Crisis records in PostgreSQL (psycopg 3, async, through a ``psycopg_pool`` connection pool).

Two tables keep the same document the file store keeps: ``liara_crises`` one row per crisis with
its header (the record without its entry lists), ``liara_crisis_phases`` one row per entry, keyed
by ``(crisis_id, kind, phase_id)`` with its position in its list. A phase write changes that one
row, so its cost does not grow with the number of phases. Every write is one transaction that
first takes a transaction-scoped advisory lock on the crisis id, so writers on any number of
hosts run one at a time per crisis and see each other's commits; the guards of
``app.temporal.records.store`` then decide as they do for files. ``json`` columns keep each
document's keys in the order written.

The tables are created by ``liara setup`` (``create_schema``) and checked by ``liara doctor``
(``check``). A database that is down or refuses a write raises CrisisRecordError with one
sentence, so the record activities retry until it is back, as for a full disk.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from app.temporal.errors import CrisisRecordError, LiaraError
from app.temporal.records.document import (
    COMPENSATIONS,
    PHASES,
    PhaseEnd,
    header_of,
    headline,
    phase_end,
    refresh_summary,
)
from app.temporal.records.store import RecordStore, StoreHealth

# The pool's own warnings on every failed reconnect repeat, in several lines each, what the
# record errors say in one sentence (and ``liara status`` shows).
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

SCHEMES = ("postgresql", "postgres")
#: The schema this release writes; ``liara setup`` creates it, ``liara doctor`` compares.
SCHEMA_VERSION = 2
TABLES = ("liara_crises", "liara_crisis_phases", "liara_crisis_kept")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS liara_record_schema (version integer NOT NULL)",
    """CREATE TABLE IF NOT EXISTS liara_crises (
        crisis_id text PRIMARY KEY,
        header json NOT NULL,
        written_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE INDEX IF NOT EXISTS liara_crises_written_at ON liara_crises (written_at DESC)",
    """CREATE TABLE IF NOT EXISTS liara_crisis_phases (
        crisis_id text NOT NULL REFERENCES liara_crises (crisis_id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('phases', 'compensations')),
        phase_id text NOT NULL,
        position integer NOT NULL,
        entry json NOT NULL,
        PRIMARY KEY (crisis_id, kind, phase_id)
    )""",
    "CREATE INDEX IF NOT EXISTS liara_crisis_phases_order ON liara_crisis_phases (crisis_id, kind, position)",
    # (Version 2.) Messages of agents' conversations too long to carry, one row per step's attempt.
    """CREATE TABLE IF NOT EXISTS liara_crisis_kept (
        crisis_id text NOT NULL,
        key text NOT NULL,
        content text NOT NULL,
        PRIMARY KEY (crisis_id, key)
    )""",
)
#: First key of the advisory locks of this store ("Liar"), so they do not meet other programs' locks.
_LOCK_CLASS = 0x4C696172
_SETUP_LOCK = 0
#: Connections per worker process; seconds to wait for one, and to connect.
POOL_SIZE = 10
POOL_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 5
#: Seconds the pool keeps retrying a connection before it starts afresh: short, so a database
#: that comes back is used again within seconds.
RECONNECT_TIMEOUT_SECONDS = 10.0

_RECORD = """
SELECT c.header, (
    SELECT coalesce(json_agg(json_build_array(p.kind, p.entry) ORDER BY p.kind, p.position), '[]')
    FROM liara_crisis_phases p WHERE p.crisis_id = c.crisis_id
) FROM liara_crises c WHERE c.crisis_id = %s
"""
_PUT = """
INSERT INTO liara_crisis_phases (crisis_id, kind, phase_id, position, entry)
VALUES (%(crisis_id)s, %(kind)s, %(phase_id)s, (
    SELECT coalesce(max(position) + 1, 0) FROM liara_crisis_phases WHERE crisis_id = %(crisis_id)s AND kind = %(kind)s
), %(entry)s)
ON CONFLICT (crisis_id, kind, phase_id) DO UPDATE SET entry = excluded.entry
"""
_WRITE_HEADER = """
INSERT INTO liara_crises (crisis_id, header, written_at) VALUES (%s, %s, now())
ON CONFLICT (crisis_id) DO UPDATE SET header = excluded.header, written_at = excluded.written_at
"""
_WRITE_ENTRIES = """
INSERT INTO liara_crisis_phases (crisis_id, kind, phase_id, position, entry)
SELECT %(crisis_id)s, lists.kind, item ->> 'phase_id', ord - 1, item
FROM (VALUES ('phases', %(phases)s::json), ('compensations', %(compensations)s::json)) AS lists (kind, items),
     json_array_elements(lists.items) WITH ORDINALITY AS entries (item, ord)
"""


class RecordStoreConfigError(LiaraError, ValueError):
    """The record store setting (``LIARA_RECORD_STORE`` or ``record_store``) is unusable."""


def parse_url(url: str, source: str) -> dict[str, str]:
    """The connection settings of a ``postgresql://`` URL, checked; ``source`` names the setting."""
    advice = "write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise RecordStoreConfigError(
            f"{source} must be a postgresql:// URL, not one starting {scheme or url[:12]!r}: {advice}, "
            f"or leave it unset to keep records in files."
        )
    try:
        settings = {key: str(value) for key, value in conninfo_to_dict(url).items() if value is not None}
    except psycopg.ProgrammingError as err:
        raise RecordStoreConfigError(f"{source} is not a valid PostgreSQL URL ({_reason(err)}): {advice}.") from None
    for port in (settings.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise RecordStoreConfigError(f"{source} has port {port!r}, which is not a port number: {advice}.")
    if not settings.get("dbname"):
        raise RecordStoreConfigError(f"{source} names no database: {advice}.")
    return settings


def _reason(err: BaseException) -> str:
    """libpq's message as a clause: its first line, past the connection preamble, without ``FATAL:``."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    line = line.rpartition(" failed: ")[2].strip()
    line = re.sub(r"^(FATAL|ERROR):\s+", "", line).rstrip(".")
    return line[:1].lower() + line[1:]


class PostgresRecordStore(RecordStore):
    def __init__(self, url: str, *, source: str = "LIARA_RECORD_STORE") -> None:
        self._url = url
        settings = parse_url(url, source)
        self.user = settings.get("user")
        #: The database, without credentials: what a result's ``record_path`` and every message name.
        self.database = (
            f"postgresql://{settings.get('host') or 'localhost'}:{settings.get('port') or 5432}/" + (settings["dbname"])
        )
        self._pool: AsyncConnectionPool | None = None

    def location(self, crisis_id: str) -> str:
        return f"{self.database}#{crisis_id}"

    def describe(self) -> str:
        return self.database

    async def open(self) -> None:
        self._pool = AsyncConnectionPool(
            self._url,
            open=False,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=POOL_TIMEOUT_SECONDS,
            reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
            # A connection the server dropped (a restart) is found out before a write uses it.
            check=AsyncConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "liara"},
        )
        await self._pool.open(wait=False)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; a database that cannot be used is one CrisisRecordError sentence."""
        if self._pool is None:
            raise RuntimeError("PostgresRecordStore is not open: use `async with store:`")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise CrisisRecordError(await self._unavailable()) from None
        except pg_errors.UndefinedTable:
            raise CrisisRecordError(
                f"the crisis record database {self.database} has no crisis record tables: run `liara setup`."
            ) from None
        except pg_errors.InsufficientPrivilege as err:
            raise CrisisRecordError(
                f"user {self.user!r} may not write crisis records in {self.database}: {_reason(err)}."
            ) from None
        except psycopg.OperationalError as err:
            raise CrisisRecordError(
                f"lost the connection to the crisis record database {self.database}: {_reason(err)}."
            ) from None
        except psycopg.Error as err:
            raise CrisisRecordError(f"the crisis record database {self.database} failed: {_reason(err)}.") from None

    async def _unavailable(self) -> str:
        """Why the pool has no connection to give: the database's own answer to a fresh connection."""
        try:
            probe = await psycopg.AsyncConnection.connect(self._url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.Error as err:
            return f"cannot reach the crisis record database {self.database}: {_reason(err)}."
        await probe.close()
        return (
            f"all {POOL_SIZE} connections to the crisis record database {self.database} stayed busy for "
            f"{POOL_TIMEOUT_SECONDS:g} s."
        )

    @asynccontextmanager
    async def transaction(self, crisis_id: str) -> AsyncIterator[_PostgresTransaction]:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, crisis_id))
            yield _PostgresTransaction(conn, crisis_id)

    async def read(self, crisis_id: str) -> dict[str, Any] | None:
        async with self._connection() as conn:
            return await _PostgresTransaction(conn, crisis_id).record()

    async def keep(self, crisis_id: str, key: str, text: str) -> str:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO liara_crisis_kept (crisis_id, key, content) VALUES (%s, %s, %s) "
                "ON CONFLICT (crisis_id, key) DO UPDATE SET content = excluded.content",
                (crisis_id, key, text),
            )
        return f"{self.location(crisis_id)}/kept/{key}"

    async def kept(self, crisis_id: str, key: str) -> str | None:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT content FROM liara_crisis_kept WHERE crisis_id = %s AND key = %s", (crisis_id, key)
            )
            row = await cursor.fetchone()
        return row[0] if row else None

    async def list_records(self, limit: int) -> list[dict[str, Any]]:
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT crisis_id FROM liara_crises ORDER BY written_at DESC LIMIT %s", (limit,)
            )
            rows = []
            for (crisis_id,) in await cursor.fetchall():
                record = await _PostgresTransaction(conn, crisis_id).record()
                if record is not None:
                    rows.append(headline(record, self.location(crisis_id)))
            return rows

    async def prepare(self) -> str:
        version = await self.create_schema()
        return f"Crisis record tables are ready in {self.database} (record schema version {version})."

    async def create_schema(self) -> int:
        """Create the record tables if they are missing, or bring an older schema to this release's
        (``liara setup``); the schema version.
        """
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, _SETUP_LOCK))
            # Every statement creates only what is missing, so an older schema gets what it lacks.
            for statement in SCHEMA:
                await conn.execute(statement)
            version = await _schema_version(conn)
            if version is None or version < SCHEMA_VERSION:
                await conn.execute("DELETE FROM liara_record_schema")
                await conn.execute("INSERT INTO liara_record_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
                return SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise CrisisRecordError(
                f"the crisis record database {self.database} has record schema version {version}, newer than "
                f"this release's {SCHEMA_VERSION}: upgrade Liara on this machine."
            )
        return version

    async def check(self) -> StoreHealth:
        fix_connection = (
            "start PostgreSQL there, or fix the host, user, password or database in LIARA_RECORD_STORE "
            "(or record_store in liara.toml)"
        )
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
            )
        except psycopg.Error as err:
            return StoreHealth(False, f"cannot reach {self.database}: {_reason(err)}", fix_connection)
        try:
            return await self._check_schema(conn)
        except psycopg.Error as err:
            return StoreHealth(False, f"{self.database} cannot be checked: {_reason(err)}", fix_connection)
        finally:
            await conn.close()

    async def _check_schema(self, conn: psycopg.AsyncConnection[Any]) -> StoreHealth:
        cursor = await conn.execute(
            "SELECT current_user, to_regclass('liara_record_schema') IS NOT NULL AND "
            "bool_and(to_regclass(name) IS NOT NULL) FROM unnest(%s::text[]) AS name",
            (list(TABLES),),
        )
        user, exists = await cursor.fetchone() or (self.user, False)
        if not exists:
            return StoreHealth(False, f"{self.database} has no crisis record tables", "run `liara setup`")
        cursor = await conn.execute(
            "SELECT has_table_privilege('liara_record_schema', 'SELECT') AND "
            "bool_and(has_table_privilege(name, 'SELECT, INSERT, UPDATE, DELETE')) FROM unnest(%s::text[]) AS name",
            (list(TABLES),),
        )
        allowed = (await cursor.fetchone() or (False,))[0]
        if not allowed:
            return StoreHealth(
                False,
                f"user {user!r} may not read and write {' and '.join(TABLES)} in {self.database}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {user}; "
                f"GRANT SELECT ON liara_record_schema TO {user}",
            )
        version = await _schema_version(conn)
        if version != SCHEMA_VERSION:
            found = "no record schema version" if version is None else f"record schema version {version}"
            return StoreHealth(
                False,
                f"{self.database} has {found}; this release uses {SCHEMA_VERSION}",
                "run `liara setup`" if (version or 0) < SCHEMA_VERSION else "upgrade Liara on this machine",
            )
        return StoreHealth(
            True, f"{self.database} answers; record schema version {version}; user {user!r} may write records"
        )


async def _schema_version(conn: psycopg.AsyncConnection[Any]) -> int | None:
    cursor = await conn.execute("SELECT max(version) FROM liara_record_schema")
    row = await cursor.fetchone()
    return row[0] if row else None


def _joined(header: dict[str, Any], entries: list[list[Any]]) -> dict[str, Any]:
    """The record document: the header with the entry lists and their summary after ``completed_at``,
    where every store puts them.
    """
    lists: dict[str, list[dict[str, Any]]] = {PHASES: [], COMPENSATIONS: []}
    for kind, entry in entries:
        lists[kind].append(entry)
    record: dict[str, Any] = {}
    for key, value in header.items():
        record[key] = value
        if key == "completed_at":
            record[PHASES] = lists[PHASES]
            record["summary"] = None  # filled below, in its place
            record[COMPENSATIONS] = lists[COMPENSATIONS]
    refresh_summary(record)
    return record


class _PostgresTransaction:
    """A crisis's rows, locked by ``PostgresRecordStore.transaction`` (or read once, for ``read``)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], crisis_id: str) -> None:
        self._conn, self._crisis_id = conn, crisis_id

    async def header(self) -> dict[str, Any] | None:
        cursor = await self._conn.execute("SELECT header FROM liara_crises WHERE crisis_id = %s", (self._crisis_id,))
        row = await cursor.fetchone()
        return row[0] if row else None

    async def record(self) -> dict[str, Any] | None:
        cursor = await self._conn.execute(_RECORD, (self._crisis_id,))
        row = await cursor.fetchone()
        return _joined(*row) if row else None

    async def entry(self, kind: str, phase_id: str) -> dict[str, Any] | None:
        cursor = await self._conn.execute(
            "SELECT entry FROM liara_crisis_phases WHERE crisis_id = %s AND kind = %s AND phase_id = %s",
            (self._crisis_id, kind, phase_id),
        )
        row = await cursor.fetchone()
        return row[0] if row else None

    async def end(self, kind: str, phase_id: str) -> PhaseEnd | None:
        cursor = await self._conn.execute(
            "SELECT json_build_object('status', entry -> 'status', 'attempts', entry -> 'attempts', "
            "'timestamp', entry -> 'timestamp') FROM liara_crisis_phases "
            "WHERE crisis_id = %s AND kind = %s AND phase_id = %s",
            (self._crisis_id, kind, phase_id),
        )
        row = await cursor.fetchone()
        return phase_end(row[0] if row else None)

    async def write(self, record: dict[str, Any]) -> None:
        await self._conn.execute(_WRITE_HEADER, (self._crisis_id, Json(header_of(record))))
        await self._conn.execute("DELETE FROM liara_crisis_phases WHERE crisis_id = %s", (self._crisis_id,))
        await self._conn.execute(
            _WRITE_ENTRIES,
            {
                "crisis_id": self._crisis_id,
                "phases": Json(record[PHASES]),
                "compensations": Json(record.get(COMPENSATIONS, [])),
            },
        )

    async def put(self, kind: str, entry: dict[str, Any]) -> None:
        await self._conn.execute(
            _PUT, {"crisis_id": self._crisis_id, "kind": kind, "phase_id": entry["phase_id"], "entry": Json(entry)}
        )

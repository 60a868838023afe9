"""Crisis records as files: ``<directory>/<crisis_id>.json``, and a journal beside it while the crisis runs.

The record file is written whole when the record is created, taken over or finalized: to a
temporary file in the same directory, fsynced, then renamed over the record, so a reader (or a
crash) never sees half a record. A phase write in between appends one JSON line (its entry) to
``<crisis_id>.journal`` and fsyncs it, so its cost does not grow with the number of phases; the
finalize write folds the journal into the record and removes it, so a finished crisis is one
complete, readable file. The journal is created, empty, with the record and kept while the crisis
runs: the record's directory sync makes both names durable, so its first line needs no second one
(a journal this process did not see made durable, say one another worker created, gets its own).
``read`` returns the record with its journal applied. A line cut short by a crash is ignored and
trimmed by the next write; it was never acknowledged.

Every write of a crisis holds an exclusive ``flock`` on its journal, so workers on several hosts
may share one directory (a local or NFSv4 file system, where flock works across hosts).
Journal lines name the run that wrote them and count only for the record's current run; a journal
left beside a final record counts for nothing. Writes never give up the event loop (they are a
few KB, with fsyncs): keep the directory on a fast disk.

Whether an agent's completion comes too late (its phase ended without it, see
``app.temporal.records.store``) is decided by how the phase's entry says it ended: the journal's
last line for that phase, found by searching the journal's bytes for its id (only the lines that
name it are parsed), else the record file's entry, remembered with the file's header. The search
is all of such a write's cost that grows with the phases written: about 0.01 ms with 10 lines in
the journal, 0.1 ms with 1000.

Records hold mission data, so they are the owner's only: a directory the store creates is 0700,
every record and journal 0600.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.temporal.bounded import keep_newest
from app.temporal.errors import CrisisRecordError
from app.temporal.models import MAX_ID_LENGTH, SAFE_ID_PATTERN
from app.temporal.records.document import (
    COMPENSATIONS,
    PHASES,
    PhaseEnd,
    header_of,
    headline,
    is_record,
    phase_end,
    put_entry,
    refresh_summary,
)
from app.temporal.records.store import RecordStore, StoreHealth

#: Environment variable naming the record directory; relative paths are taken from the
#: worker's working directory.
RECORD_DIR_ENV = "LIARA_CRISIS_DIR"
DEFAULT_RECORD_DIR = Path("data") / "crises"
#: Modes of a record directory this store creates and of every file it writes.
RECORD_DIR_MODE = 0o700
RECORD_FILE_MODE = 0o600
JOURNAL_SUFFIX = ".journal"
#: ``<crisis_id>.kept/<key>.txt``: messages of agents' conversations too long to carry (``keep``).
KEPT_SUFFIX = ".kept"
_KEPT_KEY = re.compile(r"[A-Za-z0-9_.-]{1,400}")
#: Record headers kept in memory so a phase write need not parse the whole record.
_CACHED_HEADERS = 4096
#: Tries of a lock-free read racing a finalize (which replaces the record, then drops the journal).
_READ_ATTEMPTS = 5

_SAFE_ID = re.compile(SAFE_ID_PATTERN)
#: A record's temporary file is ``.<crisis_id>.tmp``: its writer holds the crisis's lock.
_TEMPORARY_SUFFIX = ".tmp"
#: What identifies one version of a record file: it is only ever replaced, never rewritten in place.
_Version = tuple[int, int, int, int]
#: What identifies an empty journal as left by a write: a journal made again (or written) since differs.
_JournalState = tuple[int, int, int]


def _version(stat: os.stat_result) -> _Version:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _journal_state(stat: os.stat_result) -> _JournalState:
    return stat.st_dev, stat.st_ino, stat.st_ctime_ns


@dataclass(frozen=True)
class _Remembered:
    """What a phase write needs of one version of a record file: its header, and how its entries
    say their phases ended (by kind and phase id; none once the record is final).
    """

    version: _Version
    header: dict[str, Any]
    ends: dict[tuple[str, str], PhaseEnd]


class FileRecordStore(RecordStore):
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._headers: OrderedDict[str, _Remembered] = OrderedDict()
        #: Empty journals whose names a directory sync of this store made durable, as they were then.
        self._durable_journals: OrderedDict[str, _JournalState] = OrderedDict()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> FileRecordStore:
        return cls(Path(environ.get(RECORD_DIR_ENV) or DEFAULT_RECORD_DIR))

    def path_for(self, crisis_id: str) -> Path:
        if len(crisis_id) > MAX_ID_LENGTH or not _SAFE_ID.fullmatch(crisis_id):
            raise CrisisRecordError(f"crisis id {crisis_id!r} is not a safe file name")
        return self.directory / f"{crisis_id}.json"

    def journal_for(self, crisis_id: str) -> Path:
        return self.path_for(crisis_id).with_suffix(JOURNAL_SUFFIX)

    def location(self, crisis_id: str) -> str:
        return str(self.path_for(crisis_id).resolve())

    def where(self, crisis_id: str) -> str:
        return str(self.path_for(crisis_id))

    def describe(self) -> str:
        return str(self.directory)

    async def read(self, crisis_id: str) -> dict[str, Any] | None:
        path = self.path_for(crisis_id)
        for _ in range(_READ_ATTEMPTS):
            loaded = self._load(path)
            if loaded is None:
                return None
            record, version = loaded
            record = self._with_journal(crisis_id, record)
            if self._current_version(path) == version:
                break
        return record

    def kept_path(self, crisis_id: str, key: str) -> Path:
        if not _KEPT_KEY.fullmatch(key):
            raise CrisisRecordError(f"{key!r} is not a key of a kept text")
        return self.path_for(crisis_id).with_suffix(KEPT_SUFFIX) / f"{key}.txt"

    async def keep(self, crisis_id: str, key: str, text: str) -> str:
        path = self.kept_path(crisis_id, key)
        try:
            self.ensure_directory()
            path.parent.mkdir(mode=RECORD_DIR_MODE, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".", suffix=_TEMPORARY_SUFFIX, dir=path.parent)
        except OSError as err:
            raise CrisisRecordError(f"cannot keep {key} beside crisis record {crisis_id}: {err.strerror}") from err
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as err:
            Path(tmp_name).unlink(missing_ok=True)
            raise CrisisRecordError(f"cannot keep {path}: {err.strerror or err}") from err
        return str(path.resolve())

    async def kept(self, crisis_id: str, key: str) -> str | None:
        try:
            return self.kept_path(crisis_id, key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CrisisRecordError(f"cannot read {self.kept_path(crisis_id, key)}: {err.strerror}") from err

    async def list_records(self, limit: int) -> list[dict[str, Any]]:
        try:
            paths = [p for p in self.directory.glob("*.json") if _SAFE_ID.fullmatch(p.stem)]
        except OSError as err:
            raise CrisisRecordError(f"cannot list crisis records in {self.directory}: {err.strerror}") from err
        versions = {path: version for path in paths if (version := self._current_version(path)) is not None}
        newest = sorted(versions, key=lambda path: versions[path][3], reverse=True)  # by modification time
        rows = []
        for path in newest[:limit]:
            record = await self.read(path.stem)
            if record is not None:
                rows.append(headline(record, self.location(path.stem)))
        return rows

    async def check(self) -> StoreHealth:
        try:
            self.ensure_directory()  # owner-only, as the worker's store creates it
            with tempfile.TemporaryFile(dir=self.directory):
                pass
        except OSError as err:
            return StoreHealth(
                False,
                f"{self.directory} is not writable here: {err.strerror}",
                f"make it writable or set {RECORD_DIR_ENV}",
            )
        return StoreHealth(True, f"{os.path.abspath(self.directory)} is writable here")

    @asynccontextmanager
    async def transaction(self, crisis_id: str) -> AsyncIterator[_FileTransaction]:
        path = self.path_for(crisis_id)
        journal = self._locked_journal(crisis_id, path)
        held = _FileTransaction(self, crisis_id, path, journal)
        try:
            yield held
        finally:
            try:
                if os.fstat(journal).st_size == 0 and not held.keeps_journal:
                    self._durable_journals.pop(crisis_id, None)
                    os.unlink(self.journal_for(crisis_id))  # while locked: a waiter sees it gone
            finally:
                os.close(journal)

    def ensure_directory(self) -> None:
        """Create the record directory owner-only (an existing one keeps its mode)."""
        if self.directory.is_dir():
            return
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.directory.mkdir(mode=RECORD_DIR_MODE)
        except FileExistsError:
            return  # another worker created it first
        os.chmod(self.directory, RECORD_DIR_MODE)  # exactly 0700, whatever the umask

    def _locked_journal(self, crisis_id: str, path: Path) -> int:
        """The crisis's journal, opened (created if missing) and exclusively locked."""
        journal = self.journal_for(crisis_id)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        while True:
            try:
                try:
                    fd = os.open(journal, flags, RECORD_FILE_MODE)
                except FileNotFoundError:
                    self._create_directory()
                    fd = os.open(journal, flags, RECORD_FILE_MODE)
            except OSError as err:
                raise CrisisRecordError(f"cannot read crisis record {path}: {err.strerror}") from err
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(journal).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass  # the holder before us removed it: lock the one that is there now
            os.close(fd)

    def _create_directory(self) -> None:
        try:
            self.ensure_directory()
        except OSError as err:
            raise CrisisRecordError(f"cannot write crisis records to {self.directory}: {err.strerror}") from err

    def _load(self, path: Path) -> tuple[dict[str, Any], _Version] | None:
        """The record file as written (no journal) and its version, or None if there is none."""
        try:
            with path.open("rb") as file:
                version = _version(os.fstat(file.fileno()))
                data = file.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CrisisRecordError(f"cannot read crisis record {path}: {err.strerror}") from err
        try:
            record = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise CrisisRecordError(f"crisis record {path} is not UTF-8 text; move it aside") from err
        except json.JSONDecodeError as err:
            raise CrisisRecordError(f"crisis record {path} is not valid JSON ({err}); move it aside") from err
        if not is_record(record):
            raise CrisisRecordError(f"crisis record {path} is not a crisis record; move it aside")
        return record, version

    @staticmethod
    def _current_version(path: Path) -> _Version | None:
        try:
            return _version(path.stat())
        except FileNotFoundError:
            return None
        except OSError as err:
            raise CrisisRecordError(f"cannot read crisis record {path}: {err.strerror}") from err

    def _remembered(self, crisis_id: str, path: Path) -> _Remembered | None:
        """The record file's header and ends, from memory while the file is the version read last."""
        version = self._current_version(path)
        if version is None:
            return None
        cached = self._headers.get(crisis_id)
        if cached is not None and cached.version == version:
            return cached
        loaded = self._load(path)
        if loaded is None:
            return None
        return self._remember(crisis_id, *loaded)

    def _remember(self, crisis_id: str, record: dict[str, Any], version: _Version) -> _Remembered:
        ends = {}
        if record.get("completed_at") is None:  # a final record takes no phase write
            for kind in (PHASES, COMPENSATIONS):
                for entry in record.get(kind, []):
                    if (end := phase_end(entry)) is not None:
                        ends[kind, entry["phase_id"]] = end
        remembered = _Remembered(version, header_of(record), ends)
        keep_newest(self._headers, crisis_id, remembered, _CACHED_HEADERS)
        return remembered

    def _made_durable(self, crisis_id: str, journal: int) -> None:
        """Remember that the (empty) journal's name is durable, as the journal is now."""
        keep_newest(self._durable_journals, crisis_id, _journal_state(os.fstat(journal)), _CACHED_HEADERS)

    def _known_durable(self, crisis_id: str, journal: int) -> bool:
        """Whether the journal is an empty one whose name this store made durable, untouched since."""
        return self._durable_journals.pop(crisis_id, None) == _journal_state(os.fstat(journal))

    def _with_journal(self, crisis_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` with the entries its journal holds for the record's run (none once final)."""
        if record.get("completed_at") is not None:
            return record
        lines = self._journal_lines(self.journal_for(crisis_id))
        changed = False
        for line in lines:
            if line["run_id"] == record.get("run_id"):
                put_entry(record.setdefault(line["kind"], []), line["entry"])
                changed = True
        if changed:
            refresh_summary(record)
        return record

    @staticmethod
    def _journal_lines(journal: Path) -> list[dict[str, Any]]:
        try:
            data = journal.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise CrisisRecordError(f"cannot read crisis journal {journal}: {err.strerror}") from err
        lines = []
        # The last piece has no newline: empty, or a line a crash cut short (never acknowledged).
        for number, raw in enumerate(data.split(b"\n")[:-1], 1):
            try:
                line = json.loads(raw)
            except ValueError as err:
                raise CrisisRecordError(
                    f"crisis journal {journal} is not valid JSON at line {number} ({err}); move it aside"
                ) from err
            if not _is_journal_line(line):
                raise CrisisRecordError(f"crisis journal {journal} line {number} is not a phase entry; move it aside")
            lines.append(line)
        return lines

    def _write(self, path: Path, record: dict[str, Any]) -> _Version:
        """Replace the record file atomically; the version written. Called with the crisis's
        journal locked, so the crisis's temporary file is this writer's alone: one that a writer
        who died left behind is written over (no search of the directory for it).
        """
        tmp_name = self.directory / f".{path.stem}{_TEMPORARY_SUFFIX}"
        text = json.dumps(record, indent=2) + "\n"  # one write: the indented encoder yields many pieces
        try:
            self.ensure_directory()
            fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, RECORD_FILE_MODE)
        except OSError as err:
            raise CrisisRecordError(f"cannot write crisis records to {self.directory}: {err.strerror}") from err
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # Said explicitly: a leftover keeps the mode it had, and os.replace keeps this file's.
                os.fchmod(handle.fileno(), RECORD_FILE_MODE)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
                version = _version(os.fstat(handle.fileno()))
            os.replace(tmp_name, path)
            self._sync_directory()
        except OSError as err:
            Path(tmp_name).unlink(missing_ok=True)
            raise CrisisRecordError(f"cannot write crisis record {path}: {err.strerror or err}") from err
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return version

    def _sync_directory(self) -> None:
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _is_journal_line(line: object) -> bool:
    return (
        isinstance(line, dict)
        and line.get("kind") in (PHASES, COMPENSATIONS)
        and isinstance(line.get("entry"), dict)
        and isinstance(line["entry"].get("phase_id"), str)
    )


class _FileTransaction:
    """A crisis's record file and journal, locked by ``FileRecordStore.transaction``."""

    def __init__(self, store: FileRecordStore, crisis_id: str, path: Path, journal: int) -> None:
        self._store, self._crisis_id, self._path, self._journal = store, crisis_id, path, journal
        self._run_id: str | None = None
        #: An empty journal stays beside a record written whole that is not final (its name is durable).
        self.keeps_journal = False

    async def header(self) -> dict[str, Any] | None:
        remembered = self._store._remembered(self._crisis_id, self._path)
        header = remembered.header if remembered else None
        self._run_id = header.get("run_id") if header else None
        return header

    async def record(self) -> dict[str, Any] | None:
        loaded = self._store._load(self._path)
        if loaded is None:
            return None
        record, version = loaded
        self._store._remember(self._crisis_id, record, version)
        return self._store._with_journal(self._crisis_id, record)

    async def entry(self, kind: str, phase_id: str) -> dict[str, Any] | None:
        record = await self.record()
        entries = record.get(kind, []) if record else []
        return next((e for e in entries if e.get("phase_id") == phase_id), None)

    async def end(self, kind: str, phase_id: str) -> PhaseEnd | None:
        if (found := self._last_journal_entry(kind, phase_id)) is not None:
            return phase_end(found)
        remembered = self._store._remembered(self._crisis_id, self._path)
        return remembered.ends.get((kind, phase_id)) if remembered else None

    def _last_journal_entry(self, kind: str, phase_id: str) -> dict[str, Any] | None:
        """The entry of the journal's last line for the phase in this run, if it has one: the
        lines that name the phase id are found from the end, and only they are parsed.
        """
        data = os.pread(self._journal, os.fstat(self._journal).st_size, 0)
        needle = json.dumps(phase_id).encode()
        end = len(data)
        while (found := data.rfind(needle, 0, end)) >= 0:
            start = data.rfind(b"\n", 0, found) + 1
            stop = data.find(b"\n", found)
            if stop >= 0:  # else a last line a crash cut short: never acknowledged
                try:
                    line = json.loads(data[start:stop])
                except ValueError as err:
                    journal = self._store.journal_for(self._crisis_id)
                    raise CrisisRecordError(
                        f"crisis journal {journal} is not valid JSON ({err}); move it aside"
                    ) from err
                if not _is_journal_line(line):
                    journal = self._store.journal_for(self._crisis_id)
                    raise CrisisRecordError(
                        f"crisis journal {journal} holds a line that is not a phase entry; move it aside"
                    )
                if (line["run_id"], line["kind"], line["entry"]["phase_id"]) == (self._run_id, kind, phase_id):
                    return line["entry"]
            end = start
        return None

    async def write(self, record: dict[str, Any]) -> None:
        # The journal was opened before: the record's directory sync makes its name durable too.
        version = self._store._write(self._path, record)
        self._store._remember(self._crisis_id, record, version)
        os.ftruncate(self._journal, 0)  # every entry it held is in the record now
        self.keeps_journal = record.get("completed_at") is None
        if self.keeps_journal:
            self._store._made_durable(self._crisis_id, self._journal)

    async def put(self, kind: str, entry: dict[str, Any]) -> None:
        line = json.dumps({"run_id": self._run_id, "kind": kind, "entry": entry}, separators=(",", ":")) + "\n"
        size = os.fstat(self._journal).st_size
        if size and os.pread(self._journal, 1, size - 1) != b"\n":
            size = self._trim_cut_line()
        durable = size == 0 and self._store._known_durable(self._crisis_id, self._journal)
        try:
            data = memoryview(line.encode("utf-8"))
            while data:
                data = data[os.write(self._journal, data) :]
            os.fsync(self._journal)
            if size == 0 and not durable:
                self._store._sync_directory()  # a new journal: its name must survive a crash too
        except OSError as err:
            os.ftruncate(self._journal, size)  # no half line left behind
            raise CrisisRecordError(f"cannot write crisis record {self._path}: {err.strerror or err}") from err

    def _trim_cut_line(self) -> int:
        """Drop a last line a crash cut short; the journal's size after."""
        data = os.pread(self._journal, os.fstat(self._journal).st_size, 0)
        size = data.rfind(b"\n") + 1
        os.ftruncate(self._journal, size)
        return size

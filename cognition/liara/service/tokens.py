"""The service's token file: who may call it, with which role.

A token is shown once, when it is created; the file keeps only its SHA-256 (a token carries 256
random bits, so a plain hash cannot be reversed or guessed), its name and role. The file is JSON,
written whole to a temporary file and renamed over the old one (so a reader never sees half a
file), mode 0600, under an exclusive lock so two ``liara token`` commands never lose each
other's change. The service reads it again whenever it changes: a revoked token stops working
at once, without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.temporal.errors import LiaraError
from app.temporal.models import SafeId
from app.temporal.validation import describe_validation_error

#: What a token starts with, so one pasted in the wrong place is recognisable (and greppable).
TOKEN_PREFIX = "liara_"
_SHA256_HEX = r"^[0-9a-f]{64}$"


class Role(StrEnum):
    """What a token may do: viewer reads, operator also starts and steers crises, approver also
    decides on phases, admin does everything.
    """

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


@dataclass(frozen=True)
class Identity:
    """Who calls: a token's name (recorded as who started, cancelled or decided) and its role."""

    name: str
    role: Role


class TokenFileError(LiaraError, ValueError):
    """The token file cannot be read or written, or a token command cannot be done."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: SafeId
    role: Role
    sha256: Annotated[str, Field(pattern=_SHA256_HEX)]
    created_at: datetime


class _Contents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    tokens: list[_Entry] = Field(default_factory=list)


@dataclass(frozen=True)
class TokenInfo:
    """A token as ``liara token list`` shows it: never its hash."""

    name: str
    role: Role
    created_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="surrogateescape")).hexdigest()


class TokenFile:
    """One token file on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def tokens(self) -> list[TokenInfo]:
        return [TokenInfo(entry.name, entry.role, entry.created_at) for entry in self._read().tokens]

    def create(self, name: str, role: str) -> str:
        """Add a token named ``name`` with ``role``; return the token itself (the file keeps its hash)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            entry = _Entry.model_validate(
                {"name": name, "role": role, "sha256": _digest(token), "created_at": datetime.now(UTC)}
            )
        except ValidationError as err:
            raise TokenFileError(f"Invalid token {describe_validation_error(err)}.") from None
        with self._locked():
            contents = self._read(missing_ok=True)
            if any(known.name == entry.name for known in contents.tokens):
                raise TokenFileError(
                    f"A token named {entry.name!r} already exists in {self.path}: "
                    "revoke it first or choose another name."
                )
            contents.tokens.append(entry)
            self._write(contents)
        return token

    def revoke(self, name: str) -> None:
        with self._locked():
            contents = self._read()
            kept = [entry for entry in contents.tokens if entry.name != name]
            if len(kept) == len(contents.tokens):
                raise TokenFileError(f"No token named {name!r} in {self.path}: see `liara token list`.")
            self._write(_Contents(tokens=kept))

    def identities(self) -> dict[str, Identity]:
        """Each token's hash and who it stands for; refused from a file that others may write,
        since whoever can write it can give themselves any role.
        """
        self._check_private()
        return {entry.sha256: Identity(entry.name, entry.role) for entry in self._read().tokens}

    def _check_private(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return  # said by _read, with what to do
        except OSError as err:
            raise TokenFileError(f"Cannot read token file {self.path}: {err.strerror}.") from None
        writers = [who for who, bit in (("its group", 0o020), ("every user", 0o002)) if stat.st_mode & bit]
        if writers:
            raise TokenFileError(
                f"Token file {self.path} can be written by {' and '.join(writers)} (mode {stat.st_mode & 0o777:o}), "
                f"who could give themselves any role: make it the owner's alone with `chmod 600 {self.path}`."
            )
        if stat.st_uid != os.getuid():
            raise TokenFileError(
                f"Token file {self.path} belongs to another user (uid {stat.st_uid}), who could give themselves any "
                "role: use a token file of the user that runs the service."
            )

    def version(self) -> tuple[int, int, int]:
        """Changes whenever the file is replaced or rewritten (inode, size, modification time)."""
        try:
            stat = self.path.stat()
        except OSError as err:
            raise TokenFileError(f"Cannot read token file {self.path}: {err.strerror}.") from None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _read(self, *, missing_ok: bool = False) -> _Contents:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if missing_ok:
                return _Contents()
            raise TokenFileError(
                f"Token file {self.path} does not exist: create a token with `liara token create NAME --role ROLE "
                f"--tokens {self.path}`."
            ) from None
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "it is not UTF-8 text"
            raise TokenFileError(f"Cannot read token file {self.path}: {reason}.") from None
        try:
            return _Contents.model_validate_json(text)
        except ValidationError as err:
            raise TokenFileError(
                f"Token file {self.path} is not a Liara token file ({describe_validation_error(err)}): "
                "fix it or create a new one with `liara token create`."
            ) from None

    def _write(self, contents: _Contents) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        data = contents.model_dump_json(indent=2).encode()
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as err:
            temporary.unlink(missing_ok=True)
            raise TokenFileError(f"Cannot write token file {self.path}: {err.strerror}.") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the file's lock (a ``.lock`` file beside it, since the file itself is replaced)."""
        lock = self.path.with_name(f".{self.path.name}.lock")
        try:
            descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError as err:
            raise TokenFileError(f"Cannot lock token file {self.path}: {err.strerror}.") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)


class TokenVerifier:
    """Who a presented token stands for, from a token file read again whenever it changes.

    A file that becomes unreadable or malformed fails closed: every check raises
    ``TokenFileError`` until it is fixed.
    """

    def __init__(self, file: TokenFile) -> None:
        self.file = file
        self._identities = file.identities()
        self._version = file.version()

    @property
    def count(self) -> int:
        return len(self._identities)

    def identify(self, token: str) -> Identity | None:
        version = self.file.version()
        if version != self._version:
            self._identities = self.file.identities()
            self._version = version
        presented = _digest(token)
        found = None
        for digest, identity in self._identities.items():  # every one: the time taken tells nothing
            if hmac.compare_digest(digest, presented):
                found = identity
        return found

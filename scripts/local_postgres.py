"""A throwaway PostgreSQL server from Debian's ``postgresql`` package, for tests and benchmarks.

``initdb`` into a temporary directory, ``pg_ctl start`` on one address and port (in a network
namespace if given), password (SCRAM) authentication over TCP, and a database with an owner of its
own, as a real deployment has. Run as root, the server runs as the ``postgres`` user (PostgreSQL
refuses root); otherwise as the caller. ``stop`` and ``start`` again keep the data, so a test can
take the database away under running crises and bring it back.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

INITDB_GLOB = "/usr/lib/postgresql/*/bin/initdb"
SUPERUSER = "postgres"


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's ``bin`` directory."""
    found = sorted(glob.glob(INITDB_GLOB), key=lambda path: int(Path(path).parts[-3]))
    if not found:
        raise RuntimeError(f"PostgreSQL is not installed (no {INITDB_GLOB}): `apt-get install -y postgresql`")
    return Path(found[-1]).parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class LocalPostgres:
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    #: Run the server inside this network namespace (``ip netns exec``), listening on ``host`` there.
    netns: str | None = None
    database: str = "liara_records"
    user: str = "liara"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="liara-pg-")))

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        """The database's URL, as its owner (``LIARA_RECORD_STORE``)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def url_as(self, user: str, password: str) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{self.database}"

    def init(self) -> LocalPostgres:
        """Create the cluster, start it, and create the database and its owner."""
        if os.geteuid() == 0:
            shutil.chown(self.directory, SUPERUSER, SUPERUSER)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-instructions",
        )
        with (self.data_dir / "pg_hba.conf").open("w") as hba:
            hba.write("local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n")
        self.start()
        self.sql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        self.sql(f"CREATE DATABASE {self.database} OWNER {self.user}")
        return self

    def start(self) -> None:
        options = f"-c listen_addresses={self.host} -p {self.port} -k {self.directory} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.directory / "log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement as the superuser over the server's Unix socket; its output."""
        return self._run(
            "psql", "-h", str(self.directory), "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-Atc", statement
        )

    def destroy(self) -> None:
        """Stop the server (at once) and delete its files."""
        if self.running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, program: str, *args: str, check: bool = True) -> str:
        command = [str(postgres_bin_dir() / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        if self.netns:
            command = ["ip", "netns", "exec", self.netns, *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.directory)
        if check and done.returncode != 0:
            log = self.directory / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")
        return done.stdout.strip()

"""A throw-away PostgreSQL cluster: initdb in a temp dir, pg_ctl on a free port.

initdb and postgres refuse to run as root, so when we are root the cluster belongs
to the `postgres` system user and its commands run as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from ticketmon.servers.process import ServerError, free_port


def _bindir() -> Path:
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServerError("PostgreSQL server binaries not found (apt-get install postgresql)")


class PostgresCluster:
    """Superuser `postgres` with password auth off on loopback (trust), for tests only."""

    def __init__(self, workdir: Path | None = None, port: int | None = None) -> None:
        self.bindir = _bindir()
        self.port = port or free_port()
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="ticketmon-pg-")
            workdir = Path(self._tmp)
        self.workdir = Path(workdir)
        self.datadir = self.workdir / "data"
        self.logfile = self.workdir / "postgres.log"
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-sync",
        )
        self.start()

    def start(self) -> None:
        """Start the server (again, after halt()) on the same port and data."""
        opts = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-o", opts,
                  "-w", "-t", "60", "start")

    def halt(self, mode: str = "fast") -> None:
        """Stop the server but keep its data, for fault tests that start() it again.

        `fast` rolls back open transactions and ends every session, like a restart in
        production; `immediate` is a crash, and with this cluster's synchronous_commit=off
        it may drop commits already acknowledged, so it is no test of the receiver.
        """
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / tool), *args], capture_output=True, text=True,
            user=self.user, cwd=self.workdir,
        )
        if result.returncode != 0:
            raise ServerError(f"{tool} failed: {result.stdout}{result.stderr}")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL for a database of this cluster."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, owned_by_ordinary_role: bool = False) -> str:
        """Create an empty database and return its SQLAlchemy URL.

        owned_by_ordinary_role: the database belongs to a login role of the same name
        with neither SUPERUSER nor BYPASSRLS, and the URL connects as that role, as
        production should run: row-level security then binds every query it makes."""
        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if owned_by_ordinary_role:
                cur.execute(f'DROP ROLE IF EXISTS "{name}"')
                cur.execute(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS')
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
            else:
                cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        url = self.url(name)
        return url.replace("postgres@", f"{name}@", 1) if owned_by_ordinary_role else url

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():  # not when halt() left it stopped
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

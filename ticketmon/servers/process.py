"""Start a server process, wait until it answers, and stop it with its children."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import requests


class ServerError(RuntimeError):
    """A server could not be found, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_binary(name: str, env_var: str | None = None, apt_package: str | None = None) -> str:
    """Locate a server binary on PATH (or in $env_var), saying how to install it if missing."""
    candidate = os.environ.get(env_var) if env_var else None
    found = candidate or shutil.which(name)
    if found and (Path(found).exists() or shutil.which(found)):
        return found
    hint = f" (apt-get install {apt_package})" if apt_package else ""
    raise ServerError(f"{name} not found on PATH{hint}" + (f" or in ${env_var}" if env_var else ""))


class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            user=user,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        """Poll `ready` until it holds; fail early, with the log, if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if ready():
                    return
            except (requests.RequestException, OSError):
                pass
            time.sleep(0.1)
        raise ServerError(f"{self.name} not ready after {timeout}s:\n{self.log_tail()}")

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        self.wait_until(lambda: requests.get(url, timeout=2).status_code == 200, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole process group, SIGKILL it if it lingers."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self._log.close()


class LoopbackServer:
    """A real server binary on a 127.0.0.1 port, its storage under a work directory.

    Subclasses name the binary and give its arguments; the URL is also the external
    URL the server puts in what it sends (alert links, webhook payloads).
    """

    name: str
    binary: str
    env_var: str
    apt_package: str

    def __init__(self, config_file: Path | None, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = workdir / f"{self.name}-data"
        data.mkdir(parents=True, exist_ok=True)
        binary = find_binary(self.binary, self.env_var, self.apt_package)
        self.process = ManagedProcess(
            self.name, [binary, *self.arguments(config_file, data)], workdir / f"{self.name}.log"
        )
        self.process.wait_http(f"{self.url}/-/ready")

    def arguments(self, config_file: Path | None, data: Path) -> list[str]:
        """The binary's arguments; config_file is None for a server that takes none."""
        raise NotImplementedError

    def stop(self) -> None:
        self.process.stop()

"""Where a running `ticketmon stack up` keeps its state, and how `stack scenario` finds it.

The state (URLs, the run's admin token) lives in the run's own work directory (0700),
in `stack.json` created 0600, so no other local user can read the token and two stacks
on one machine never overwrite each other's state. Each running stack also leaves a
small entry in a per-user runtime directory ($XDG_RUNTIME_DIR/ticketmon, else
/tmp/ticketmon-UID, 0700 and refused if anyone else owns it) naming its pid and work
directory, holding no secret; the scenario command lists the entries whose pid is alive.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "stack.json"


class StackNotFound(Exception):
    """No stack, or more than one, and nothing says which: the message says what to do."""


def write_private(path: Path, text: str) -> Path:
    """Create `path` 0600 (never widened by a later chmod, never through a symlink);
    an old file of that name is replaced, since its mode may be wider."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def private_dir(path: Path) -> Path:
    """A directory only this user can enter: created 0700, or an existing one of ours
    narrowed to 0700."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise PermissionError(f"{path} is not a directory owned by you") from None
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, 0o700)
    return path


def runtime_dir() -> Path:
    """The per-user directory listing this user's running stacks."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and Path(base).is_dir():
        path = Path(base) / "ticketmon"
    else:
        path = Path(tempfile.gettempdir()) / f"ticketmon-{os.getuid()}"
    private_dir(path)
    info = os.lstat(path)
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise PermissionError(f"{path} is open to other users")
    return path


def state_path(workdir: Path) -> Path:
    return Path(workdir) / STATE_FILE


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process reuses the pid: not our stack
        return False
    return True


@dataclass(frozen=True)
class Running:
    pid: int
    workdir: Path

    @property
    def state_file(self) -> Path:
        return state_path(self.workdir)

    def describe(self) -> str:
        return f"{self.workdir} (pid {self.pid})"


def register(workdir: Path, state: dict, pid: int | None = None,
             runtime: Path | None = None) -> Running:
    """Write the run's state (0600, in its workdir) and its entry in the runtime dir."""
    pid = os.getpid() if pid is None else pid
    write_private(state_path(workdir), json.dumps(state, indent=2))
    runtime = runtime or runtime_dir()
    write_private(runtime / f"{pid}.json",
                  json.dumps({"pid": pid, "workdir": str(Path(workdir).resolve())}))
    return Running(pid, Path(workdir).resolve())


def unregister(workdir: Path, pid: int | None = None, runtime: Path | None = None) -> None:
    pid = os.getpid() if pid is None else pid
    state_path(workdir).unlink(missing_ok=True)
    try:
        runtime = runtime or runtime_dir()
    except OSError:
        return
    (runtime / f"{pid}.json").unlink(missing_ok=True)


def running(runtime: Path | None = None) -> list[Running]:
    """This user's live stacks; entries of stacks that died without cleaning up are
    removed on the way."""
    runtime = runtime or runtime_dir()
    found = []
    for entry in sorted(runtime.glob("*.json")):
        try:
            doc = json.loads(entry.read_text())
            run = Running(int(doc["pid"]), Path(doc["workdir"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid_alive(run.pid) and run.state_file.exists():
            found.append(run)
        else:
            entry.unlink(missing_ok=True)
    return found


def find(workdir: Path | None = None, runtime: Path | None = None) -> tuple[Running, dict]:
    """The stack to drive: the one in `workdir`, else the only running one of this user."""
    if workdir is not None:
        path = state_path(workdir)
        run = Running(0, Path(workdir).resolve())
    else:
        live = running(runtime)
        if not live:
            raise StackNotFound("no running stack found: start one with `ticketmon stack up`")
        if len(live) > 1:
            names = "; ".join(r.describe() for r in live)
            raise StackNotFound(f"{len(live)} stacks are running ({names}): "
                                "choose one with --workdir DIR")
        run, path = live[0], live[0].state_file
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StackNotFound(f"no running stack found in {path.parent} ({path} unreadable: "
                            f"{getattr(exc, 'strerror', None) or exc}): start one with "
                            "`ticketmon stack up`") from exc
    if not run.pid:
        run = Running(int(doc.get("pid") or 0), run.workdir)
    return run, doc

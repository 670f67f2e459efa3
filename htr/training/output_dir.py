"""The output dir as a shared resource: one run at a time, and a one-line error when it cannot be written.

Two runs into one folder used to interleave: the second "resumed" from the first's live checkpoint and both
wrote results. So a run takes ``.run_trocr.lock`` (created exclusively, holding pid, host and start time).
A lock whose process is gone (``kill -9``, a crash) is stale: on the same host a dead pid is taken over with
a log line, so it never blocks forever; a lock from another host cannot be checked and is refused with its
owner named. Checking a lock and taking it over is one step under ``flock`` on the folder, so two runs that
find the same stale lock cannot both take it (each would otherwise delete the other's fresh lock). A full
disk or a read-only folder surfaced as ``Errno 28``/``Errno 30`` tracebacks, or as torch's ``enforce fail at
inline_container.cc``, which never says "disk"; :func:`explain_write_error` turns them into one line naming
the folder and the fix.
"""

import atexit
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path

from htr.core.errors import HTRError

logger = logging.getLogger(__name__)

LOCK_FILE = ".run_trocr.lock"
# torch.save's messages when the file system refuses a write (PytorchStreamWriter / inline_container.cc).
_TORCH_WRITE_FAILURES = ("inline_container.cc", "PytorchStreamWriter failed", "file write failed")
_held: list[Path] = []  # the output dir this process holds, for errors that name no file


class OutputDirError(HTRError, RuntimeError):
    """The output dir is in use by another run, or cannot be written: what to do instead."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _create(lock: Path) -> bool:
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(owner, file)
    return True


def lock_output_dir(output_dir: str | Path) -> Path:
    """Take ``output_dir``'s run lock (creating the folder), released at exit or by :func:`release`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lock = output_dir / LOCK_FILE
    guard = os.open(output_dir, os.O_RDONLY)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)  # held for milliseconds; the kernel drops it if this process dies
        while not _create(lock):
            try:
                owner = json.loads(lock.read_text(encoding="utf-8"))
                pid, host = int(owner["pid"]), str(owner["host"])
            except (OSError, ValueError, KeyError, TypeError):  # empty or corrupt: no owner to ask
                owner, pid, host = {}, -1, "?"
            if owner and host == socket.gethostname() and pid != os.getpid() and _alive(pid):
                raise OutputDirError(
                    f"{output_dir} is in use by another run (pid {pid} on {host}, since {owner.get('started')}): "
                    "wait for it to finish, or choose another --output_dir"
                )
            if owner and host != socket.gethostname():
                raise OutputDirError(
                    f"{output_dir} is in use by a run on host {host} (pid {pid}, since {owner.get('started')}): "
                    f"wait for it, choose another --output_dir, or delete {lock} if that run is gone"
                )
            if pid != os.getpid():
                logger.warning(
                    "Taking over %s: the run that held it (pid %s) is no longer running.", lock, pid
                )
            lock.unlink(missing_ok=True)
    finally:
        os.close(guard)
    _held.append(output_dir)
    atexit.register(release, output_dir)
    return lock


def release(output_dir: str | Path) -> None:
    """Drop the run lock this process holds on ``output_dir`` (a no-op if it holds none)."""
    output_dir = Path(output_dir)
    if output_dir in _held:
        _held.remove(output_dir)
        (output_dir / LOCK_FILE).unlink(missing_ok=True)


def explain_write_error(error: BaseException) -> str | None:
    """One line for a write the file system refused (disk full, read-only, no permission), else None."""
    for cause in (error, error.__cause__, error.__context__):
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            folder = _folder(cause)
            return (
                f"{folder}: no space left on the disk (writing {cause.filename or 'a checkpoint'}). Free space "
                "there or choose another --output_dir, then rerun the same command: it resumes from the last "
                "complete checkpoint"
            )
        if isinstance(cause, OSError) and cause.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return (
                f"{_folder(cause)} cannot be written ({cause.strerror}): choose a writable --output_dir, or "
                "make this folder writable, and rerun"
            )
    if isinstance(error, RuntimeError) and any(mark in str(error) for mark in _TORCH_WRITE_FAILURES):
        folder = _held[-1] if _held else Path(".")
        free = shutil.disk_usage(folder).free // 2**20
        return (
            f"{folder}: writing a checkpoint failed, most likely because the disk is full ({free:,} MiB free "
            "now). Free space there or choose another --output_dir, then rerun the same command: it resumes "
            "from the last complete checkpoint"
        )
    return None


def _folder(error: OSError) -> Path:
    """The folder a refused write was in: the file's parent, or the held output dir if it names no file."""
    if error.filename:
        path = Path(os.fsdecode(error.filename))
        return path if path.is_dir() or not path.suffix else path.parent  # a folder it failed to make
    return _held[-1] if _held else Path(".")

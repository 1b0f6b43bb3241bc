"""One run of a stage at a time on a lakehouse: an advisory lock per stage.

The lock is `fcntl.flock` on `<lakehouse>/_locks/<stage>.lock`. The kernel releases it when the
holding process ends, however it ends (SIGKILL included), so a killed driver never leaves a
stale lock behind. A second run of the same stage fails at once with a message naming the run
that holds the lock, before it has written anything.

On a lakehouse URI (`s3a://`, `abfss://`, `dbfs:/`) there is no POSIX lock to take; there,
Delta's optimistic concurrency is the guard, and a conflicting commit ends the later run with
`ConcurrentRunError` (spark_jobs.runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from spark_jobs.storage import local_path

LOCK_DIR = "_locks"


class StageLockedError(RuntimeError):
    """Another run of the same stage holds the lakehouse's lock for it."""


def lock_file(lakehouse: str, stage: str) -> Path | None:
    """Where the lock of `stage` lives, or None where the lakehouse is not a local folder."""
    root = local_path(lakehouse)
    return None if root is None else root / LOCK_DIR / f"{stage}.lock"


@contextlib.contextmanager
def stage_lock(lakehouse: str, stage: str, run_id: str) -> Iterator[None]:
    """Hold the lock of `stage` on `lakehouse` for the duration of the block."""
    path = lock_file(lakehouse, stage)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Opened without truncation: the holder's description must survive until we hold it.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise StageLockedError(
                f"stage {stage} is already running on {lakehouse} ({_holder(path)}); "
                "this run stopped before writing anything: run it again when that one ends"
            ) from None
        holder = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "holder unknown"
    return (
        f"run {holder.get('run_id', '?')}, pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, since {holder.get('since', '?')}"
    )

"""One compare at a time per run: an advisory lock file in each run folder.

Two compares can share a results folder (a second one started to add seeds, or the same command
run twice by mistake). Without a lock both would train the same run: the second deletes what it
takes for a stale ``done.json`` or checkpoint, and both write the same checkpoint and curve. The
compare that gets to a run first holds ``<run folder>/compare.lock`` until the run's training
process has exited; another compare skips that run and reports it as in progress.

The lock is ``fcntl.flock`` on the file, so the kernel releases it when its holders die, even by
``kill -9``: a lock is never left stale. The training subprocess inherits the locked descriptor
(:attr:`RunLock.inheritable_fds`), so a run whose compare was killed stays locked while it still
trains. The file's text names the holder for the message; it is emptied on release and otherwise
kept, as unlinking a flock'ed file lets two processes lock two different files of one name.
Where ``fcntl`` is missing (Windows), or the filesystem refuses ``flock``, runs are not locked.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any, Dict, Optional, Tuple

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "compare.lock"


class RunLock:
    """The held lock of one run folder; release it with :meth:`release` (or use it as a context)."""

    def __init__(self, path: str, fd: int, locked: bool) -> None:
        self.path = path
        self.fd = fd
        #: False where the platform or filesystem has no flock: the run is then not protected.
        self.locked = locked
        self._record: Dict[str, Any] = {}

    @classmethod
    def acquire(cls, folder: str) -> Optional["RunLock"]:
        """Lock ``folder`` for this process.

        :return: the lock, or None if another live process holds it (see :func:`read_holder`).
        """
        path = os.path.join(folder, LOCK_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        locked = fcntl is not None
        if locked:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except OSError:  # a filesystem without flock (some network mounts): run unlocked
                locked = False
        lock = cls(path, fd, locked)
        lock.describe(pid=os.getpid(), host=socket.gethostname(), since=time.strftime("%Y-%m-%d %H:%M:%S"))
        return lock

    @property
    def inheritable_fds(self) -> Tuple[int, ...]:
        """``pass_fds`` for a child process that should hold the lock too (none where unlocked)."""
        return (self.fd,) if self.locked else ()

    def describe(self, **fields: Any) -> None:
        """Add ``fields`` (e.g. the training process' pid) to the text another compare will show."""
        self._record.update(fields)
        self._write(json.dumps(self._record) + "\n")

    def release(self) -> None:
        """Empty the file and unlock it (descriptors a still-running child inherited keep it locked)."""
        if self.fd < 0:
            return
        self._write("")
        os.close(self.fd)  # closing the last descriptor of the open file releases the flock
        self.fd = -1

    def _write(self, text: str) -> None:
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        os.write(self.fd, text.encode())

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def held_elsewhere(folder: str) -> bool:
    """Whether another live process holds ``folder``'s lock. Looks without taking it (a shared
    lock tried and dropped at once): nothing is written, so a report can ask about any run."""
    path = os.path.join(folder, LOCK_NAME)
    if fcntl is None or not os.path.exists(path):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a filesystem without flock: nothing can hold it
        return False
    finally:
        os.close(fd)  # closing drops the shared lock
    return False


def read_holder(folder: str) -> str:
    """:return: who holds ``folder``'s lock, as its file says (for messages; may be empty)."""
    try:
        with open(os.path.join(folder, LOCK_NAME)) as file:
            record = json.loads(file.read() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not record:
        return "another process"
    parts = [f"compare pid {record.get('pid')} on {record.get('host')}"]
    if "train_pid" in record:
        parts.append(f"training pid {record['train_pid']}")
    if "since" in record:
        parts.append(f"since {record['since']}")
    return ", ".join(parts)

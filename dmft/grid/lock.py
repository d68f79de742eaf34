"""The lock file that keeps a grid output to one writer at a time."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Mapping

from ..errors import DmftError


class OutputLock:
    """``<output>.lock``: one writer per output file, across processes and hosts.

    The lock is an ``flock`` held on the lock file for the whole run: the kernel releases
    it when its holder dies, however it dies, so a lock left behind by a killed run is
    recognised as stale and taken over. The file records PID, host and start time for
    the error message. Where flock is not available, a live PID on this host holds it.
    """

    def __init__(self, output: str | os.PathLike) -> None:
        self.output = Path(output)
        self.path = Path(f"{output}.lock")
        self.fd: int | None = None
        self.stale: dict[str, Any] | None = None

    def _holder(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(self.path.read_text() or "{}")
        return {}

    def _refuse(self, holder: Mapping[str, Any]) -> DmftError:
        who = f"PID {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
        return DmftError(f"{self.output} is being written by another `dmft grid` ({who}); "
                         f"wait for it, or remove {self.path} if that process is gone")

    def acquire(self) -> "OutputLock":
        if not self.output.parent.exists():
            raise DmftError(f"cannot write {self.output}: directory {self.output.parent} does not exist")
        try:
            import fcntl
        except ImportError:  # not POSIX
            fcntl = None  # type: ignore[assignment]
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        raise self._refuse(self._holder()) from None
                    except OSError as error:
                        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                            raise
                        self._pid_check()
                else:
                    self._pid_check()
                # The previous holder may have unlinked the file between our open and our
                # flock: then we hold a lock on a dead inode; start again.
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                holder = self._holder()
                self.stale = holder or None
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                         "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
                os.fsync(fd)
                self.fd = fd
                return self
            except BaseException:
                if self.fd != fd:
                    os.close(fd)
                raise
        raise DmftError(f"cannot take the lock {self.path}: it keeps changing")

    def _pid_check(self) -> None:
        holder = self._holder()
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and pid != os.getpid():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return  # stale
            except PermissionError:
                pass
            raise self._refuse(holder)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still holding the lock: see the inode check above
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

"""One process at a time in a folder: an exclusive lock that the OS drops with its process.

A training run and its second start (the same command typed twice, or a scheduler's retry
while the first still runs) would otherwise write the same checkpoints, logs and
metrics.json, each finishing with exit 0 and slightly different numbers. The lock is a
`flock` on a file in the folder, so a crashed or killed holder leaves no stale lock.
"""

import contextlib
import fcntl
import os


@contextlib.contextmanager
def exclusive_lock(path):
    """Yields None while this process holds the lock on file `path` (created if absent);
    when another process holds it, yields that process's pid as it recorded it (0 when
    unknown) and holds nothing."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield _recorded_pid(descriptor)
            return
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode("ascii"))
        yield None
    finally:
        os.close(descriptor)  # closing releases the lock


def _recorded_pid(descriptor):
    text = os.pread(descriptor, 32, 0).decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else 0

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
    unknown) and holds nothing.

    A folder the lock made for `path` is removed again if the holder wrote nothing else
    there (a job that failed on a mistyped --dataset, say), so a bad command leaves no
    folder behind; this happens before the lock is released, so no other holder is
    using it.
    """
    folder = os.path.dirname(os.path.abspath(path))
    made_folder = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield _recorded_pid(descriptor)
            return
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode("ascii"))
        try:
            yield None
        finally:
            if made_folder:
                _remove_if_only(folder, path)
    finally:
        os.close(descriptor)  # closing releases the lock


def _remove_if_only(folder, path):
    try:
        if os.listdir(folder) == [os.path.basename(path)]:
            os.remove(path)
            os.rmdir(folder)
    except OSError:  # someone else wrote there meanwhile: leave it
        pass


def _recorded_pid(descriptor):
    text = os.pread(descriptor, 32, 0).decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else 0

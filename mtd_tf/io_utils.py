"""Atomic writes: a crash never leaves a half-written file or folder behind; a write that
fails for lack of space stops the run in one line.
"""

import contextlib
import errno
import glob
import os
import shutil
import tempfile

from mtd_tf.errors import DataError
from mtd_tf.errors import WriteFailedError

# A full disk, a file-size limit, a quota: errno values, and the words TensorFlow's own
# writers (checkpoints, SavedModels, event files) put in their errors.
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_NO_SPACE_TEXTS = ("No space left", "File too large", "Disk quota exceeded")


@contextlib.contextmanager
def no_space_reported(path):
    """Turns a write to `path` that fails for lack of space into a `WriteFailedError` line.

    Every output is written whole or not at all (checkpoints by their manager, files and
    exports atomically), so what was written before stays intact and the same command
    resumes once space is free.
    """
    try:
        yield
    except Exception as error:  # pylint: disable=broad-except  # re-raised unless no space
        if isinstance(error, OSError) and error.errno in _NO_SPACE_ERRNOS:
            reason = error.strerror
        else:  # TensorFlow's writers raise their own errors, with the system's words in
            reason = next((text for text in _NO_SPACE_TEXTS if text in str(error)), None)
        if reason is None:
            raise
        raise WriteFailedError(
            f"{path}: cannot write ({reason}); the previous checkpoint, export and "
            "metrics are intact: free some space and run the same command again to "
            "resume") from None


def _default_mode(is_dir):
    """The mode a plain open()/mkdir() would give: mkstemp/mkdtemp create private entries."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if is_dir else 0o666) & ~umask


@contextlib.contextmanager
def atomic_output_file(path, mode="w", **open_kwargs):
    """Yields a file object on a temp file beside `path`; renames it over `path` on success.

    On any exception the temp file is removed and `path` is left as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    with no_space_reported(path):
        os.makedirs(directory, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                        suffix=".tmp")
    try:
        os.chmod(tmp_path, _default_mode(is_dir=False))
        with no_space_reported(path), os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (UTF-8)."""
    with atomic_output_file(path, "w", encoding="utf-8") as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_output_dir(path):
    """Yields a temp folder beside `path`; on success it replaces `path` in one rename.

    An existing `path` is moved aside first and deleted only after the new folder is in
    place, so a crash never leaves a partial folder: killed between the two renames, it
    leaves the old folder aside as `.NAME.*.old`, which the next write puts back at `path`
    before it starts. Other `.tmp`/`.old` folders of killed writes are deleted.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    _recover_leftover_dirs(path)
    tmp_dir = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.chmod(tmp_dir, _default_mode(is_dir=True))
        with no_space_reported(path):
            yield tmp_dir
        old_dir = None
        if os.path.exists(path):
            old_dir = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.", suffix=".old")
            os.rmdir(old_dir)
            os.replace(path, old_dir)
        os.replace(tmp_dir, path)
        if old_dir:
            shutil.rmtree(old_dir, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def _recover_leftover_dirs(path):
    """Puts back the old folder a killed write had moved aside; deletes its other leftovers."""
    parent, name = os.path.split(path)
    for leftover in glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(name)}.*")):
        if not (leftover.endswith((".tmp", ".old")) and os.path.isdir(leftover)):
            continue
        if leftover.endswith(".old") and not os.path.exists(path):
            os.replace(leftover, path)  # killed between the renames: the old folder is whole
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def read_file_bytes(path):
    """A file's bytes; an unreadable path (missing, a folder, no permission) is a DataError."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise DataError(path, f"cannot read file ({error.strerror or error})") from None

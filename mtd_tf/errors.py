"""Expected, user-facing errors.

Every CLI turns these into one line on stderr and a non-zero exit, with no traceback
(see `mtd_tf.cli.run_app`). Anything else is a bug and keeps its traceback.
"""


class MTDError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""

    label = "error"  # the CLI's line starts with it
    exit_code = 2


class DataError(MTDError, ValueError):
    """A data file is malformed; the message names the file, the record and the problem."""

    def __init__(self, path, problem, record=None):
        self.path = str(path)
        self.problem = problem
        self.record = record
        where = f"{self.path}: record {record}" if record is not None else self.path
        super().__init__(f"{where}: {problem}")


class ConfigError(MTDError, ValueError):
    """A run's settings are inconsistent or out of range."""


class DatasetMissingError(MTDError, FileNotFoundError):
    """A dataset folder or file is absent; the message says how to get it."""


class ChecksumError(MTDError):
    """A downloaded file does not match its pinned SHA-256."""


class TrainingDivergedError(MTDError, FloatingPointError):
    """The loss became NaN or Inf; the last good checkpoint is kept."""


class WriteFailedError(MTDError, OSError):
    """An output could not be written for lack of space; earlier outputs are intact."""


class RunInUseError(MTDError):
    """Another process is training in the same run folder."""


class RunStopped(MTDError):
    """A stop signal ended the run after saving; the same command resumes it."""

    label = "stopped"

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum  # the shell's convention for a death by signal


class ClusterError(MTDError):
    """A multi-worker run lost its cluster: a peer did not connect in time at start-up, or
    stopped answering mid-run; the last checkpoint is kept and the same command resumes."""

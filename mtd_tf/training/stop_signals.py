"""A graceful stop: SIGTERM or SIGINT ends a run at its next batch boundary, saved.

Cloud machines announce preemption with SIGTERM and a short grace period, and a user
stops a run with Ctrl-C; without this both cost up to a pass (the last checkpoint). The
trainer asks `check()` between batches and graph steps; after a signal it raises
`StopRequested`, the trainer saves where it stands and the CLI exits with 128 + the
signal's number. A second signal stops at once.
"""

import os
import signal
import threading

from absl import logging

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequested(Exception):
    """A stop signal arrived; the trainer saves and ends the run."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class GracefulStop:
    """While entered, turns the first SIGTERM or SIGINT into a `StopRequested` at the next
    `check()`; the second ends the process at once. Outside the main thread (where Python
    cannot take signals) it installs nothing and never stops."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        if self.signum is not None:
            os._exit(128 + signum)  # pylint: disable=protected-access  # the second: at once
        self.signum = signum
        logging.warning("%s received: saving at the next batch boundary and stopping (send "
                        "it again to stop at once)", signal.Signals(signum).name)

    def check(self):
        """Raises `StopRequested` once a stop signal has arrived."""
        if self.signum is not None:
            raise StopRequested(self.signum)


class NeverStop:
    """The trainer's default: a run outside the CLI job is stopped by its caller."""

    def check(self):
        pass

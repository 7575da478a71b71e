"""Progress of a training pass: a live bar on a terminal, periodic log lines otherwise."""

import sys
import time

from absl import logging
import keras


class PassProgress:
    """Reports batches done, samples/s and the running loss of one pass."""

    def __init__(self, description, num_batches, log_every=100):
        self.description = description
        self.num_batches = num_batches
        self.log_every = log_every
        self.samples = 0
        self.batches = 0
        self.start = time.perf_counter()
        self._first_batch_end = None
        self.bar = (keras.utils.Progbar(num_batches, stateful_metrics=["loss", "samples/s"])
                    if sys.stderr.isatty() else None)

    def update(self, batch_size, loss):
        self.batches += 1
        self.samples += batch_size
        now = time.perf_counter()
        if self._first_batch_end is None:
            self._first_batch_end = now
        rate = self.samples / max(now - self.start, 1e-9)
        if self.bar is not None:
            self.bar.update(self.batches, values=[("loss", loss), ("samples/s", rate)])
        elif self.batches % self.log_every == 0 or self.batches == self.num_batches:
            logging.info("%s: batch %d/%d, loss %.4f, %.0f samples/s",
                         self.description, self.batches, self.num_batches, loss, rate)

    @property
    def seconds(self):
        return time.perf_counter() - self.start

    @property
    def steady(self):
        """(seconds, batches) after the first batch: the per-batch rate without the pass's
        start-up and any tracing, for extrapolating a capped pass to a full one."""
        if self._first_batch_end is None:
            return 0.0, 0
        return time.perf_counter() - self._first_batch_end, self.batches - 1

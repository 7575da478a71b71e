"""Progress of a pass over batches (training, validation, test): a live bar with rate and
ETA on a terminal, otherwise a log line at least every `log_seconds`."""

import sys
import time

from absl import logging
import keras

LOG_SECONDS = 10.0


class PassProgress:
    """Reports batches done, samples/s, the time left and, when training, the running loss."""

    def __init__(self, description, num_batches, log_seconds=LOG_SECONDS):
        self.description = description
        self.num_batches = num_batches
        self.log_seconds = log_seconds
        self.samples = 0
        self.batches = 0
        self.start = time.perf_counter()
        self._last_line = self.start
        self._first_batch_end = None
        self.bar = (keras.utils.Progbar(num_batches, stateful_metrics=["loss", "samples/s"])
                    if sys.stderr.isatty() else None)

    def update(self, batch_size, loss=None):
        self.batches += 1
        self.samples += batch_size
        now = time.perf_counter()
        if self._first_batch_end is None:
            self._first_batch_end = now
        elapsed = max(now - self.start, 1e-9)
        rate = self.samples / elapsed
        loss_values = [] if loss is None else [("loss", loss)]
        if self.bar is not None:
            self.bar.update(self.batches, values=loss_values + [("samples/s", rate)])
        elif now - self._last_line >= self.log_seconds or self.batches == self.num_batches:
            self._last_line = now
            left = elapsed / self.batches * max(self.num_batches - self.batches, 0)
            loss_text = "" if loss is None else f", loss {loss:.4f}"
            logging.info("%s: batch %d/%d%s, %.0f samples/s, %.0f s left", self.description,
                         self.batches, self.num_batches, loss_text, rate, left)

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

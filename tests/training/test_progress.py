"""`PassProgress`'s steady timing: the batches after a pass's first, and their seconds."""

from mtd_tf.training import progress


def test_steady_time_starts_at_the_end_of_the_first_batch(monkeypatch):
    clock = iter([10.0, 13.0, 13.5, 14.0, 14.75])  # start, three batches, then the read
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    bar = progress.PassProgress("pass", num_batches=3, log_seconds=100)
    assert bar.steady == (0.0, 0)  # no batch yet: nothing to time (reads no clock)
    for _ in range(3):
        bar.update(batch_size=8, loss=1.0)
    assert bar.steady == (1.75, 2)  # 14.75 - 13.0 over batches 2 and 3

"""Seconds per epoch of a run whose session passes were capped, extrapolated to whole passes.

Timing a large dataset's epoch on a CPU takes an hour or more per variant; a run capped at
K batches a pass (`max_train_batches`) still measures the graph phase and validation whole,
so only each pass's missing batches need estimating, at the run's steady per-batch rate.
"""


def whole_pass_epoch(record):
    """(seconds per epoch with whole passes, batches timed per pass or None).

    `record` is a runner record: `seconds_per_epoch` measured, `config` with
    `max_train_batches` and `frequency`, and (from metrics.json)
    `train_batches_per_pass` and `seconds_per_train_batch`. A run that was not capped
    below a whole pass, or made before the loop recorded those two figures, keeps its
    measured epoch and None.
    """
    measured = record["seconds_per_epoch"]
    cap = record["config"]["max_train_batches"]
    whole = record.get("train_batches_per_pass")
    rate = record.get("seconds_per_train_batch")
    if not cap or whole is None or rate is None or cap >= whole:
        return measured, None
    return measured + record["config"]["frequency"] * (whole - cap) * rate, cap

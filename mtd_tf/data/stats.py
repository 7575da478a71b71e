"""Prints a dataset's sizes as one JSON line, to check a split against the paper's Table 1.

    python -m mtd_tf.data.stats --dataset=NAME --data_dir=DIR
"""

import json

import numpy as np
from absl import flags

from mtd_tf import cli
from mtd_tf import repeats
from mtd_tf.data import augment
from mtd_tf.data import registry
from mtd_tf.data import sessions


def dataset_stats(dataset, min_prefix_len, validation_fraction=augment.VALIDATION_FRACTION):
    """Counts that identify a split.

    Args:
      dataset: a `SessionDataset`.
      min_prefix_len: shortest training prefix (the dataset's: `registry.dataset_defaults`).
      validation_fraction: share of the training sessions, the most recent, held out.

    Returns:
      dict: dataset, train_sessions, train_samples (every prefix-augmented sample of the
      training sessions, before the validation split, as the paper counts them),
      valid_samples (the samples of the held-out sessions), test_samples, num_items,
      avg_session_length and max_session_length (training sessions), and
      test_targets_only_in_valid: test pairs whose target occurs in the held-out sessions
      but in no session a validated run trains on, so only a refit can learn it;
      test_repeat_share and valid_repeat_share: percent of the pairs whose target is
      already in its prefix (`repeats`; None for a split without pairs), which tells how
      much a model's ranking of the session's own items matters.
    """
    lengths = dataset.train.lengths
    train_sessions, valid_sessions = augment.split_validation(dataset.train, validation_fraction)
    valid_prefixes, valid_targets = sessions.prefix_target_pairs(valid_sessions, min_prefix_len)
    return {
        "dataset": dataset.name,
        "train_sessions": len(dataset.train),
        "train_samples": augment.count_samples(dataset.train, min_prefix_len),
        "valid_samples": augment.count_samples(valid_sessions, min_prefix_len),
        "test_samples": len(dataset.test_targets),
        "num_items": dataset.num_items,
        "avg_session_length": round(float(np.mean(lengths)), 4),
        "max_session_length": int(np.max(lengths)),
        "test_targets_only_in_valid": int(np.sum(
            np.isin(dataset.test_targets, valid_sessions.values)
            & ~np.isin(dataset.test_targets, train_sessions.values))),
        "test_repeat_share": _repeat_share(dataset.test_prefixes, dataset.test_targets),
        "valid_repeat_share": _repeat_share(valid_prefixes, valid_targets),
    }


def _repeat_share(prefixes, targets):
    if not len(targets):
        return None
    return round(100.0 * float(np.mean(repeats.repeat_targets(prefixes, targets))), 4)


def main(argv):
    del argv  # Unused.
    data_dir = registry.resolve_data_dir(flags.FLAGS.data_dir)
    dataset = registry.load_dataset(flags.FLAGS.dataset, data_dir, seed=flags.FLAGS.seed)
    min_prefix_len = registry.dataset_defaults(dataset).min_prefix_len
    print(json.dumps(dataset_stats(dataset, min_prefix_len)))


if __name__ == "__main__":
    cli.define_data_flags()
    cli.run_app(main)

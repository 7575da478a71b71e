"""Everything a run reads from data, built once: splits, samples and the transition graph."""

import dataclasses
import os

from absl import logging
import numpy as np
import tensorflow as tf

from mtd_tf import graph
from mtd_tf import repeats
from mtd_tf.data import augment
from mtd_tf.data import registry
from mtd_tf.errors import MTDError


@dataclasses.dataclass(frozen=True)
class TrainingInputs:
    """Samples for the three splits and the graph over the training part only.

    Attributes:
      dataset_name: canonical dataset name.
      num_items: M.
      frequency: session-step passes per epoch (flag, else the dataset's default:
        `registry.dataset_defaults`).
      train, valid, test: `augment.Samples`. Validation is the last 10% of training
        sessions (DESIGN.md section 1); the graph never sees them, so validation stays honest.
        With `refit_epochs` every training session trains and `valid` is empty.
      adjacency: tf.sparse.SparseTensor [M, M], D^-1/2 (A+I) D^-1/2 (eq. 6).
      has_edge: bool [M]; items without any transition keep their embedding on write-back.
      item_popularity: int64 [M], training counts; the exported model's fallback ranking.
      unknown_test_ids: `registry.LoadedDataset.unknown_id_counts()`, for metrics.json.
      test_repeats: bool [test pairs], whether each test target is in its own whole prefix
        (`repeats.repeat_targets`), for the test report's repeat/new split.
      raw_item_ids: str [M] raw ids of items 1..M (the dataset's `items.tsv`), which the
        export serves; None without one.
    """

    dataset_name: str
    num_items: int
    frequency: int
    train: augment.Samples
    valid: augment.Samples
    test: augment.Samples
    adjacency: tf.sparse.SparseTensor
    has_edge: np.ndarray
    item_popularity: np.ndarray
    unknown_test_ids: dict = dataclasses.field(default_factory=dict)
    test_repeats: np.ndarray = None
    raw_item_ids: np.ndarray = None


def build_inputs(config):
    """Loads the dataset of `config` (a `TrainConfig`) and derives samples and graph (DESIGN.md sections 1 and 3)."""
    settings, max_len = config.trainer, config.model.max_len
    dataset = registry.load_dataset(settings.dataset, settings.data_dir, seed=settings.seed)
    defaults = registry.dataset_defaults(dataset)  # its dataset.json's, else its name's
    train_sessions, valid_sessions = augment.split_validation(
        dataset.train, fraction=0.0 if settings.refit_epochs else augment.VALIDATION_FRACTION)
    train = augment.augment_prefixes(train_sessions, defaults.min_prefix_len, max_len)
    valid = augment.augment_prefixes(valid_sessions, defaults.min_prefix_len, max_len)
    test = augment.pad_prefixes(dataset.test_prefixes, dataset.test_targets, max_len)
    adjacency = graph.transition_adjacency(train_sessions, dataset.num_items)
    has_edge = np.asarray(adjacency.getnnz(axis=1) > 0)
    normalized = graph.normalized_adjacency(adjacency)
    popularity = np.bincount(dataset.train.values, minlength=dataset.num_items + 1)[1:]
    logging.info(
        "%s: %d items, %d train / %d valid / %d test samples, %d graph edges",
        dataset.name, dataset.num_items, len(train.targets), len(valid.targets),
        len(test.targets), adjacency.nnz)
    inputs = TrainingInputs(
        dataset_name=dataset.name,
        num_items=dataset.num_items,
        frequency=settings.frequency or config.model.default_frequency(defaults.frequency),
        train=train, valid=valid, test=test,
        adjacency=graph.to_sparse_tensor(normalized),
        has_edge=has_edge,
        item_popularity=popularity.astype(np.int64),
        unknown_test_ids=dataset.unknown_id_counts(),
        test_repeats=repeats.repeat_targets(dataset.test_prefixes, dataset.test_targets),
        raw_item_ids=dataset.raw_item_ids)
    _check_samples(inputs, settings)
    return inputs


def _check_samples(inputs, settings):
    """A split too small to train on is the data's fault: say so in one line."""
    folder = os.path.join(settings.data_dir, inputs.dataset_name)
    if not len(inputs.train):
        raise MTDError(f"{folder}: no training samples: every training session is too "
                       "short to give a (prefix, target) pair")
    if not len(inputs.valid) and not settings.refit_epochs:
        raise MTDError(f"{folder}: no validation samples: the validation split (the last "
                       "10% of the training sessions) is empty or holds only sessions "
                       "too short to give a (prefix, target) pair; it needs at least 6 "
                       "training sessions")

"""TrainConfig: every bad value is refused with a message naming the field."""

import numpy as np
import pytest

from mtd_tf.errors import ConfigError
from mtd_tf.training.config import TrainConfig


@pytest.mark.parametrize("field, value", [
    ("variant", "big"), ("graph_writeback", "merge"), ("scoring_precision", "float16"),
    ("epochs", 0), ("batch_size", 2.5), ("embedding_dim", -1), ("frequency", 0),
    ("max_train_batches", 0), ("graph_mix", 0.0), ("graph_mix", 1.5), ("graph_steps", -1),
    ("dropout", 1.0), ("lr", 0.0), ("l2", -1e-6), ("score_scale", -1.0), ("lr_decay", 0.0),
    ("lr_decay", 1.5), ("lr_decay_every", 0), ("refit_epochs", -1), ("refit_epochs", 2.0),
    ("num_blocks", -1), ("num_heads", 3), ("decay", -0.5), ("decay", float("nan")),
    ("lr", float("nan")), ("lr", float("inf")), ("l2", float("nan")), ("dropout", float("nan")),
    ("graph_mix", float("nan")), ("score_scale", float("nan")), ("lr_decay", float("nan")),
])
def test_bad_values_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_defaults_are_paper_faithful_and_round_trip():
    config = TrainConfig()
    assert config.scoring_precision == "float32"
    assert config.graph_writeback == "replace" and config.graph_mix == 1.0
    assert config.refit_epochs == 0 and config.max_epochs == config.epochs  # validated
    assert TrainConfig(epochs=10, refit_epochs=4).max_epochs == 4
    assert TrainConfig(**config.to_dict()) == config
    mixed = TrainConfig(scoring_precision="bfloat16")
    assert TrainConfig(**mixed.to_dict()).scoring_precision == "bfloat16"


def test_learning_rate_schedule():
    assert [TrainConfig(lr=0.01).learning_rate(epoch) for epoch in range(4)] == [0.01] * 4
    config = TrainConfig(lr=0.01, lr_decay=0.5, lr_decay_every=2)
    np.testing.assert_allclose([config.learning_rate(epoch) for epoch in range(6)],
                               [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])

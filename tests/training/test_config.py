"""TrainConfig, TrainerConfig and MTDConfig: every bad value is refused with a message naming
the field; variants are presets of the two encoders; flat records round-trip."""

import numpy as np
import pytest

from mtd_tf.errors import ConfigError
from mtd_tf.models.mtd_config import MTDConfig
from mtd_tf.training.config import TrainConfig
from mtd_tf.training.config import TrainerConfig
from mtd_tf.training.config import changed_settings


@pytest.mark.parametrize("field, value", [
    ("variant", "big"), ("graph_writeback", "merge"), ("scoring_precision", "float16"),
    ("epochs", 0), ("batch_size", 2.5), ("embedding_dim", -1), ("frequency", 0),
    ("max_train_batches", 0), ("graph_mix", 0.0), ("graph_mix", 1.5), ("graph_steps", -1),
    ("dropout", 1.0), ("lr", 0.0), ("l2", -1e-6), ("score_scale", -1.0), ("lr_decay", 0.0),
    ("lr_decay", 1.5), ("lr_decay_every", 0), ("refit_epochs", -1), ("refit_epochs", 2.0),
    ("num_blocks", -1), ("num_heads", 3), ("decay", -0.5), ("decay", float("nan")),
    ("lr", float("nan")), ("lr", float("inf")), ("l2", float("nan")), ("dropout", float("nan")),
    ("graph_mix", float("nan")), ("score_scale", float("nan")), ("lr_decay", float("nan")),
    ("session_encoder", "rnn"), ("graph_encoder", "gin"), ("gcn_layers", 0),
])
def test_bad_values_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig.from_settings(**{field: value})


def test_unknown_settings_are_refused():
    with pytest.raises(ConfigError, match="unknown setting 'embeding_dim'"):
        TrainConfig.from_settings(embeding_dim=10)


def test_defaults_are_paper_faithful_and_round_trip():
    config = TrainConfig.from_settings()
    assert config.trainer.scoring_precision == "float32"
    assert config.model.graph_writeback == "replace" and config.model.graph_mix == 1.0
    assert (config.model.variant, config.model.session_encoder, config.model.graph_encoder) == (
        "mtd", "self_attention", "gcn")
    assert config.trainer.model_dir == "runs/synthetic_mtd"
    assert config.trainer.refit_epochs == 0
    assert config.trainer.max_epochs == config.trainer.epochs  # validated
    assert TrainerConfig(epochs=10, refit_epochs=4).max_epochs == 4
    assert TrainConfig.from_settings(**config.to_dict()) == config
    mixed = TrainConfig.from_settings(scoring_precision="bfloat16")
    assert TrainConfig.from_settings(**mixed.to_dict()).trainer.scoring_precision == "bfloat16"
    assert config.replace(lr=0.5).trainer.lr == 0.5 and config.trainer.lr == 1e-3


def test_learning_rate_schedule():
    assert [TrainerConfig(lr=0.01).learning_rate(epoch) for epoch in range(4)] == [0.01] * 4
    config = TrainConfig.from_settings(lr=0.01, lr_decay=0.5, lr_decay_every=2)
    np.testing.assert_allclose([config.trainer.learning_rate(epoch) for epoch in range(6)],
                               [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])


@pytest.mark.parametrize("variant, session_encoder, graph_encoder, uses_graph", [
    ("mtd", "self_attention", "gcn", True), ("lo", "self_attention", "none", False),
    ("va", "vanilla", "gcn", True), ("at", "vanilla_decay", "gcn", True),
    ("ga", "self_attention", "gat", True),
])
def test_variants_are_presets_of_the_two_encoders(variant, session_encoder, graph_encoder,
                                                   uses_graph):
    config = TrainConfig.from_settings(variant=variant)
    assert (config.model.session_encoder, config.model.graph_encoder) == (
        session_encoder, graph_encoder)
    assert config.uses_graph == uses_graph
    # The same pair given as encoders is the same variant.
    spelled = MTDConfig(session_encoder=session_encoder, graph_encoder=graph_encoder)
    assert spelled.variant == variant


def test_an_encoder_overrides_the_variant_and_renames_it():
    assert MTDConfig(variant="mtd", graph_encoder="gat").variant == "ga"
    custom = MTDConfig(variant="va", graph_encoder="gat")
    assert (custom.variant, custom.session_encoder, custom.graph_encoder) == (
        "custom", "vanilla", "gat")
    assert MTDConfig(**{"variant": "custom", "session_encoder": "vanilla",
                        "graph_encoder": "gat"}) == custom
    with pytest.raises(ConfigError, match="variant=custom needs both"):
        MTDConfig(variant="custom", session_encoder="vanilla")
    assert not TrainConfig.from_settings(graph_steps=0).uses_graph


def test_records_written_before_the_encoders_existed_are_completed_from_the_variant():
    wanted = TrainConfig.from_settings(variant="va").to_dict()
    old_record = {key: value for key, value in wanted.items()
                  if key not in ("session_encoder", "graph_encoder", "aggregation_product")}
    assert changed_settings(old_record, wanted) == []
    assert changed_settings(dict(old_record, variant="at"), wanted) == [
        "session_encoder", "variant"]

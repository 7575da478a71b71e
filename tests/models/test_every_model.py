"""Every comparison model through the unchanged job: it trains well past popularity,
resumes, logs, exports a SavedModel that serves its test ranking in a fresh process, and
is chosen and configured by `--model` alone (each model's numerics are tested in its own
file against NumPy)."""

import os

import numpy as np
import pytest

from mtd_tf import metrics
from mtd_tf.baselines.pop import Pop
from mtd_tf.data import registry
from mtd_tf.errors import ConfigError
from mtd_tf.models.registry import MODEL_CONFIGS
from mtd_tf.serving import evaluation
from mtd_tf.serving import export
from mtd_tf.training.config import TrainConfig
from tests import helpers

COMPARISON_MODELS = sorted(name for name in MODEL_CONFIGS if name != "mtd")
DATASET = "synth"
# The synthetic process at 2,000 items: transitions carry most of the signal, popularity
# little (POP P@20 near 9%), and three epochs take seconds.
NUM_ITEMS, NUM_SESSIONS = 2000, 8000
SESSIONS_TO_SERVE = [[3, 4, 5, 0], [7, 0, 0, 0], [0, 0, 0, 0], [10, 11, 12, 13]]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return helpers.write_tiny_dataset(tmp_path_factory.mktemp("data"), name=DATASET,
                                      num_items=NUM_ITEMS, num_sessions=NUM_SESSIONS)


@pytest.fixture(scope="module")
def pop_p20(data_dir):
    dataset = registry.load_dataset(DATASET, data_dir)
    ranking = metrics.RankingMetrics(ks=(20,))
    ranking.update(metrics.target_ranks(Pop(dataset.train, dataset.num_items).score(
        dataset.test_prefixes), dataset.test_targets))
    return ranking.result()["P@20"]


# A step of 1e-2 makes three epochs enough; SASRec's dropout of 0.5 needs a smaller one
# (measured P@20 10 at 1e-2, 48 at 3e-3, POP 9).
LEARNING_RATES = {"sasrec": 3e-3}
# Banks of recent sessions sized for 2,000 items: the defaults (10,000 and 4,096 sessions)
# cost half a minute per run here and test nothing more.
SMALL_BANKS = {"csrm": dict(memory_size=512, num_neighbors=64), "cosan": dict(memory_size=512)}


def model_config(data_dir, model_dir, name, **overrides):
    return TrainConfig.from_settings(**{
        **dict(dataset=DATASET, data_dir=data_dir, model_dir=str(model_dir), model=name,
               epochs=3, batch_size=128, embedding_dim=32, lr=LEARNING_RATES.get(name, 1e-2),
               seed=0),
        **SMALL_BANKS.get(name, {}), **overrides})


@pytest.fixture(scope="module", params=COMPARISON_MODELS)
def finished(request, data_dir, tmp_path_factory):
    """(config, report) of a three-epoch run of one comparison model."""
    config = model_config(data_dir, tmp_path_factory.mktemp(request.param) / "run",
                          request.param)
    return config, helpers.train_and_evaluate(config)


@pytest.mark.slow
def test_three_epochs_beat_popularity_by_far(finished, pop_p20):
    config, report = finished
    assert report["model"] == config.trainer.model == report["variant"]
    assert 3.0 < pop_p20 < 20.0
    assert report["test"]["P@20"] >= 3 * pop_p20, (report["test"], pop_p20)
    assert os.listdir(os.path.join(config.trainer.model_dir, "logs"))  # TensorBoard


@pytest.mark.slow
def test_a_finished_run_resumes_to_the_same_report(finished):
    config, report = finished
    again = helpers.train_and_evaluate(config)
    assert again["test"] == report["test"] and again["epochs_run"] == report["epochs_run"]


@pytest.mark.slow
def test_the_export_serves_the_test_ranking_in_a_fresh_process(finished, data_dir):
    config, report = finished
    export_dir = os.path.join(config.trainer.model_dir, "export")
    recommender = export.load_export(export_dir)
    dataset = registry.load_dataset(DATASET, data_dir)
    served = evaluation.evaluate_export(recommender, dataset, batch_size=512)["test"]
    assert served["P@20"] == pytest.approx(report["test"]["P@20"], abs=1e-6)
    assert served["MRR@20"] == pytest.approx(report["test"]["MRR@20"], abs=1e-6)
    fresh = helpers.serve_in_fresh_process(export_dir, SESSIONS_TO_SERVE)
    here = recommender.recommend(np.array(SESSIONS_TO_SERVE, np.int64))
    assert fresh["mtd_tf_imported"] is False
    np.testing.assert_array_equal(fresh["top_items"], here[0])
    np.testing.assert_allclose(fresh["scores"], here[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", COMPARISON_MODELS)
def test_each_model_is_chosen_by_name_with_its_own_settings(name, tmp_path):
    config = model_config(str(tmp_path), tmp_path / "run", name)
    assert type(config.model) is MODEL_CONFIGS[name] and config.model.variant == name
    assert TrainConfig.from_settings(**config.to_dict()) == config
    default_dir = config.replace(model_dir=None).trainer.model_dir
    assert default_dir == os.path.join("runs", f"{DATASET}_{name}")
    with pytest.raises(ConfigError, match=f"--decay is not a setting of --model={name}"):
        config.replace(decay=0.5)  # MTD's alone
    back = config.replace(model="mtd")  # another model starts from its own defaults
    assert back.model.variant == "mtd" and back.model.embedding_dim == 100


@pytest.mark.parametrize("settings", [{}, {"score_scale": 8.0}], ids=["dot", "scaled_cosine"])
@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_candidate_rows_are_the_rows_of_the_candidate_table(name, settings):
    """What a sampled-softmax step reads row by row is what the full table holds (GRU4Rec
    with its bias column too)."""
    extra = {"output_bias": True} if name == "gru4rec" else {}
    model = MODEL_CONFIGS[name](embedding_dim=16, **settings, **extra).build(50)
    ids = np.array([[1, 50, 7], [7, 7, 3]], np.int32)
    np.testing.assert_allclose(model.candidate_rows(ids).numpy(),
                               model.candidate_vectors().numpy()[ids - 1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("from_scores", [False, True])
@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_every_model_takes_the_repeat_head_and_keeps_it_through_its_config(name, from_scores):
    """The head's log-probabilities are a distribution over the M items for any model, a
    prefix's items gain where it repeats, and the model's config carries the head."""
    model = MODEL_CONFIGS[name](embedding_dim=16, repeat_head=True,
                                repeat_from_scores=from_scores, **SMALL_BANKS.get(name, {}))
    model = model.build(50)
    ids = np.array([[4, 9, 4, 0], [7, 0, 0, 0], [0, 0, 0, 0]], np.int32)
    log_p = model(ids).numpy()
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-5)
    revived = type(model).from_config(model.get_config())
    assert revived.repeat_head is not None and revived.repeat_head.from_scores is from_scores


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_every_model_takes_the_ranking_time_prior_and_keeps_it_through_its_config(name):
    """The prior reaches each model from its config, leaves the model's own scores alone
    (training never sees it) and survives `get_config`."""
    prior = {"repeat_bonus": 1.5, "repeat_count_bonus": 0.5, "repeat_recency_bonus": -0.25,
             "repeat_lift_limit": 2}
    model = MODEL_CONFIGS[name](embedding_dim=16, **prior,
                                **SMALL_BANKS.get(name, {})).build(50)
    plain = MODEL_CONFIGS[name](embedding_dim=16, **SMALL_BANKS.get(name, {})).build(50)
    plain.set_weights(model.get_weights())
    ids = np.array([[4, 9, 4, 0], [7, 0, 0, 0]], np.int32)
    np.testing.assert_allclose(model(ids).numpy(), plain(ids).numpy(), rtol=1e-6, atol=1e-6)
    revived = type(model).from_config(model.get_config())
    assert revived.repeat_prior.as_settings() == prior and plain.repeat_prior is None


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_repeat_from_scores_without_the_head_is_refused(name, tmp_path):
    with pytest.raises(ConfigError, match="repeat_from_scores needs repeat_head"):
        model_config(str(tmp_path), tmp_path / "run", name, repeat_from_scores=True)

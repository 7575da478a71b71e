"""The ranking-time prior on the session's own items: its features and bonuses against
NumPy loops (padding, repeated items, slices of the catalogue), the lists retrieval, a
training run and the export serve with it, the search's ranks against the served ones,
and the CLI that chooses it."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtd_tf import metrics
from mtd_tf.data import registry
from mtd_tf.errors import ConfigError
from mtd_tf.errors import MTDError
from mtd_tf.models.mtd import MTDModel
from mtd_tf.models.registry import MODEL_CONFIGS
from mtd_tf.serving import evaluation
from mtd_tf.serving import export
from mtd_tf.serving import repeat_prior_search
from mtd_tf.serving import repeat_prior_tuning
from mtd_tf.serving import trained_run
from mtd_tf.serving.repeat_prior import RepeatPrior
from mtd_tf.serving.repeat_prior import add_repeat_prior
from mtd_tf.serving.repeat_prior import prefix_features
from mtd_tf.serving.retrieval import TopKRetrieval
from tests import helpers

NUM_ITEMS, DIM, MAX_LEN = 30, 8, 8
PRIOR = RepeatPrior(bonus=0.7, count_bonus=0.4, recency_bonus=-0.3)
LIMITED = RepeatPrior(bonus=0.7, count_bonus=0.4, recency_bonus=-0.3, lift_limit=2)


def prefixes(rng, batch=16, length=MAX_LEN):
    """Right-padded prefixes over few items (so items repeat), one of them empty."""
    ids = rng.integers(1, 9, size=(batch, length)).astype(np.int32)
    ids[np.arange(length)[None, :] >= rng.integers(1, length + 1, size=batch)[:, None]] = 0
    ids[3] = 0
    return ids


def numpy_bonuses(ids, prior, item_scores=None):
    """{(row, item): bonus}: a plain loop over each prefix's distinct items; with a lift
    limit, only the limit's number of them with the highest item_scores[row, item] plus
    bonus (equal ones: the earlier last click first) keep theirs."""
    bonuses = {}
    for row, prefix in enumerate(ids):
        real = [int(item) for item in prefix if item > 0]
        lifted = []
        for item in set(real):
            last = max(position for position, other in enumerate(real) if other == item)
            bonus = (prior.bonus + prior.count_bonus * np.log(real.count(item))
                     + prior.recency_bonus * np.log1p(len(real) - 1 - last))
            bonuses[row, item] = bonus
            if prior.lift_limit:
                lifted.append((-(item_scores[row, item] + bonus), last, item))
        for _, _, item in sorted(lifted)[prior.lift_limit:]:
            del bonuses[row, item]
    return bonuses


def test_prefix_features_against_a_loop():
    ids = prefixes(np.random.default_rng(0))
    last, log_count, log_later = (value.numpy() for value in prefix_features(ids))
    for row, prefix in enumerate(ids):
        length = int((prefix > 0).sum())
        for position in range(ids.shape[1]):
            item = prefix[position]
            if position >= length:
                assert not last[row, position]
                continue
            assert last[row, position] == (item not in prefix[position + 1:length])
            np.testing.assert_allclose(log_count[row, position],
                                       np.log(np.sum(prefix[:length] == item)), atol=1e-6)
            np.testing.assert_allclose(log_later[row, position],
                                       np.log1p(length - 1 - position), atol=1e-6)


@pytest.mark.parametrize("prior", [PRIOR, LIMITED])
@pytest.mark.parametrize("first_item,width", [(1, NUM_ITEMS), (1, 5), (4, 3), (20, 11)])
def test_bonuses_land_once_on_each_prefix_item_of_the_slice(first_item, width, prior):
    """A lift limit chooses by each item's score over the whole catalogue, whichever
    slice is scored."""
    rng = np.random.default_rng(1)
    ids = prefixes(rng)
    item_scores = rng.normal(size=(len(ids), NUM_ITEMS + 1)).astype(np.float32)
    scores = rng.normal(size=(len(ids), width)).astype(np.float32)
    expected = scores.copy()
    for (row, item), bonus in numpy_bonuses(ids, prior, item_scores).items():
        if first_item <= item < first_item + width:
            expected[row, item - first_item] += bonus
    prefix_scores = np.take_along_axis(item_scores, ids, axis=1)
    got = add_repeat_prior(tf.constant(scores), tf.constant(ids), first_item, prior,
                           tf.constant(prefix_scores)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_lift_limit_keeps_the_items_of_highest_lifted_score():
    """Items 1, 2, 3 once each, scores 0, 3, 1 and bonus 1: a limit of 2 lifts items 2 and
    3; equal lifted scores keep the earlier item."""
    ids = tf.constant([[1, 2, 3]])
    prior = RepeatPrior(bonus=1.0, lift_limit=2)
    lifted = add_repeat_prior(tf.zeros((1, 3)), ids, 1, prior, tf.constant([[0.0, 3.0, 1.0]]))
    np.testing.assert_array_equal(lifted.numpy(), [[0.0, 1.0, 1.0]])
    tie = add_repeat_prior(tf.zeros((1, 3)), ids, 1, RepeatPrior(bonus=1.0, lift_limit=1),
                           tf.zeros((1, 3)))
    np.testing.assert_array_equal(tie.numpy(), [[1.0, 0.0, 0.0]])


def prior_model(prior=None, seed=0, repeat_head=False):
    keras.utils.set_random_seed(seed)
    model = MTDModel(num_items=NUM_ITEMS, embedding_dim=DIM, max_len=MAX_LEN, dropout=0.0,
                     repeat_head=repeat_head, **(prior or RepeatPrior()).as_settings())
    model.build()
    return model


def with_prior(model, prior):
    """A copy of `model`'s weights (and head, if any) under `prior`."""
    other = prior_model(prior, repeat_head=model.repeat_head is not None)
    other.set_weights(model.get_weights())
    return other


@pytest.mark.parametrize("prior", [PRIOR, LIMITED])
@pytest.mark.parametrize("chunk_items", [7, NUM_ITEMS])
@pytest.mark.parametrize("repeat_head", [False, True])
def test_retrieval_ranks_the_models_scores_plus_the_prior(chunk_items, repeat_head, prior):
    """With a repeat head, the model's scores are its mixture's log-probabilities."""
    rng = np.random.default_rng(2)
    plain = prior_model(repeat_head=repeat_head)
    model = with_prior(plain, prior)
    assert plain.repeat_prior is None and model.repeat_prior == prior
    popularity = rng.permutation(NUM_ITEMS).astype(np.float32)
    ids = prefixes(rng)
    targets = rng.integers(1, NUM_ITEMS + 1, size=len(ids)).astype(np.int32)
    targets[:4] = ids[:4, 0]  # repeats (row 3's prefix is empty: a padding target)
    expected = plain(ids, training=False).numpy()
    item_scores = np.pad(expected, ((0, 0), (1, 0)))  # column = item id
    for (row, item), bonus in numpy_bonuses(ids, prior, item_scores).items():
        expected[row, item - 1] += bonus
    expected[3] = popularity  # no item: popularity, no prior
    retrieval = TopKRetrieval(model, popularity, chunk_items=chunk_items)
    np.testing.assert_array_equal(retrieval.target_ranks(ids, targets).numpy(),
                                  metrics.target_ranks(expected, targets))
    items, _ = retrieval.top_k(ids, 5)
    np.testing.assert_array_equal(items.numpy(),
                                  np.argsort(-expected, axis=1, kind="stable")[:, :5] + 1)


@pytest.mark.parametrize("repeat_head", [False, True])
def test_prior_config_round_trips(repeat_head):
    model = prior_model(LIMITED, repeat_head=repeat_head)
    config = model.get_config()
    assert {name: config[name] for name in LIMITED.as_settings()} == LIMITED.as_settings()
    again = MTDModel.from_config(config)
    assert again.repeat_prior == LIMITED and (again.repeat_head is not None) == repeat_head
    assert prior_model().get_config()["repeat_bonus"] == 0.0
    assert RepeatPrior.from_settings(LIMITED.as_settings()) == LIMITED


def test_prior_settings_are_checked():
    assert MODEL_CONFIGS["sasrec"](repeat_head=True, repeat_bonus=1.0).repeat_bonus == 1.0
    with pytest.raises(ConfigError, match="repeat_recency_bonus"):
        MODEL_CONFIGS["narm"](repeat_recency_bonus=float("nan"))
    with pytest.raises(ConfigError, match="repeat_lift_limit"):
        MODEL_CONFIGS["stamp"](repeat_lift_limit=-1)
    # A limit alone moves no score: no prior to apply or to choose again.
    assert prior_model(RepeatPrior(lift_limit=3)).repeat_prior is None


@pytest.mark.parametrize("repeat_head,prior", [(False, LIMITED), (True, PRIOR)])
def test_export_serves_the_prior_in_a_fresh_process(tmp_path, repeat_head, prior):
    rng = np.random.default_rng(3)
    model = with_prior(prior_model(repeat_head=repeat_head), prior)
    popularity = rng.permutation(NUM_ITEMS).astype(np.float32)
    ids = prefixes(rng)
    ids[3, 0] = 5  # every served session has an item
    expected, _ = TopKRetrieval(model, popularity).top_k(ids, 6)
    export_dir = export.export_saved_model(model, str(tmp_path / "export"), top_k=6,
                                           item_popularity=popularity)
    served = helpers.serve_in_fresh_process(export_dir, ids.astype(np.int64).tolist())
    np.testing.assert_array_equal(served["top_items"], expected.numpy())


@pytest.mark.parametrize("repeat_head", [False, True])
def test_search_ranks_are_the_served_ranks_up_to_the_cut_off(repeat_head):
    rng = np.random.default_rng(4)
    plain = prior_model(repeat_head=repeat_head)
    popularity = np.ones(NUM_ITEMS, np.float32)
    ids = prefixes(rng, batch=64)
    ids[3, 0] = 2
    targets = rng.integers(1, NUM_ITEMS + 1, size=len(ids)).astype(np.int32)
    targets[::3] = ids[::3, 0]
    pairs = repeat_prior_search.score_pairs(TopKRetrieval(plain, popularity), ids, targets,
                                            batch_size=10)
    unit = repeat_prior_search.score_unit(pairs)
    for prior in (RepeatPrior(), PRIOR, RepeatPrior(3 * unit, unit, -unit),
                  RepeatPrior(-unit, 0.0, 0.0), RepeatPrior(3 * unit, unit, -unit, 2),
                  RepeatPrior(0.5 * unit, 0.0, 0.0, 1)):
        served = TopKRetrieval(with_prior(plain, prior), popularity).target_ranks(ids, targets)
        np.testing.assert_array_equal(
            repeat_prior_search.prior_ranks(pairs, prior),
            np.minimum(served.numpy(), repeat_prior_search.TOP_MARGIN))


def test_search_keeps_no_prior_when_none_does_better():
    """A new target ranked first above its prefix's one item: any bonus either changes
    nothing or puts that item first, so the tie goes to no prior."""
    one = np.ones((1, 1), bool)
    pairs = repeat_prior_search.PairScores(
        target_scores=np.array([2.0], np.float32),
        top_scores=np.array([[2.0, 1.0, 0.5]], np.float32),
        top_in_prefix=np.array([[False, True, False]]),
        top_is_target=np.array([[True, False, False]]),
        prefix_scores=np.array([[1.0]], np.float32), last=one,
        log_count=np.zeros((1, 1), np.float32), log_later=np.zeros((1, 1), np.float32),
        is_target=~one, repeat=np.array([False]))
    prior, report = repeat_prior_search.choose(pairs)
    assert not prior.active and report["score_unit"] == 1.0
    assert report["with"]["metrics"] == report["without"]["metrics"]
    assert report["without"]["metrics"]["MRR@20"] == 100.0
    assert report["grid_points"] == len(repeat_prior_search.grid(1.0))


def two_pairs_where_a_bonus_trades_p20_for_mrr():
    """A repeat target second behind a new item (gap 0.1), and a new target 20th with its
    prefix's one item 21st (gap 0.05): every bonus that lifts the first pair's item to
    the top also lifts the second pair's item past its target."""
    top_repeat = np.array([1.0, 0.9] + [0.8 - 0.01 * i for i in range(20)], np.float32)
    top_new = np.array([20.0 - i for i in range(20)] + [0.95, 0.5], np.float32)
    flags = np.zeros((2, 22), bool)
    in_prefix, is_target = flags.copy(), flags.copy()
    in_prefix[0, 1], is_target[0, 1] = True, True
    in_prefix[1, 20], is_target[1, 19] = True, True
    one = np.ones((2, 1), bool)
    return repeat_prior_search.PairScores(
        target_scores=np.array([0.9, 1.0], np.float32),
        top_scores=np.stack([top_repeat, top_new]), top_in_prefix=in_prefix,
        top_is_target=is_target, prefix_scores=np.array([[0.9], [0.95]], np.float32),
        last=one, log_count=np.zeros((2, 1), np.float32),
        log_later=np.zeros((2, 1), np.float32), is_target=np.array([[True], [False]]),
        repeat=np.array([True, False]))


def test_search_keeps_the_metrics_it_may_not_lower():
    pairs = two_pairs_where_a_bonus_trades_p20_for_mrr()
    prior, report = repeat_prior_search.choose(pairs)
    # Ranks 2 and 20 without a prior, 1 and 21 with the bonus: MRR@20 (0.5 + 0.05) / 2 up
    # to (1 + 0) / 2, P@20 down from 1 to 1/2.
    assert prior.active
    assert report["without"]["metrics"]["MRR@20"] == pytest.approx(27.5)
    assert report["with"]["metrics"]["MRR@20"] == pytest.approx(50.0)
    assert report["with"]["metrics"]["P@20"] == pytest.approx(50.0)
    kept, report = repeat_prior_search.choose(pairs, no_loss_on=("P@20",))
    assert not kept.active and report["no_loss_on"] == ["P@20"]
    assert report["with"]["metrics"] == report["without"]["metrics"]
    with pytest.raises(ValueError, match="not a reported metric: P@30"):
        repeat_prior_search.choose(pairs, no_loss_on=("P@30",))


@pytest.mark.parametrize("settings, message", [
    ({"refit_epochs": 2}, "a refit has no validation split to choose the prior on: pass its "
                          "selection run as --model_dir and the refit as --export_from"),
    ({"repeat_bonus": 1.0}, "the run already has a prior")])
def test_runs_a_prior_cannot_be_chosen_on_are_refused_in_one_line(tmp_path, settings, message):
    config = helpers.tiny_config(tmp_path, tmp_path / "run", model="narm", **settings)
    with pytest.raises(MTDError, match=re.escape(message)):
        repeat_prior_tuning.check_tunable("RUN", config)


def test_a_folder_that_is_not_a_finished_run_is_one_line(tmp_path):
    with pytest.raises(MTDError, match=re.escape(
            f"{tmp_path}: not a finished run (no settings.json); train it with "
            "mtd_tf/main.py first")):
        trained_run.read_config(str(tmp_path))


@pytest.mark.slow
def test_cli_chooses_on_validation_and_exports_the_run_with_the_prior(tmp_path):
    data_dir = helpers.write_tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    helpers.train_and_evaluate(helpers.tiny_config(data_dir, run, model="stamp"))
    out = tmp_path / "served"
    result = helpers.run_python(["-m", "mtd_tf.serving.tune_repeat_prior", f"--model_dir={run}",
                                 f"--export_dir={out}", f"--data_dir={data_dir}"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["with"]["metrics"]["MRR@20"] >= report["without"]["metrics"]["MRR@20"]
    assert set(report["with"]["by_target"]) == {"repeat", "new"}
    # The export serves the run's weights under the chosen prior.
    config = trained_run.read_config(str(run))
    model = trained_run.load_model(str(run), config, helpers.TINY_NUM_ITEMS,
                                   **RepeatPrior.from_settings(report["chosen"]).as_settings())
    ids = prefixes(np.random.default_rng(6))
    ids[3, 0] = 7
    expected, _ = TopKRetrieval(model, np.ones(helpers.TINY_NUM_ITEMS)).top_k(
        ids, config.trainer.export_top_k)
    served, _ = export.load_export(str(out)).recommend(ids)
    np.testing.assert_array_equal(served, expected.numpy())


@pytest.mark.slow
def test_a_run_trained_with_a_prior_tests_and_serves_the_same_lists(tmp_path):
    """The prior inside the compiled rank step (validation, test) gives the ranks the
    export serves."""
    data_dir = helpers.write_tiny_dataset(tmp_path / "data")
    config = helpers.tiny_config(data_dir, tmp_path / "run", model="gru4rec",
                                 repeat_bonus=2.0, repeat_count_bonus=0.5)
    report = helpers.train_and_evaluate(config)
    dataset = registry.load_dataset(helpers.TINY, data_dir)
    served = evaluation.evaluate_export(
        export.load_export(str(tmp_path / "run" / "export")), dataset, batch_size=256)
    for key in ("P@20", "MRR@20"):
        assert served["test"][key] == pytest.approx(report["test"][key], abs=1e-6)
    assert report["flags"]["repeat_bonus"] == 2.0

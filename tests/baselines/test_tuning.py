"""Tuning: the staged grid picks the best validation setting and never reads the test split."""

import dataclasses

import numpy as np
import pytest
from scipy import sparse

from mtd_tf.baselines import methods
from mtd_tf.baselines import tuning
from mtd_tf.baselines.sparse_scorer import SparseScorer
from mtd_tf.data.sessions import SessionDataset
from mtd_tf.data.sessions import Sessions
from mtd_tf.errors import ConfigError

NUM_ITEMS = 30


@dataclasses.dataclass(frozen=True)
class FavouriteSettings:
    favourite: int = 1
    bonus: float = 0.0


class Favourite(SparseScorer):
    """Scores one item (`favourite`) for every prefix; records every prefix it scores."""

    Settings = FavouriteSettings
    TUNING_GRID = ({"favourite": (1, 2, 3, 4)}, {"bonus": (0.0, 1.0)})
    log = []

    def __init__(self, train, num_items, setting=None):
        self.setting = setting or FavouriteSettings()
        self.num_items = num_items
        self.popularity = np.zeros(num_items)
        self.log.append(("fit", len(train)))

    def sparse_scores(self, prefixes):
        self.log.append(("score", prefixes.to_lists()))
        rows = np.arange(len(prefixes))
        return sparse.csr_matrix((np.full(len(prefixes), 1.0 + self.setting.bonus),
                                  (rows, np.full(len(prefixes), self.setting.favourite - 1))),
                                 shape=(len(prefixes), self.num_items))


class SpiedDataset(SessionDataset):
    """A dataset that logs each read of its test split."""

    @property
    def test_prefixes(self):
        Favourite.log.append(("read test", None))
        return self._test_prefixes

    @property
    def test_targets(self):
        Favourite.log.append(("read test", None))
        return self._test_targets


def spied_dataset():
    # 90 fit sessions, 10 validation sessions [5, 3, 3]: validation targets 3, 3.
    # Test targets are all 2, so a tuner that peeked would pick favourite 2.
    train = Sessions.from_lists([[1, 2]] * 90 + [[5, 3, 3]] * 10)
    dataset = object.__new__(SpiedDataset)
    object.__setattr__(dataset, "name", "spied")
    object.__setattr__(dataset, "train", train)
    object.__setattr__(dataset, "num_items", NUM_ITEMS)
    object.__setattr__(dataset, "_test_prefixes", Sessions.from_lists([[1]] * 7))
    object.__setattr__(dataset, "_test_targets", np.full(7, 2))
    return dataset


def test_picks_the_best_validation_setting_and_tests_it_once(monkeypatch):
    monkeypatch.setitem(methods.METHODS, "favourite", Favourite)
    monkeypatch.setattr(Favourite, "log", [])
    setting, trials, test = methods.tune_and_evaluate("favourite", spied_dataset(),
                                                      metric="MRR@20")
    assert setting == FavouriteSettings(favourite=3, bonus=0.0)
    # Stage 1: favourites 1..4 (bonus 0); stage 2: bonus 1 with favourite 3 (a tie: the
    # first tried stays).
    assert [trial["setting"] for trial in trials] == [
        {"favourite": 1, "bonus": 0.0}, {"favourite": 2, "bonus": 0.0},
        {"favourite": 3, "bonus": 0.0}, {"favourite": 4, "bonus": 0.0},
        {"favourite": 3, "bonus": 1.0}]
    # Item 3 first: rank 1; others: item 3 ties with the rest at 0 behind the favourite: 2.
    assert [trial["valid"]["MRR@20"] for trial in trials] == [50.0, 50.0, 100.0, 50.0, 100.0]
    assert test["P@5"] == 100.0 and test["MRR@5"] == 50.0
    log = Favourite.log
    first_test_read = log.index(("read test", None))
    validation = tuning.validation_split(spied_dataset().train, 1)[1].to_lists()
    scored_before = [entry for kind, entry in log[:first_test_read] if kind == "score"]
    assert len(scored_before) == 5 and all(entry == validation for entry in scored_before)
    # Every fit but the last uses the 90 fit sessions; the last, on all 100, comes after the
    # last validation score, and only the test prefixes are scored after it.
    fits = [index for index, (kind, _) in enumerate(log) if kind == "fit"]
    assert [log[index][1] for index in fits] == [90] * 5 + [100]
    assert all(kind != "score" or entry == validation for kind, entry in log[:fits[-1]])
    assert [entry for kind, entry in log[fits[-1]:] if kind == "score"] == [[[1]] * 7]


def test_fixed_settings_are_not_searched(monkeypatch):
    monkeypatch.setattr(Favourite, "log", [])
    setting, trials = tuning.tune(Favourite, spied_dataset().train, NUM_ITEMS, 1,
                                  fixed={"favourite": 2}, metric="MRR@20")
    assert setting.favourite == 2
    assert [trial["setting"]["favourite"] for trial in trials] == [2, 2]


def test_validation_pairs_respect_the_minimum_prefix_length():
    train = Sessions.from_lists([[1, 2]] * 9 + [[4, 5, 6, 7]])
    fit, prefixes, targets = tuning.validation_split(train, min_prefix_len=2)
    assert len(fit) == 9
    assert prefixes.to_lists() == [[4, 5, 6], [4, 5]] and targets.tolist() == [7, 6]


def test_methods_without_settings_cannot_be_tuned():
    with pytest.raises(ConfigError, match="pop has no settings"):
        methods.tune_and_evaluate("pop", spied_dataset())

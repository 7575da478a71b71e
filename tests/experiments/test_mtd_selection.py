"""Table 2 picks `mtd` among its candidates on validation, never on test."""

from experiments import mtd_selection
from experiments.common import Cell

DEFAULT = Cell("d", "mtd")
SCALED = Cell("d", "mtd", (("score_scale", 16.0),))
PENDING = Cell("d", "mtd", (("embedding_dim", 150),))
REFIT = Cell("d", "mtd", (("refit_epochs", 4),))
POP = Cell("d", "pop")


def record(valid_p20, test_p20):
    return {"valid": {"P@20": valid_p20, "MRR@20": valid_p20 / 3},
            "test": {"P@20": test_p20}, "best_epoch": 4}


def test_the_best_validation_candidate_is_reported_though_another_tests_higher():
    records = {DEFAULT: record(70.0, 60.0), SCALED: record(69.0, 65.0), PENDING: None,
               POP: {"test": {"P@20": 7.0}}, REFIT: {"test": {"P@20": 62.0}}}
    view, selection = mtd_selection.dataset_view([POP, DEFAULT, SCALED, PENDING, REFIT], records)
    assert selection["mtd"]["chosen"] == DEFAULT.name
    assert view == {"pop": {"P@20": 7.0}, "mtd": {"P@20": 60.0}, "mtd_refit": {"P@20": 62.0}}
    assert selection["mtd"]["candidates"] == {
        DEFAULT.name: {"P@20": 70.0, "MRR@20": 70.0 / 3},
        SCALED.name: {"P@20": 69.0, "MRR@20": 23.0}, PENDING.name: None}
    assert selection["mtd"]["refit"] == {"run": REFIT.name, "epochs": 4}


def test_no_finished_candidate_leaves_mtd_out():
    view, selection = mtd_selection.dataset_view([POP, DEFAULT], {DEFAULT: None, POP: None})
    assert view == {} and selection == {}

"""Table 2 picks `mtd` (and each comparison model) among its candidates on validation,
never on test."""

from experiments import selection
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
    view, chosen = selection.dataset_view([POP, DEFAULT, SCALED, PENDING, REFIT], records)
    assert chosen["mtd"]["chosen"] == DEFAULT.name
    assert view == {"pop": {"P@20": 7.0}, "mtd": {"P@20": 60.0}, "mtd_refit": {"P@20": 62.0}}
    assert chosen["mtd"]["candidates"] == {
        DEFAULT.name: {"P@20": 70.0, "MRR@20": 70.0 / 3},
        SCALED.name: {"P@20": 69.0, "MRR@20": 23.0}, PENDING.name: None}
    assert chosen["mtd"]["refit"] == {"run": REFIT.name, "epochs": 4}


def test_no_finished_candidate_leaves_mtd_out():
    view, chosen = selection.dataset_view([POP, DEFAULT], {DEFAULT: None, POP: None})
    assert view == {} and chosen == {}


def test_a_comparison_model_gets_its_own_chosen_row_and_refit_beside_mtd():
    srgnn_default, srgnn_scaled = Cell("d", "srgnn"), Cell("d", "srgnn", (("score_scale", 16.0),))
    srgnn_refit = Cell("d", "srgnn", (("refit_epochs", 3), ("score_scale", 16.0)))
    records = {DEFAULT: record(70.0, 60.0), srgnn_default: record(66.0, 59.0),
               srgnn_scaled: record(67.0, 58.0), srgnn_refit: {"test": {"P@20": 58.5}}}
    view, chosen = selection.dataset_view([DEFAULT, srgnn_default, srgnn_scaled, srgnn_refit], records)
    assert view == {"mtd": {"P@20": 60.0}, "srgnn": {"P@20": 58.0},
                    "srgnn_refit": {"P@20": 58.5}}
    assert chosen["srgnn"]["chosen"] == srgnn_scaled.name
    assert chosen["srgnn"]["refit"] == {"run": srgnn_refit.name, "epochs": 3}
    assert set(chosen) == {"mtd", "srgnn"}

"""Extrapolating a capped run's epoch to whole session passes (Table 4)."""

import pytest

from experiments import timing


def record(cap, whole=100, rate=0.5, frequency=3, measured=40.0):
    return {"seconds_per_epoch": measured, "train_batches_per_pass": whole,
            "seconds_per_train_batch": rate,
            "config": {"max_train_batches": cap, "frequency": frequency}}


def test_a_capped_run_gets_each_pass_missing_batches_at_its_steady_rate():
    # 3 passes, each 100 - 10 = 90 batches short, at 0.5 s: 135 s on top of the 40 measured.
    assert timing.whole_pass_epoch(record(cap=10)) == (pytest.approx(175.0), 10)


@pytest.mark.parametrize("cap", [None, 0, 100, 250])
def test_a_run_of_whole_passes_keeps_its_measured_epoch(cap):
    assert timing.whole_pass_epoch(record(cap=cap)) == (40.0, None)


@pytest.mark.parametrize("missing", ["train_batches_per_pass", "seconds_per_train_batch"])
def test_a_capped_run_without_the_loops_figures_is_not_extrapolated(missing):
    old = record(cap=10)
    old[missing] = None
    assert timing.whole_pass_epoch(old) == (40.0, None)
    del old[missing]
    assert timing.whole_pass_epoch(old) == (40.0, None)

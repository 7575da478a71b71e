"""Numbers the reports derive from run results, against SciPy references."""

import pytest
from scipy import stats

from experiments import reporting


@pytest.mark.parametrize("percent, count", [(50.95, 60858), (71.66, 55400), (0.5, 300)])
def test_binomial_standard_error_is_the_spread_of_a_hit_rate(percent, count):
    hits = stats.binom(count, percent / 100.0)
    assert reporting.binomial_standard_error(percent, count) == pytest.approx(
        100.0 * hits.std() / count, rel=1e-12)


def test_binomial_standard_error_vanishes_when_every_pair_hits_or_misses():
    assert reporting.binomial_standard_error(100.0, 10) == 0.0
    assert reporting.binomial_standard_error(0.0, 10) == 0.0

"""The tiny synthetic dataset the experiment scripts are tested on."""

import pytest

from tests import helpers
from tests.experiments import scripts


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A data folder holding `scripts.DATASET`; read-only for the tests."""
    return helpers.write_tiny_dataset(
        tmp_path_factory.mktemp("experiments_data"), scripts.DATASET,
        num_items=scripts.TINY_NUM_ITEMS, num_sessions=scripts.TINY_NUM_SESSIONS)

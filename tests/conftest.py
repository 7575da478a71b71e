"""Shared fixtures: where the real data lives, seeded randomness, quiet TensorFlow logs."""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def seeded_randomness():
    """Every test starts from the same Python, NumPy and TensorFlow seeds, so unseeded
    weight initialisers cannot make a test pass on one run and fail on the next."""
    import keras  # not at the top: TF_CPP_MIN_LOG_LEVEL must be set before TensorFlow loads

    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def shared_data_dir():
    """`../shared/data` beside the checkout; tests that need it skip when it is absent."""
    if not (SHARED_DATA_DIR / "yoochoose1_64" / "all_train_seq.txt").is_file():
        pytest.skip(f"real datasets not found at {SHARED_DATA_DIR} (see ../shared/data/README.md)")
    return SHARED_DATA_DIR

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


# The published split files every dataset folder under ../shared/data holds.
SHARED_SPLIT_FILES = ("all_train_seq.txt", "test.txt")


def _require_shared(name):
    """`SHARED_DATA_DIR` if it holds dataset `name` (aliases resolved); else skips the test,
    naming the folder and the files missing from it."""
    from mtd_tf.data import registry  # pylint: disable=import-outside-toplevel

    folder = SHARED_DATA_DIR / registry.canonical_name(name)
    missing = [filename for filename in SHARED_SPLIT_FILES if not (folder / filename).is_file()]
    if missing:
        pytest.skip(f"shared dataset {name!r} not found: {folder} lacks {', '.join(missing)} "
                    f"(see {SHARED_DATA_DIR / 'README.md'})")
    return SHARED_DATA_DIR


@pytest.fixture(name="require_shared", scope="session")
def fixture_require_shared():
    """`require_shared(name)`: the shared data folder, or a skip naming the dataset's missing
    folder; for tests that need one dataset of `../shared/data`, e.g. a parametrised name."""
    return _require_shared


@pytest.fixture(scope="session")
def shared_data_dir():
    """`../shared/data` beside the checkout, holding at least yoochoose1_64; tests that need
    it skip when it is absent. Tests that need another dataset use `require_shared`."""
    return _require_shared("yoochoose1_64")

"""Shared fixtures: where the real data lives, and quiet TensorFlow logs."""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir():
    """`../shared/data` beside the checkout; tests that need it skip when it is absent."""
    if not (SHARED_DATA_DIR / "yoochoose1_64" / "all_train_seq.txt").is_file():
        pytest.skip(f"real datasets not found at {SHARED_DATA_DIR} (see ../shared/data/README.md)")
    return SHARED_DATA_DIR

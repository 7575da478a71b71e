"""Fetches a published split (the two pickles) from the MTD authors' repository, verified.

    python -m mtd_tf.data.download --dataset=NAME --data_dir=DIR [--base_url=URL]

writes DIR/<canonical name>/all_train_seq.txt and test.txt. Each file is streamed to a temp
file beside its destination and renamed into place only once its SHA-256 matches the value
pinned here, so an interrupted or tampered download never leaves a file that a later run
would trust. A file already present with the pinned hash is not fetched again.
"""

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request

from absl import flags
from absl import logging

from mtd_tf import cli
from mtd_tf import io_utils
from mtd_tf.data import formats
from mtd_tf.data import registry
from mtd_tf.errors import ChecksumError
from mtd_tf.errors import MTDError

DEFAULT_BASE_URL = "https://raw.githubusercontent.com/sessionRec/MTD/master/datasets/"

# Canonical dataset name -> folder under `datasets/` in the authors' repository.
REMOTE_FOLDERS = {
    "yoochoose1_64": "yoochoose",
    "diginetica": "diginetica",
    "retailrocket": "retailrocket",
}

# Must equal ../shared/data/SHA256SUMS (a test checks it); pinned in code so that a download
# is verified without trusting anything fetched alongside it.
PINNED_SHA256 = {
    "yoochoose1_64": {
        formats.TRAIN_PICKLE: "756ee734cd520816d3c43ae5af61abafca4a0edef3cdb70a97a3078a1f54134a",
        formats.TEST_PICKLE: "1daea16ae5e6591689cdee0f43ee1bed63497bddad35a0ad78b07e6ad79468f7",
    },
    "diginetica": {
        formats.TRAIN_PICKLE: "55694865221c682aaa9df6cd5a4ddccff5de902334df5605c5767ee464e11365",
        formats.TEST_PICKLE: "74c8d1c1e006c9eb08a49bee5497e74e68e3f9f60c1af3af2f5369c3381a4a7d",
    },
    "retailrocket": {
        formats.TRAIN_PICKLE: "dcb31faa5037c527b516b4d8e3aa6d81b81549e45f4ead3b02ca99c6ecd67181",
        formats.TEST_PICKLE: "16b3c3e6fed4868192ab8eddcf6d4b3545ce3cd3906ab7012e2e5aea35617be5",
    },
}

ALREADY_PRESENT = "already present"
DOWNLOADED = "downloaded"

_CHUNK_BYTES = 1 << 20
_TIMEOUT_SECONDS = 60
_PROGRESS_EVERY_SECONDS = 5


def sha256_of_file(path):
    """Hex SHA-256 of a file, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_url(base_url, remote_folder, filename):
    """URL of one file: base_url + remote_folder + "/" + filename (a missing "/" is added)."""
    if not base_url.endswith("/"):
        base_url += "/"
    return f"{base_url}{remote_folder}/{filename}"


def _stream_to(response, handle, url):
    """Copies the response body into `handle`; returns the SHA-256 of what was written."""
    total = response.headers.get("Content-Length")
    total = int(total) if total is not None else None
    digest = hashlib.sha256()
    done = 0
    for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
        handle.write(chunk)
        digest.update(chunk)
        done += len(chunk)
        logging.log_every_n_seconds(
            logging.INFO, "%s: %d / %s bytes", _PROGRESS_EVERY_SECONDS, url, done,
            total if total is not None else "?")
    if total is not None and done != total:
        raise MTDError(f"cannot download {url}: connection closed after {done} of {total} bytes")
    logging.info("%s: %d bytes received", url, done)
    return digest.hexdigest()


def download_file(url, destination, expected_sha256):
    """Fetches `url` to `destination` unless a file with the expected hash is already there.

    Returns:
      ALREADY_PRESENT or DOWNLOADED.

    Raises:
      ChecksumError: the received bytes do not hash to `expected_sha256` (nothing is kept).
      MTDError: HTTP or network failure, in one line (nothing is kept).
    """
    if os.path.isfile(destination):
        if sha256_of_file(destination) == expected_sha256:
            logging.info("%s: already present", destination)
            return ALREADY_PRESENT
        # Removed first so that a failed download cannot leave an unverified file behind.
        logging.warning("%s: checksum differs from the pinned one; fetching it again",
                        destination)
        os.remove(destination)
    logging.info("fetching %s -> %s", url, destination)
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response:
            # The temp file is removed on any exception, the ChecksumError below included.
            with io_utils.atomic_output_file(destination, "wb") as handle:
                actual_sha256 = _stream_to(response, handle, url)
                if actual_sha256 != expected_sha256:
                    raise ChecksumError(
                        f"{os.path.basename(destination)} from {url}: SHA-256 mismatch, "
                        f"expected {expected_sha256}, got {actual_sha256}")
    except urllib.error.HTTPError as error:
        raise MTDError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise MTDError(f"cannot download {url}: {error.reason}") from None
    except (http.client.HTTPException, OSError) as error:
        raise MTDError(f"cannot download {url}: {type(error).__name__}: {error}") from None
    return DOWNLOADED


def download_dataset(name, data_dir, base_url=DEFAULT_BASE_URL):
    """Fetches both files of a published split into data_dir/<canonical name>/.

    Args:
      name: "yoochoose1_64" (alias "yoochoose"), "diginetica" or "retailrocket".
      data_dir: folder holding dataset folders.
      base_url: where the authors' `datasets/` folder is served.

    Returns:
      {filename: ALREADY_PRESENT or DOWNLOADED}.
    """
    canonical = registry.canonical_name(name)
    if canonical not in REMOTE_FOLDERS:
        raise MTDError(
            f"dataset {name!r} cannot be downloaded; choose one of "
            f"{', '.join(sorted(REMOTE_FOLDERS))} (alias yoochoose -> yoochoose1_64); "
            "'synthetic' is generated locally on first use")
    folder = os.path.join(data_dir, canonical)
    statuses = {}
    for filename, expected_sha256 in PINNED_SHA256[canonical].items():
        url = file_url(base_url, REMOTE_FOLDERS[canonical], filename)
        statuses[filename] = download_file(url, os.path.join(folder, filename), expected_sha256)
    return statuses


def _define_flags():
    cli.define_data_flags()
    flags.DEFINE_string("base_url", DEFAULT_BASE_URL,
                        "URL of the folder holding the authors' dataset folders.")


def main(argv):
    del argv  # Unused.
    data_dir = registry.resolve_data_dir(flags.FLAGS.data_dir)
    statuses = download_dataset(flags.FLAGS.dataset, data_dir, flags.FLAGS.base_url)
    canonical = registry.canonical_name(flags.FLAGS.dataset)
    print(json.dumps({"dataset": canonical, "folder": os.path.join(data_dir, canonical),
                      "files": statuses}))


if __name__ == "__main__":
    _define_flags()
    cli.run_app(main)

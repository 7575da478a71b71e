"""Shared CLI plumbing: a quiet start, common flags and one-line errors for expected failures.

Import it before TensorFlow: TensorFlow's C++ start-up lines (CPU features, CUDA probing,
an `E0000 ... cuInit` error on machines without a GPU, most of them twice) and its INFO
lines about saving would otherwise precede and bury every CLI's own output. They come
back with `--verbosity=1` (or any `--verbosity`/`-v` flag).
"""

import logging as python_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging

from mtd_tf.errors import MTDError

_ASKS_FOR_VERBOSITY = any(arg.startswith(("--verbosity", "-v", "--v="))
                          for arg in sys.argv[1:])
if not _ASKS_FOR_VERBOSITY:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_tensorflow_quietly():
    """Imports TensorFlow with its C++ import-time lines hidden (they are written before its
    log level is read, so TF_CPP_MIN_LOG_LEVEL cannot hide them). For the CLIs that use
    TensorFlow; call it right after importing this module."""
    if _ASKS_FOR_VERBOSITY:
        return
    sys.stderr.flush()
    saved_stderr, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


class _LibraryInfoFilter(python_logging.Filter):
    """Drops INFO and DEBUG records that TensorFlow and Keras log through absl."""

    _LIBRARIES = (f"{os.sep}tensorflow{os.sep}", f"{os.sep}keras{os.sep}")

    def filter(self, record):
        return record.levelno >= python_logging.WARNING or not any(
            library in record.pathname for library in self._LIBRARIES)


def define_data_flags():
    """Defines --dataset, --data_dir and --seed once, whichever CLI module asks first."""
    if "dataset" not in flags.FLAGS:
        flags.DEFINE_string(
            "dataset", "synthetic",
            "Dataset name: a folder under --data_dir (alias yoochoose -> yoochoose1_64), or "
            "'synthetic' to generate the embedded default.")
    if "data_dir" not in flags.FLAGS:
        flags.DEFINE_string(
            "data_dir", None,
            "Folder holding dataset folders. Default: $MTD_DATA_DIR if set, else data/.")
    if "seed" not in flags.FLAGS:
        flags.DEFINE_integer("seed", 0, "Random seed (shuffling, initialisation, and the "
                             "synthetic data when it is generated).")
    show_in_help(__name__)


def show_in_help(module_name):
    """Lists the flags `module_name` defined in the running program's --help.

    absl's --help shows only the key flags of the program run (sys.argv[0]), and a flag is
    key only to the module that defined it, so shared flags would hide in --helpfull.
    """
    for flag in flags.FLAGS.get_key_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run_app(main):
    """Runs an absl `main`; an `MTDError` becomes one stderr line and its exit status (2,
    or 128 + the signal's number for a run stopped by a signal)."""

    def guarded_main(argv):
        if not _ASKS_FOR_VERBOSITY:
            logging.get_absl_handler().addFilter(_LibraryInfoFilter())
            python_logging.getLogger("tensorflow").setLevel(python_logging.WARNING)
        try:
            return main(argv)
        except MTDError as error:
            logging.flush()
            print(f"{error.label}: {error}", file=sys.stderr)
            sys.exit(error.exit_code)

    app.run(guarded_main)

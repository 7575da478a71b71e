"""Shared CLI plumbing: common flags and one-line errors for expected failures."""

import sys

from absl import app
from absl import flags
from absl import logging

from mtd_tf.errors import MTDError


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
    """Runs an absl `main`; an `MTDError` becomes one stderr line and exit status 2."""

    def guarded_main(argv):
        try:
            return main(argv)
        except MTDError as error:
            logging.flush()
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded_main)

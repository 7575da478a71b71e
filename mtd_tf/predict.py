"""Next-item recommendations from an exported model for one session typed on the command line.

`python -m mtd_tf.predict --export_dir=runs/x/export --session="214 7 99"` prints one JSON
line: the session, the top-K item ids (best first) and their scores.
"""

import json

from absl import flags

from mtd_tf import cli
from mtd_tf import export
from mtd_tf.errors import MTDError

flags.DEFINE_string("export_dir", None, "Folder of the SavedModel written by main.py.")
flags.DEFINE_string("session", None, "Item ids of the session, oldest first, space-separated.")
flags.mark_flags_as_required(["export_dir", "session"])
FLAGS = flags.FLAGS


def parse_session(text):
    """'214 7 99' -> [214, 7, 99]; anything but non-negative integers is an error."""
    tokens = text.split()
    if not tokens:
        raise MTDError("--session is empty: give item ids separated by spaces, e.g. '214 7 99'")
    if not all(token.isdigit() for token in tokens):
        raise MTDError(f"--session must hold non-negative integer ids, got {text!r}")
    return [int(token) for token in tokens]


def main(argv):
    del argv
    session = parse_session(FLAGS.session)
    recommender = export.load_export(FLAGS.export_dir)
    top_items, scores = recommender.recommend([session])
    print(json.dumps({"session": session, "top_items": top_items[0].tolist(),
                      "scores": [round(float(s), 6) for s in scores[0]]}))


if __name__ == "__main__":
    cli.run_app(main)

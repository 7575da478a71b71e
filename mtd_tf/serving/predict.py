"""Next-item recommendations from an exported model for one session typed on the command line.

`python -m mtd_tf.serving.predict --export_dir=runs/x/export --session="214 7 99"` prints one JSON
line: the session, the top-K item ids (best first) and their scores. An export trained on a
dataset with an `items.tsv` (`mtd_tf.data.prepare`) takes and returns the click log's own
item ids (any text without spaces); others take the internal ids 1..M.
"""

import json
import re
import sys

from absl import flags

from mtd_tf import cli
from mtd_tf.errors import MTDError

flags.DEFINE_string("export_dir", None, "Folder of the SavedModel written by main.py.")
flags.DEFINE_string("session", None, "Item ids of the session, oldest first, space-separated.")
flags.mark_flags_as_required(["export_dir", "session"])
FLAGS = flags.FLAGS

_ASCII_DIGITS = re.compile(r"[0-9]+")
_INT64_MAX = 2**63 - 1


def parse_session(text):
    """'214 7 99' -> [214, 7, 99]; anything but non-negative integers is an error.

    Only ASCII digits count (`str.isdigit` also accepts '²', which `int` refuses), and an
    id must fit the signature's int64 (ids above M are then ignored by the model).
    """
    tokens = text.split()
    if not tokens:
        raise MTDError("--session is empty: give item ids separated by spaces, e.g. '214 7 99'")
    if not all(_ASCII_DIGITS.fullmatch(token) for token in tokens):
        raise MTDError(f"--session must hold non-negative integer ids, got {text!r}")
    ids = [int(token) for token in tokens]
    too_large = [item for item in ids if item > _INT64_MAX]
    if too_large:
        raise MTDError(f"--session id {too_large[0]} is larger than the largest int64 "
                       f"({_INT64_MAX})")
    return ids


def unknown_ids_note(session, num_items):
    """A warning line when the export will ignore some ids of `session`, else ""."""
    if num_items is None:
        return ""
    unknown = [item for item in session if not 1 <= item <= num_items]
    if not unknown:
        return ""
    note = (f"warning: ids {' '.join(map(str, unknown))} are not among the export's items "
            f"1..{num_items} and are ignored")
    if len(unknown) == len(session):
        note += ("; with no id left, the list is the most popular items and the scores are "
                 "their training counts")
    return note


def main(argv):
    del argv
    if not FLAGS.session.split():
        raise MTDError("--session is empty: give item ids separated by spaces, e.g. '214 7 99'")
    # TensorFlow (seconds to import) only once the session is known to be given.
    cli.import_tensorflow_quietly()
    from mtd_tf.serving import export  # pylint: disable=import-outside-toplevel

    recommender = export.load_export(FLAGS.export_dir)
    if recommender.takes_raw_ids:
        session = FLAGS.session.split()
        top_items, scores = recommender.recommend_raw([session])
        print(json.dumps({"session": session, "top_items": top_items[0].tolist(),
                          "scores": [round(float(s), 6) for s in scores[0]]}))
        return
    session = parse_session(FLAGS.session)
    note = unknown_ids_note(session, recommender.num_items)
    if note:
        print(note, file=sys.stderr)
    top_items, scores = recommender.recommend([session])
    print(json.dumps({"session": session, "top_items": top_items[0].tolist(),
                      "scores": [round(float(s), 6) for s in scores[0]]}))


if __name__ == "__main__":
    cli.run_app(main)

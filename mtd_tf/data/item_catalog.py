"""A prepared dataset's `items.tsv`: the raw item id (as the click log wrote it) of each
internal id 1..M, so that an exported model can take and return the shop's own ids.

Format: the header `item_id<TAB>raw_item_id`, then one line per internal id, in order
1..M. Raw ids are text (an integer id is its decimal string as the log had it).
"""

import os

import numpy as np

from mtd_tf import io_utils
from mtd_tf.errors import DataError

ITEMS_FILE = "items.tsv"
HEADER = "item_id\traw_item_id"


def write_raw_item_ids(folder, raw_item_ids):
    """Writes `folder/items.tsv` atomically; `raw_item_ids[i]` is internal id i + 1."""
    raw = np.asarray(raw_item_ids).astype(str)
    lines = np.char.add(np.arange(1, len(raw) + 1).astype(str), np.char.add("\t", raw))
    io_utils.atomic_write_text(os.path.join(folder, ITEMS_FILE),
                               HEADER + "\n" + "\n".join(lines) + "\n")


def read_raw_item_ids(folder, num_items):
    """The raw ids of items 1..`num_items` from `folder/items.tsv`, or None without one.

    Returns:
      str array [num_items]: entry i is the raw id of internal id i + 1.

    Raises:
      DataError: naming the file and the line: a wrong header, a malformed line, ids not
        1, 2, ... in order, an empty or duplicate raw id, or fewer rows than items.
    """
    path = os.path.join(folder, ITEMS_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines()
    if not lines or lines[0] != HEADER:
        raise DataError(path, f"the first line must be the header {HEADER!r}", record=1)
    raw_ids, first_line = [], {}
    for line_number, line in enumerate(lines[1:], start=2):
        internal, tab, raw = line.partition("\t")
        expected = len(raw_ids) + 1
        if not tab or internal != str(expected):
            raise DataError(path, f"expected '{expected}<TAB>raw id', got {line!r}",
                            record=line_number)
        if not raw or raw != raw.strip() or "\t" in raw:
            raise DataError(path, f"raw id {raw!r} is empty or has surrounding spaces or tabs",
                            record=line_number)
        if raw in first_line:
            raise DataError(path, f"raw id {raw!r} repeats line {first_line[raw]}",
                            record=line_number)
        first_line[raw] = line_number
        raw_ids.append(raw)
    if len(raw_ids) < num_items:
        raise DataError(path, f"{len(raw_ids)} items listed, but training uses ids up to "
                        f"{num_items}")
    return np.asarray(raw_ids[:num_items], dtype=object).astype(str)

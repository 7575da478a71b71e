"""Records of finished cells as published in the committed results files.

Run folders are git-ignored and live only on the machine that trained them, often not for
long. The results JSON files are committed and hold each finished cell's record (metrics,
settings, stamp) under "runs". Reading those
back lets a script on a fresh checkout skip a cell that already finished elsewhere instead
of spending hours training it again, and lets `--report_only` rebuild a table anywhere.
"""

import glob
import os

from experiments import reporting


def load_published_records(results_dir, own=None):
    """{run folder relative to the runs root: record} from every `<results_dir>/*.json`.

    Where two files hold a record of the same folder, the record in `<own>.json` (the
    results file of the script asking) wins: the figures that script derived from its
    runs (paired gaps, repeat splits) were computed from those, and another script's
    re-run of the same cell, its folder gone, is another run rather than a correction.
    Between other files, the one whose metrics were written last wins (a re-run replaced
    the earlier one).
    """
    records, own_records = {}, {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        data = reporting.ResultsFile(results_dir, name).load()
        for record in _records_in(data.get("runs")):
            if name == own:
                own_records[record["run_dir"]] = record
                continue
            known = records.get(record["run_dir"])
            if known is None or record.get("metrics_written", "") > known.get(
                    "metrics_written", ""):
                records[record["run_dir"]] = record
    return {**records, **own_records}


def _records_in(node):
    """Every record below `node`: the dicts naming a run folder and holding test metrics."""
    if not isinstance(node, dict):
        return
    if isinstance(node.get("run_dir"), str) and isinstance(node.get("test"), dict):
        yield node
        return
    for value in node.values():
        yield from _records_in(value)
